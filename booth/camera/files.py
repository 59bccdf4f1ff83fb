"""Sources from files: one image, a folder of images cycled, a video file played (looping, at
its own pace)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from booth.camera.threaded import ThreadedSource
from booth.clock import SYSTEM, Clock
from booth.errors import BoothError
from booth.quiet import quiet_stderr

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def _read_image(path: Path) -> np.ndarray | None:
    # imdecode(fromfile) rather than imread: imread cannot open non-ASCII paths on Windows.
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None


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
