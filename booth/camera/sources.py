"""Frame sources for the station: a camera (USB, device path, or a network camera's rtsp:// or
http:// MJPEG stream), a video file, a still image or a folder of images.

All deliver BGR uint8 frames through one small interface, `FrameSource`, so the station loop
never cares where pictures come from. Threaded sources keep only the newest frame: a slow
consumer skips frames instead of building a backlog. A delivered array is shared with every
caller and the source never writes to it again; copy it before drawing on it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from booth.clock import SYSTEM, Clock
from booth.errors import BoothError
from booth.quiet import quiet_stderr

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
FIRST_FRAME_SECONDS = 5.0  # a camera may need seconds after opening before its first frame
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 5.0  # reconnect delays double from the first up to the cap
WATCH_INTERVAL = 0.05
# A webcam switching modes restarts its stream: its first frames can come late or half-exposed.
STILL_SECONDS = 5.0  # the whole switch-grab-restore; past it the preview frame is the photo
STILL_SKIP_FRAMES = 2  # frames dropped after the switch to the still mode


def _join(thread: threading.Thread | None, timeout: float) -> None:
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)


def _read_image(path: Path) -> np.ndarray | None:
    # imdecode(fromfile) rather than imread: imread cannot open non-ASCII paths on Windows.
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


class FrameSource(Protocol):
    """What the station needs of a source of pictures. A source may also be a StillSource."""

    name: str
    problem: str  # why status() is "reconnecting"; "" when "ok"

    def start(self) -> None:
        """Open the source; raises BoothError saying what to do if it cannot be used at all
        (a camera that is not there yet is not such a case: it reconnects)."""
        ...

    def latest(self) -> tuple[np.ndarray | None, int]:
        """The newest frame and its sequence number (0 before any); never waits."""
        ...

    def wait(self, seq: int, seconds: float) -> bool:
        """Until a frame newer than `seq` is there (True) or `seconds` have passed (False):
        the station loop sleeps here instead of polling."""
        ...

    def status(self) -> str:
        """"ok", or "reconnecting" while it cannot deliver frames."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class StillSource(Protocol):
    """A source with a better picture for the photo than its preview: a webcam's
    full-resolution mode (CameraSource with a still size), or a separate still camera (a DSLR
    through gphoto2: its live view as the preview, the sensor at the shutter, which would plug
    in here; open_source() is where its scheme, gphoto2://, would be recognised).

    The station calls capture_still() on its photo worker at the shutter, never on the screen
    loop; it may take seconds. The still must show what the preview showed (the same framing:
    the same shape, at a higher resolution); the photo is made from it with the preview's
    placement. None (no still this time, for whatever reason) means the preview frame is the
    photo: a still must never cost the visitor their photo."""

    def capture_still(self) -> np.ndarray | None:
        """A BGR uint8 picture taken now, or None."""
        ...


class ThreadedSource:
    """What the sources here share: the newest frame under a lock, its sequence number, a
    status, and a thread that delivers frames."""

    name: str
    problem: str

    def __init__(self, name: str) -> None:
        self.name = name
        self.problem = ""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified with each new frame
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._status = "ok"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def latest(self) -> tuple[np.ndarray | None, int]:
        with self._lock:
            return self._frame, self._seq

    def wait(self, seq: int, seconds: float) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: self._seq > seq, max(0.0, seconds))

    def status(self) -> str:
        return self._status

    def close(self) -> None:
        self._stop.set()
        _join(self._thread, 2.0)

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> ThreadedSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _publish(self, frame: np.ndarray) -> None:
        with self._lock:
            self._frame = frame
            self._seq += 1
            self._arrived.notify_all()

    def _run_thread(self, target, *args) -> None:
        self._thread = threading.Thread(target=target, args=args, name=f"{self.name} source",
                                        daemon=True)
        self._thread.start()


class ImageSource(ThreadedSource):
    """One still image, delivered once (sequence number 1)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        super().__init__(self.path.name)

    def start(self) -> None:
        if self._seq:
            return
        if not self.path.is_file():
            raise BoothError(f"no such file: {self.path}")
        image = _read_image(self.path)
        if image is None:
            raise BoothError(f"cannot read image {self.path}: not an image OpenCV can decode")
        self._publish(image)


class FolderSource(ThreadedSource):
    """Cycles the images of a folder in name order, seconds_per_image each."""

    def __init__(self, path: str | Path, seconds_per_image: float = 5.0,
                 clock: Clock = SYSTEM) -> None:
        self.path = Path(path)
        self.seconds_per_image = seconds_per_image
        self.clock = clock
        self._files: list[Path] = []
        super().__init__(self.path.name)

    def start(self) -> None:
        if self._seq:
            return
        if not self.path.is_dir():
            raise BoothError(f"no such folder: {self.path}")
        self._files = sorted(p for p in self.path.iterdir()
                             if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not self._files:
            raise BoothError(f"folder {self.path} has no images; add .jpg, .png, .bmp or .webp "
                             "files")
        for index in range(len(self._files)):
            image = _read_image(self._files[index])
            if image is not None:
                break
        else:
            raise BoothError(f"no image in folder {self.path} can be read; check the files")
        self._publish(image)
        if len(self._files) > 1:
            self._run_thread(self._cycle, index)

    def _cycle(self, index: int) -> None:
        count = len(self._files)
        while not self.clock.wait(self._stop, self.seconds_per_image):
            for _ in range(count):  # skip files that are unreadable or gone since start()
                index = (index + 1) % count
                image = _read_image(self._files[index])
                if image is not None:
                    self._publish(image)
                    break


class VideoFileSource(ThreadedSource):
    """A video file decoded in its own thread, paced at its fps when realtime, looping."""

    def __init__(self, path: str | Path, loop: bool = True, realtime: bool = True,
                 clock: Clock = SYSTEM) -> None:
        self.path = Path(path)
        self.loop = loop
        self.realtime = realtime
        self.clock = clock
        super().__init__(self.path.name)

    def start(self) -> None:
        if self._thread is not None:
            return
        cap, frame = self._open()
        fps = cap.get(cv2.CAP_PROP_FPS)
        interval = 1.0 / fps if 1.0 <= fps <= 240.0 else 1.0 / 30  # some files report 0 or 1000
        self._publish(frame)
        self._run_thread(self._play, cap, interval)

    def _open(self) -> tuple[cv2.VideoCapture, np.ndarray]:
        if not self.path.is_file():
            raise BoothError(f"no such file: {self.path}")
        with quiet_stderr():  # FFmpeg reports a broken file on fd 2; we say it in one line
            cap = cv2.VideoCapture(str(self.path))
            # Reading one frame is the real test: some broken files still "open".
            ok, frame = cap.read() if cap.isOpened() else (False, None)
        if not ok:
            cap.release()
            raise BoothError(f"cannot read video {self.path.name}: not a video OpenCV can decode")
        return cap, frame

    def _reopen(self) -> tuple[cv2.VideoCapture | None, np.ndarray | None]:
        # Reopening rather than seeking to frame 0: seeking is inexact in some containers.
        while True:
            try:
                cap, frame = self._open()
            except BoothError as exc:  # the file was replaced or removed while playing
                self._status, self.problem = "reconnecting", str(exc)
                if self.clock.wait(self._stop, 1.0):
                    return None, None
                continue
            self._status, self.problem = "ok", ""
            return cap, frame

    def _play(self, cap: cv2.VideoCapture | None, interval: float) -> None:
        due = self.clock.monotonic()
        try:
            while cap is not None and not self._stop.is_set():
                ok, frame = cap.read()
                if not ok:
                    cap.release()
                    if not self.loop:
                        return  # the last frame stays on show
                    cap, frame = self._reopen()
                    if cap is None:
                        return
                if self.realtime:
                    # Never more than one frame of debt: after a hiccup, go on rather than race.
                    due = max(due + interval, self.clock.monotonic() - interval)
                    if self.clock.wait(self._stop, due - self.clock.monotonic()):
                        return
                self._publish(frame)
        finally:
            if cap is not None:
                cap.release()


class CameraSource(ThreadedSource):
    """A camera (index, device path or stream URL) read in its own thread, under a watchdog.

    After an unplug OpenCV may keep isOpened() true while read() repeats the last frame or
    blocks for up to ~10 s, so the watchdog is a separate thread that judges the frames that
    arrive. A stalled reader is abandoned, not released under its feet (releasing a capture that
    another thread is reading can crash): each reader belongs to a generation and, once read()
    returns and it sees it is stale, it releases its capture itself and exits.

    With a still size (still_width x still_height, 0 x 0: none) it is a StillSource: the
    reader itself switches the capture to that size for one frame and back, between two
    preview reads, so preview and still never use the device at once.
    """

    def __init__(self, device: int | str, width: int = 1280, height: int = 720, fps: int = 30,
                 stall_seconds: float = 1.5, clock: Clock = SYSTEM, *, still_width: int = 0,
                 still_height: int = 0) -> None:
        self.device = device
        self.width, self.height, self.fps = width, height, fps
        self.still_width, self.still_height = still_width, still_height
        self.stall_seconds = stall_seconds
        self.clock = clock  # the watchdog's: stalls and reconnect delays are measured on it
        super().__init__(f"camera {device}" if isinstance(device, int) else str(device))
        self._gen = 0
        self._flowing = False  # the current reader has delivered a frame
        self._failed = False  # the current reader saw read() fail
        self._repeating = False
        # A sample of the newest delivered frame: a reopened camera whose first frame is still
        # that very image (a frozen driver survives a reconnect) has not come back.
        self._signature = b""
        self._last_new = 0.0
        self._reader: threading.Thread | None = None
        self._first = threading.Event()
        self._still_request: _StillRequest | None = None  # for the reader to take
        self._taking_still = False  # the watchdog allows the mode switches more time

    def start(self) -> None:
        """Open the camera and wait (a few seconds at most) for its first frame. A camera that
        is not there (yet: a kiosk boots faster than its USB camera) or sends nothing is no
        error: the source says "reconnecting" and keeps trying, with backoff."""
        if self._thread is not None:
            return
        cap = self._open()
        if cap is None:
            self._status, self.problem = "reconnecting", self._unavailable()
        self._run_thread(self._watch, cap)
        if cap is not None:
            self._first.wait(FIRST_FRAME_SECONDS)

    def _unavailable(self) -> str:
        if isinstance(self.device, int):
            return (f"{self.name} is not available; check the cable, close other programs "
                    f"using it, or try --source {1 if self.device == 0 else 0}")
        return f"cannot open camera {self.device}; check the address and that it is running"

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            self._gen += 1
            self._drop_still_request()
        _join(self._thread, 2.0)
        _join(self._reader, 1.0)  # a reader stuck in read() releases its capture when it returns

    def _open(self) -> cv2.VideoCapture | None:
        """An opened capture, or None."""
        with quiet_stderr():  # back ends warn on fd 2 for every failed (re)connect attempt
            cap = self._open_device()
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def _open_device(self) -> cv2.VideoCapture:
        if isinstance(self.device, int) and sys.platform.startswith("linux"):
            # V4L2 directly (the default chain may pick GStreamer, which ignores these settings);
            # USB webcams give 720p at 30 fps only as MJPG, raw YUYV manages ~10 fps.
            cap = cv2.VideoCapture(self.device, cv2.CAP_V4L2)
            if cap.isOpened():
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        else:
            cap = cv2.VideoCapture(self.device)
        if cap.isOpened():
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        return cap

    def capture_still(self) -> np.ndarray | None:
        """One frame in the still size, or None: no still size set, the camera is down or
        lacks the mode (it gives no bigger frame), or it all took over STILL_SECONDS."""
        if not (self.still_width and self.still_height):
            return None
        request = _StillRequest()
        with self._lock:
            if not self._flowing or self._status != "ok":
                return None
            self._still_request = request
        # Real time, not the watchdog's clock: this is how long the device itself may take.
        done = request.done.wait(STILL_SECONDS)
        with self._lock:
            if self._still_request is request:  # the reader never got to it
                self._still_request = None
        return request.image if done else None

    def _drop_still_request(self) -> None:
        """Answer a waiting capture_still() with None now (call with the lock held)."""
        if self._still_request is not None:
            self._still_request.done.set()
            self._still_request = None

    def _take_still(self, cap: cv2.VideoCapture, preview: np.ndarray) -> np.ndarray | None:
        """On the reader's thread: switch to the still size, skip the frames a mode switch
        spoils, keep one, switch back. None if any step fails or the camera gave no frame
        bigger than the preview (it lacks the mode)."""
        still = None
        try:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.still_width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.still_height)
            for _ in range(STILL_SKIP_FRAMES + 1):
                ok, still = self._read_frame(cap)
                if not ok:
                    still = None
                    break
        except Exception:  # a driver's error costs the still, never the reader
            still = None
        finally:
            # Should switching back fail, the next preview read fails: the watchdog reopens.
            with contextlib.suppress(Exception):
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if still is None or still.shape[0] <= preview.shape[0]:
            return None
        return still

    def _serve_still(self, cap: cv2.VideoCapture, gen: int, preview: np.ndarray) -> None:
        with self._lock:
            if gen != self._gen or self._still_request is None:
                return
            request, self._still_request = self._still_request, None
            self._taking_still = True
        image = self._take_still(cap, preview)
        with self._lock:
            self._taking_still = False
            self._last_new = self.clock.monotonic()  # the stall limit counts from now
        request.image = image
        request.done.set()

    def _read_frame(self, cap: cv2.VideoCapture) -> tuple[bool, np.ndarray | None]:
        """One blocking read; a seam for tests that pace a video file like a camera."""
        return cap.read()

    def _read_loop(self, cap: cv2.VideoCapture, gen: int) -> None:
        with self._lock:
            previous = self._signature
        step = 0
        try:
            while not self._stop.is_set() and gen == self._gen:
                ok, frame = self._read_frame(cap)
                if not ok or frame is None:
                    with self._lock:
                        self._failed = self._failed or gen == self._gen
                    return
                if not step:  # sample ~32 rows: cheap, and sensor noise reaches every pixel
                    step = max(1, min(frame.shape[:2]) // 32)
                sample = frame[::step, ::step]
                signature = sample.tobytes()
                # A frozen driver hands back the very same image. A uniform one (lens covered,
                # all black after JPEG) is excused so that it does not cause reconnect churn.
                self._repeating = signature == previous and sample.min() != sample.max()
                previous = signature
                if not self._repeating:
                    self._deliver(frame, gen, signature)
                if self._still_request is not None:
                    self._serve_still(cap, gen, frame)
        finally:
            cap.release()

    def _deliver(self, frame: np.ndarray, gen: int, signature: bytes = b"") -> None:
        with self._lock:
            if gen != self._gen:
                return
            self._frame, self._signature = frame, signature
            self._seq += 1
            self._arrived.notify_all()
            self._last_new = self.clock.monotonic()
            if not self._flowing:
                self._flowing = True
                self._status, self.problem = "ok", ""
        self._first.set()

    def _begin(self, cap: cv2.VideoCapture) -> None:
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._flowing = self._failed = self._repeating = False
            self._last_new = self.clock.monotonic()
        self._reader = threading.Thread(target=self._read_loop, args=(cap, gen),
                                        name=f"{self.name} reader {gen}", daemon=True)
        self._reader.start()

    def _stalled(self) -> str | None:
        """Wait until the current reader stalls and say how; None when closing."""
        while not self.clock.wait(self._stop, WATCH_INTERVAL):
            with self._lock:
                failed, flowing, last_new = self._failed, self._flowing, self._last_new
                still = self._taking_still
            if failed:
                return "stopped delivering frames"
            limit = (STILL_SECONDS if still else self.stall_seconds if flowing
                     else FIRST_FRAME_SECONDS)
            if self.clock.monotonic() - last_new > limit:
                return ("repeats the same frame" if self._repeating
                        else f"delivered no new frame for {limit:g} s")
        return None

    def _watch(self, cap: cv2.VideoCapture | None) -> None:
        delay = BACKOFF_FIRST
        while True:
            if cap is not None:
                self._begin(cap)
                problem = self._stalled()
                if problem is None:
                    return
                with self._lock:
                    self._gen += 1  # abandon the reader: it releases its capture on return
                    self._drop_still_request()
                    if self._flowing:
                        delay = BACKOFF_FIRST  # it worked for a while: start the backoff afresh
                    self._status, self.problem = "reconnecting", f"{self.name} {problem}"
            cap = None
            while cap is None:
                if self.clock.wait(self._stop, delay):
                    return
                delay = min(delay * 2, BACKOFF_MAX)
                cap = self._open()


class _StillRequest:
    """A capture_still() waiting for the reader thread."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.image: np.ndarray | None = None


def open_source(spec: str, *, width: int = 1280, height: int = 720, fps: int = 30,
                stall_seconds: float = 1.5, still_width: int = 0,
                still_height: int = 0) -> FrameSource:
    """The source a --source value names (not started yet). Cameras take a still at
    still_width x still_height at the shutter (0 x 0: they do not); files need no still:
    they are delivered at their own full resolution."""
    spec = spec.strip()
    camera = {"width": width, "height": height, "fps": fps, "stall_seconds": stall_seconds,
              "still_width": still_width, "still_height": still_height}
    if spec.isascii() and spec.isdigit():
        return CameraSource(int(spec), **camera)
    if "://" in spec:  # a network camera (rtsp://, http://) drops out and reconnects like one
        return CameraSource(spec, **camera)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageSource(path)
        return VideoFileSource(path)
    if spec and (path.exists() or spec.startswith("/dev/")):
        # A device node such as /dev/video0, there or not yet (a USB camera still waking up).
        return CameraSource(spec, **camera)
    raise BoothError(f"no such file or camera: {spec}; use a camera index such as 0, a video "
                     "file, an image or a folder")
