"""Frame sources against real media: the shared sign-language clips and people photos.

The camera watchdog is exercised with video files as the "device": a file that ends behaves
like an unplugged camera (read() fails), and a clip of identical frames like a frozen driver.
"""

from __future__ import annotations

import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.camera.cameras import BACKOFF_FIRST, STILL_SKIP_FRAMES, CameraSource
from booth.camera.files import FolderSource, ImageSource, VideoFileSource
from booth.camera.sources import StillSource, open_source
from booth.clock import ManualClock
from booth.errors import BoothError
from tests.conftest import asset

BOOK_FRAMES = 109
_asset = asset


@pytest.fixture(scope="module")
def book() -> Path:
    return _asset("video/intel_asl_book.mp4")


@pytest.fixture(scope="module")
def book_frames(book: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(book))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def _wait_until(predicate, timeout: float, what: str) -> float:
    """Poll predicate; return the seconds it took, or fail naming what never happened."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what} did not happen within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - start


def _write_clip(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    # FFV1 is lossless: identical frames stay identical (mp4v decodes them slightly differently).
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write FFV1 video")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def short_clip(tmp_path: Path, book_frames: list[np.ndarray]) -> Path:
    """One second of the book clip at 320x240."""
    frames = [cv2.resize(f, (320, 240), interpolation=cv2.INTER_AREA) for f in book_frames[:30]]
    return _write_clip(tmp_path / "short.avi", frames)


def _readers_alive(source: CameraSource) -> int:
    prefix = f"{source.name} reader"
    return sum(t.name.startswith(prefix) and t.is_alive() for t in threading.enumerate())


# --- video files -------------------------------------------------------------------------------

def test_video_delivers_frames_with_increasing_sequence_and_loops(book: Path) -> None:
    with VideoFileSource(book, realtime=False) as source:
        frame, seq = source.latest()
        assert seq >= 1, "start() delivers the first frame before returning"
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
        seen = [seq]
        _wait_until(lambda: seen.append(source.latest()[1]) or seen[-1] > 2 * BOOK_FRAMES + 10,
                    10, "looping past the end twice")
        assert seen == sorted(seen)
        assert source.status() == "ok" and source.name == "intel_asl_book.mp4"


def test_video_without_loop_keeps_the_last_frame(book: Path, book_frames) -> None:
    assert len(book_frames) == BOOK_FRAMES
    with VideoFileSource(book, loop=False, realtime=False) as source:
        _wait_until(lambda: not source._thread.is_alive(), 10, "the end of the clip")
        frame, seq = source.latest()
    assert seq == BOOK_FRAMES  # every frame counted once, nothing queued behind the newest
    assert np.array_equal(frame, book_frames[-1])


def test_video_realtime_pacing_and_latest_never_blocks(book: Path) -> None:
    """Paced on an injected clock: one frame per frame interval of it (the clip says 29.99
    fps), and none while it stands still, during which latest() answers at once with the same
    array (no copy, no waiting)."""
    clock = ManualClock()
    interval = 1 / 29.99449642267474
    with VideoFileSource(book, clock=clock) as source:
        first, seq = source.latest()
        assert seq == 1 and first.shape == (480, 640, 3)
        for _ in range(1000):  # the clock stands still: no frame can come
            again, same = source.latest()
            assert same == 1 and again is first
        for expected in range(2, 12):
            clock.advance(interval)
            _wait_until(lambda n=expected: source.latest()[1] >= n, 5, f"frame {expected}")
            assert source.latest()[1] == expected  # exactly one frame per interval


def test_second_clip_loops_too(book: Path) -> None:
    clip = _asset("video/intel_asl_again.mp4")
    with VideoFileSource(clip, realtime=False) as source:
        _wait_until(lambda: source.latest()[1] > 77, 10, "looping the 77-frame clip")


# --- images and folders ------------------------------------------------------------------------

def test_image_source_delivers_one_colour_frame(tmp_path: Path) -> None:
    photo = cv2.imread(str(_asset("people/rembg_girl-1.jpg")))
    gray = tmp_path / "gray.png"
    cv2.imwrite(str(gray), cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    with ImageSource(gray) as source:
        frame, seq = source.latest()
        assert (frame.shape, frame.dtype, seq) == ((399, 600, 3), np.uint8, 1)
        assert source.latest()[1] == 1 and source.status() == "ok"


def test_image_source_errors(tmp_path: Path) -> None:
    with pytest.raises(BoothError, match="no such file: .*x.jpg"):
        ImageSource(tmp_path / "x.jpg").start()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(BoothError, match="cannot read image .*broken.jpg"):
        ImageSource(broken).start()


def test_folder_cycles_images_in_name_order(tmp_path: Path) -> None:
    people = _asset("people/rembg_girl-1.jpg").parent
    cv2.imwrite(str(tmp_path / "b.png"), cv2.imread(str(people / "skimage_astronaut.png")))
    cv2.imwrite(str(tmp_path / "a.jpg"), cv2.imread(str(people / "rembg_girl-1.jpg")))
    (tmp_path / "notes.txt").write_text("not an image")
    clock = ManualClock()
    with FolderSource(tmp_path, seconds_per_image=5, clock=clock) as source:
        shapes = [source.latest()[0].shape]
        for seq in (2, 3):
            clock.advance(5)
            _wait_until(lambda n=seq: source.latest()[1] == n, 5, f"image {seq}")
            shapes.append(source.latest()[0].shape)
    assert shapes == [(399, 600, 3), (512, 512, 3), (399, 600, 3)]


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no pictures here")
    with pytest.raises(BoothError, match="has no images"):
        FolderSource(tmp_path).start()


# --- open_source ---------------------------------------------------------------------------------

def test_open_source_dispatch(tmp_path: Path, book: Path) -> None:
    photo = tmp_path / "PHOTO.JPG"
    photo.write_bytes(_asset("people/rembg_girl-2.jpg").read_bytes())
    camera = open_source(" 2 ", width=640, height=480, fps=15, stall_seconds=0.5)
    assert isinstance(camera, CameraSource) and camera.device == 2 and camera.name == "camera 2"
    assert (camera.width, camera.height, camera.fps, camera.stall_seconds) == (640, 480, 15, 0.5)
    assert isinstance(open_source(str(tmp_path)), FolderSource)
    assert isinstance(open_source(str(photo)), ImageSource)
    assert isinstance(open_source(str(book)), VideoFileSource)
    with pytest.raises(BoothError) as err:
        open_source(str(tmp_path / "nope.mp4"))
    assert str(err.value) == (f"no such file or camera: {tmp_path / 'nope.mp4'}; use a camera "
                              "index such as 0, a video file, an image or a folder")


def test_corrupt_video_is_refused_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, np.uint8).tobytes())
    source = open_source(str(bad))
    assert isinstance(source, VideoFileSource)
    with pytest.raises(BoothError, match="cannot read video bad.mp4: not a video OpenCV can"):
        source.start()


def test_missing_camera_index_starts_reconnecting() -> None:
    source = open_source("97")
    source.start()  # no error: a kiosk's camera may come later
    try:
        assert source.status() == "reconnecting"
        assert source.problem == ("camera 97 is not available; check the cable, close other "
                                  "programs using it, or try --source 0")
        assert source.latest() == (None, 0)
    finally:
        source.close()
    source.close()  # idempotent


# --- camera watchdog, on an injected clock -----------------------------------------------------


class ClockedCamera(CameraSource):
    """A video file as the camera, its watchdog on a ManualClock; every open() is recorded
    with the clock's time. hold() makes the next read() block until release()."""

    def __init__(self, device: str, clock: ManualClock, **kw) -> None:
        super().__init__(device, clock=clock, **kw)
        self.opens: list[float] = []
        self._held = threading.Event()
        self._hold = threading.Event()
        self.reads = 0

    def _open(self):
        self.opens.append(self.clock.monotonic())
        return super()._open()

    def hold(self) -> None:
        self._held.clear()
        self._hold.set()

    def release(self) -> None:
        self._hold.clear()
        self._held.set()

    def _read_frame(self, cap):
        self.reads += 1
        if self._hold.is_set():
            self._held.wait(10)
        return cap.read()


LAG = 0.15  # clock seconds (3 steps) a busy machine may let the source's threads trail by


def _advance_until(clock: ManualClock, predicate, what: str, step: float = 0.05,
                   most: float = 10.0) -> float:
    """Advance the clock in steps until predicate holds; the clock time it took."""
    start = clock.monotonic()
    while not predicate():
        if clock.monotonic() - start > most:
            pytest.fail(f"{what} did not happen within {most} s of the clock")
        clock.advance(step)
        time.sleep(0.012)  # let the source's threads look at the new time (they poll every 5 ms)
    return clock.monotonic() - start


def test_camera_absent_at_start_retries_with_backoff_and_comes(short_clip: Path,
                                                             tmp_path: Path) -> None:
    """The device is not there at start (a USB camera still waking up): attempts 0.5, 1 and
    2 s apart on the clock; the device appears; the next attempt opens it and frames flow."""
    device = tmp_path / "camera.avi"
    clock = ManualClock()
    source = ClockedCamera(str(device), clock)
    source.start()
    try:
        assert source.status() == "reconnecting" and source.latest() == (None, 0)
        assert "cannot open camera" in source.problem
        for attempts in (2, 3):
            _advance_until(clock, lambda n=attempts: len(source.opens) >= n, "an attempt")
        shutil.copy(short_clip, device)
        _advance_until(clock, lambda: len(source.opens) >= 4, "the attempt that opens it")
        assert np.allclose(np.diff(source.opens), [0.5, 1.0, 2.0], atol=LAG), source.opens
        _wait_until(lambda: source.status() == "ok" and source.latest()[1] > 0, 5,
                    "frames from the camera")
        assert source.problem == ""
    finally:
        source.close()
    assert _readers_alive(source) == 0


def test_camera_reconnects_after_its_device_ends(short_clip: Path) -> None:
    """read() fails at the end of the clip, as after an unplug: noticed at the watchdog's next
    look, reopened BACKOFF_FIRST later on the clock, frames again."""
    clock = ManualClock()
    source = ClockedCamera(str(short_clip), clock)
    source.start()
    try:
        frame, first_seq = source.latest()
        assert frame.shape == (240, 320, 3) and source.status() == "ok"
        _advance_until(clock, lambda: source.status() == "reconnecting", "reconnecting")
        assert "stopped delivering frames" in source.problem
        noticed, lost_seq = clock.monotonic(), source.latest()[1]
        assert lost_seq >= first_seq
        _advance_until(clock, lambda: len(source.opens) >= 2, "the reopen")
        assert source.opens[1] - noticed == pytest.approx(BACKOFF_FIRST, abs=LAG)
        _wait_until(lambda: source.status() == "ok" and source.latest()[1] > lost_seq, 5,
                    "frames again")
        assert source.problem == ""
    finally:
        source.close()
    source.close()
    assert _readers_alive(source) == 0


def test_camera_repeating_one_frame_is_treated_as_lost(tmp_path: Path) -> None:
    photo = cv2.resize(cv2.imread(str(_asset("people/rembg_girl-1.jpg"))), (320, 240))
    clip = _write_clip(tmp_path / "frozen.avi", [photo] * 90)
    clock = ManualClock()
    with ClockedCamera(str(clip), clock, stall_seconds=0.5) as source:
        source.hold()  # the first frame is in; the reader waits before its next read
        source.release()
        took = _advance_until(clock, lambda: source.status() == "reconnecting", "reconnecting")
        assert 0.5 < took <= 0.5 + LAG  # the stall limit, at the watchdog's next look
        assert "repeats the same frame" in source.problem
        assert source.latest()[1] == 1  # the repeats are not handed out as new frames


def test_camera_hung_read_is_abandoned(short_clip: Path) -> None:
    clock = ManualClock()
    with ClockedCamera(str(short_clip), clock) as source:  # the default stall_seconds, 1.5
        source.hold()  # the next read() hangs, as OpenCV's can after an unplug
        _wait_until(lambda: source.reads >= 2, 5, "the hung read")
        hung_seq = source.latest()[1]
        took = _advance_until(clock, lambda: source.status() == "reconnecting", "reconnecting")
        assert 1.5 < took <= 1.5 + LAG
        assert "no new frame for 1.5 s" in source.problem
        source._hold.clear()  # the fresh reader reads freely; the hung one still hangs
        _advance_until(clock, lambda: source.status() == "ok"
                       and source.latest()[1] > hung_seq, "a fresh reader")
        assert _readers_alive(source) == 2
        source.release()  # the hung read returns: that reader sees it is stale and leaves
        _wait_until(lambda: _readers_alive(source) <= 1, 5, "the stale reader exiting")


# --- IP cameras: a real MJPEG stream over HTTP on loopback ------------------------------------


class MjpegCamera:
    """An IP camera on loopback: /video.mjpg streams the frames as multipart JPEG at 30 fps,
    as network cameras do. stop() takes it off the network; start() brings it back on the
    same port."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
                      for f in frames]
        self.port = 0
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        jpegs = self.jpegs
        stopping = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/video.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for i in range(100_000):
                        if stopping.is_set():
                            return
                        jpeg = jpegs[i % len(jpegs)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                                         + jpeg + b"\r\n")
                        time.sleep(1 / 30)
                except (BrokenPipeError, ConnectionResetError):
                    return

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.server.allow_reuse_address = True
        self.port = self.server.server_address[1]
        self._stopping = stopping
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self._stopping.set()
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def ip_camera(book_frames: list[np.ndarray]):
    camera = MjpegCamera(book_frames[:60])
    camera.start()
    yield camera
    camera.stop()


def test_ip_camera_mjpeg_stream_delivers_drops_out_and_comes_back(ip_camera, book_frames):
    url = f"http://127.0.0.1:{ip_camera.port}/video.mjpg"
    source = open_source(f" {url} ", stall_seconds=0.5)
    assert isinstance(source, CameraSource) and source.name == url
    source.start()
    try:
        _wait_until(lambda: source.latest()[1] >= 5, 10, "frames from the stream")
        frame, _ = source.latest()
        assert frame.shape == (480, 640, 3) and source.status() == "ok"
        # The very picture the camera sent (JPEG at quality 90: a few levels off at most).
        error = min(np.abs(frame.astype(int) - f.astype(int)).mean() for f in book_frames[:60])
        assert error < 4
        ip_camera.stop()  # the camera's network cable
        _wait_until(lambda: source.status() == "reconnecting", 10, "reconnecting")
        lost = source.latest()[1]
        ip_camera.start()
        _wait_until(lambda: source.status() == "ok" and source.latest()[1] > lost + 5, 20,
                    "the stream again")
    finally:
        source.close()


def test_urls_and_device_paths_are_cameras() -> None:
    """Network cameras, and a device path even before the device exists (a USB camera
    still waking up at boot)."""
    for url in ("rtsp://192.0.2.10:554/stream1", "http://192.0.2.10/video.mjpg",
                "/dev/video97"):
        source = open_source(url)
        assert isinstance(source, CameraSource) and source.device == url


# --- stills at the shutter: a webcam's full-resolution mode -----------------------------------


class Webcam:
    """A webcam as OpenCV's VideoCapture shows it (no device exists here): a real photo at the
    mode set by CAP_PROP_FRAME_WIDTH/HEIGHT, when the camera has that mode (else it stays in
    the one before), each frame numbered in one pixel so that none repeats. Every set() is
    recorded; `fail` names a mode in which read() fails, `raises` one whose set() raises."""

    def __init__(self, picture: np.ndarray, modes: list[tuple[int, int]],
                 fail: tuple[int, int] | None = None, raises: tuple[int, int] | None = None):
        self.pictures = {mode: cv2.resize(picture, mode, interpolation=cv2.INTER_AREA)
                         for mode in modes}
        self.fail, self.raises = fail, raises
        self.mode, self.asked = modes[0], list(modes[0])
        self.sets: list[tuple[str, float]] = []
        self.reads: dict[tuple[int, int], int] = {}
        self.count = 0

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def set(self, prop: int, value: float) -> bool:
        name = {cv2.CAP_PROP_FRAME_WIDTH: "width", cv2.CAP_PROP_FRAME_HEIGHT: "height"}.get(prop)
        if name is None:
            return False  # fourcc, fps: not modelled
        self.sets.append((name, value))
        self.asked[name == "height"] = int(value)
        if tuple(self.asked) == self.raises:
            raise cv2.error("VIDIOC_S_FMT: Device or resource busy")
        if tuple(self.asked) in self.pictures:
            self.mode = tuple(self.asked)
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(0.004)  # a fast camera; the reader must not spin
        self.reads[self.mode] = self.reads.get(self.mode, 0) + 1
        if self.mode == self.fail:
            return False, None
        self.count += 1
        frame = self.pictures[self.mode].copy()
        frame[0, 0] = self.count % 251
        return True, frame

    def release(self) -> None:
        pass


class WebcamSource(CameraSource):
    def __init__(self, webcam: Webcam, **kw) -> None:
        super().__init__(0, 640, 360, **kw)
        self.webcam = webcam

    def _open_device(self):
        self.webcam.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        self.webcam.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        return self.webcam


@pytest.fixture(scope="module")
def person() -> np.ndarray:
    return cv2.imread(str(_asset("people/bgm_0001_img.png")))  # 1920x1080


def _preview_after(source: CameraSource, seq: int) -> np.ndarray:
    _wait_until(lambda: source.latest()[1] > seq + 2, 5, "preview frames after the still")
    return source.latest()[0]


def test_camera_still_switches_to_its_mode_and_back(person: np.ndarray) -> None:
    webcam = Webcam(person, [(640, 360), (1920, 1080)])
    with WebcamSource(webcam, still_width=1920, still_height=1080) as source:
        assert isinstance(source, StillSource)
        frame, seq = source.latest()
        assert frame.shape == (360, 640, 3)
        still = source.capture_still()
        assert still is not None and still.shape == (1080, 1920, 3)
        # The photo itself, not a preview scaled up: it matches the full-size picture.
        assert np.abs(still[1:].astype(int) - person[1:].astype(int)).mean() < 1.0
        assert webcam.sets == [("width", 640), ("height", 360), ("width", 1920),
                               ("height", 1080), ("width", 640), ("height", 360)]
        assert webcam.reads[(1920, 1080)] == STILL_SKIP_FRAMES + 1
        assert _preview_after(source, seq).shape == (360, 640, 3)
        assert source.status() == "ok" and source.problem == ""


@pytest.mark.parametrize("case", ["read fails", "set raises", "no such mode"])
def test_camera_still_that_fails_gives_none_and_the_preview_goes_on(person, case) -> None:
    webcam = Webcam(person, [(640, 360)] if case == "no such mode" else [(640, 360), (1920, 1080)],
                    fail=(1920, 1080) if case == "read fails" else None,
                    raises=(1920, 1080) if case == "set raises" else None)
    with WebcamSource(webcam, still_width=1920, still_height=1080) as source:
        seq = source.latest()[1]
        assert source.capture_still() is None
        assert webcam.sets[-2:] == [("width", 640), ("height", 360)]  # switched back
        assert _preview_after(source, seq).shape == (360, 640, 3)
        assert source.status() == "ok"


def test_camera_without_a_still_size_and_a_lost_camera_give_none(person) -> None:
    webcam = Webcam(person, [(640, 360), (1920, 1080)])
    with WebcamSource(webcam) as source:
        assert source.capture_still() is None
        assert webcam.sets == [("width", 640), ("height", 360)]  # the device left alone
    absent = open_source("97", still_width=1920, still_height=1080)
    absent.start()
    try:
        assert absent.capture_still() is None  # at once, not after STILL_SECONDS
    finally:
        absent.close()
