"""A live camera (USB index, device path, or a network camera's rtsp:// or http:// MJPEG
stream): a reader thread keeping the newest frame, a watchdog that judges what arrives and
reconnects with backoff, and the switch to a larger still mode at the shutter."""

from __future__ import annotations

import contextlib
import sys
import threading

import cv2
import numpy as np

from booth.camera.threaded import ThreadedSource, join_thread
from booth.clock import SYSTEM, Clock
from booth.quiet import quiet_stderr

FIRST_FRAME_SECONDS = 5.0  # a camera may need seconds after opening before its first frame
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 5.0  # reconnect delays double from the first up to the cap
WATCH_INTERVAL = 0.05
# A webcam switching modes restarts its stream: its first frames can come late or half-exposed.
STILL_SECONDS = 5.0  # the whole switch-grab-restore; past it the preview frame is the photo
STILL_SKIP_FRAMES = 2  # frames dropped after the switch to the still mode


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
        join_thread(self._thread, 2.0)
        # A reader stuck in read() releases its capture when it returns.
        join_thread(self._reader, 1.0)

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
