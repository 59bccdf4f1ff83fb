"""Frame sources against real media: the shared sign-language clips and people photos.

The camera watchdog is exercised with video files as the "device": a file that ends behaves
like an unplugged camera (read() fails), and a clip of identical frames like a frozen driver.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.errors import BoothError
from booth.sources import (
    CameraSource,
    FolderSource,
    ImageSource,
    VideoFileSource,
    open_source,
)
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


class PacedCamera(CameraSource):
    """Reads a video file at 30 fps, as a camera delivers frames, instead of all at once."""

    def _read_frame(self, cap):
        time.sleep(1 / 30)
        return cap.read()


class HangingCamera(PacedCamera):
    """Its tenth read hangs for 2.5 s, as OpenCV's read() can after an unplug."""

    reads = 0

    def _read_frame(self, cap):
        self.reads += 1
        if self.reads == 10:
            time.sleep(2.5)
        return super()._read_frame(cap)


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
    with VideoFileSource(book) as source:
        time.sleep(0.5)
        worst, calls, start = 0.0, 0, time.monotonic()
        while time.monotonic() - start < 0.3:
            t = time.perf_counter()
            first = source.latest()
            again = source.latest()
            worst = max(worst, time.perf_counter() - t)
            calls += 1
            assert again[1] >= first[1]
            if again[1] == first[1]:
                assert again[0] is first[0]  # no copy per call
        frame, seq = source.latest()
    assert worst < 0.03 and calls > 1000  # waiting for a frame would take up to 33 ms
    assert 12 <= seq <= 30, f"0.8 s at 30 fps should give ~24 frames, got {seq}"
    assert frame.shape == (480, 640, 3)


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
    with FolderSource(tmp_path, seconds_per_image=0.15) as source:
        shapes = {}

        def three_shown() -> bool:
            frame, seq = source.latest()
            shapes.setdefault(seq, frame.shape)
            return len(shapes) >= 3

        _wait_until(three_shown, 3, "three images shown")
    assert [shapes[i] for i in (1, 2, 3)] == [(399, 600, 3), (512, 512, 3), (399, 600, 3)]


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


def test_missing_camera_index_is_refused_quickly() -> None:
    source = open_source("97")
    start = time.monotonic()
    with pytest.raises(BoothError, match="camera 97 .*--source 0"):
        source.start()
    assert time.monotonic() - start < 6
    source.close()
    source.close()  # idempotent


# --- camera watchdog ----------------------------------------------------------------------------

def test_camera_reconnects_after_its_device_ends(short_clip: Path) -> None:
    source = PacedCamera(str(short_clip))
    source.start()
    try:
        frame, first_seq = source.latest()
        assert frame.shape == (240, 320, 3) and source.status() == "ok"
        # 30 frames at 30 fps, then read() fails like an unplugged camera.
        took = _wait_until(lambda: source.status() == "reconnecting", 3, "reconnecting")
        assert took < 1.0 + 2.0
        assert "stopped delivering frames" in source.problem
        lost_seq = source.latest()[1]
        assert lost_seq > first_seq
        _wait_until(lambda: source.status() == "ok" and source.latest()[1] > lost_seq, 3,
                    "reopening the device")
        assert source.problem == ""
        _wait_until(lambda: source.latest()[1] > lost_seq + 5, 2, "frames flowing again")
    finally:
        source.close()
    source.close()
    assert _readers_alive(source) == 0


def test_camera_repeating_one_frame_is_treated_as_lost(tmp_path: Path) -> None:
    photo = cv2.resize(cv2.imread(str(_asset("people/rembg_girl-1.jpg"))), (320, 240))
    clip = _write_clip(tmp_path / "frozen.avi", [photo] * 90)
    with PacedCamera(str(clip), stall_seconds=0.5) as source:
        took = _wait_until(lambda: source.status() == "reconnecting", 2, "reconnecting")
        assert took < 0.5 + 0.5
        assert "repeats the same frame" in source.problem
        assert source.latest()[1] == 1  # the repeats are not handed out as new frames


def test_camera_hung_read_is_abandoned(short_clip: Path) -> None:
    with HangingCamera(str(short_clip)) as source:  # the default stall_seconds, 1.5
        _wait_until(lambda: source.reads >= 10, 2, "the hang")
        hung_seq = source.latest()[1]
        took = _wait_until(lambda: source.status() == "reconnecting", 3, "reconnecting")
        assert took < 2.0
        assert "no new frame for 1.5 s" in source.problem
        _wait_until(lambda: source.status() == "ok" and source.latest()[1] > hung_seq, 2,
                    "a fresh reader")
        # The hung reader wakes up stale, releases its capture and leaves.
        _wait_until(lambda: _readers_alive(source) <= 1, 2, "the stale reader exiting")
