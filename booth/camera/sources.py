"""Frame sources for the station: a camera (USB, device path, or a network camera's rtsp:// or
http:// MJPEG stream), a video file, a still image or a folder of images.

All deliver BGR uint8 frames through one small interface, `FrameSource`, so the station loop
never cares where pictures come from. Threaded sources keep only the newest frame: a slow
consumer skips frames instead of building a backlog. A delivered array is shared with every
caller and the source never writes to it again; copy it before drawing on it.

Here: that interface, StillSource (a better picture at the shutter), and open_source(), which
picks the source a --source value names from booth.camera.files and booth.camera.cameras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from booth.camera.cameras import CameraSource
from booth.camera.files import IMAGE_EXTENSIONS, FolderSource, ImageSource, VideoFileSource
from booth.errors import BoothError


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
