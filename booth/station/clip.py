"""The boomerang clip's file: composited frames in, an MP4 that plays them forwards then
backwards out, with its poster JPEG.

The recorder encodes on its own thread as the frames arrive (H.264 by libx264 in PyAV's
wheel, never a program that may be missing), so when the recording ends only the backward
half is left to encode. The frames play 0..n-1 then n-2..1: neither end frame is shown twice,
so the loop has no stutter where the file starts again. Each frame is kept as the YUV 4:2:0
picture the encoder takes (1.5 bytes a pixel: about 1 MB at 902x720) for the backward half.

The file stays under `max_bytes` (6 MB) by two means: x264's constant quality is capped by a
rate limit (VBV) sized so that the longest clip the recorder accepts fits with a margin, and a
file that still comes out over is encoded again from the kept frames at half the rate limit
and a coarser quality (up to three times; then the clip is refused, never handed over).
"""

from __future__ import annotations

import io
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from booth.errors import BoothError, first_line
from booth.station.photo import encode_jpeg

log = logging.getLogger(__name__)

MAX_BYTES = 6_000_000
MIN_FPS = 24
CLIP_HEIGHT = 720
# Measured by scripts/clip_time.py at 902x720 on the 2-core station: veryfast costs about
# 7 ms of one core a frame (superfast 5 ms for twice the bytes, faster 10-15 ms), so one
# encoder thread keeps up with 30 fps and leaves the other core to the preview; CRF 20 makes
# a visitor's clip of 2.5 s about 0.4 MB, far under the limit, with no visible blocks.
PRESET = "veryfast"
CRF = 20
THREADS = 1
NICENESS = 5  # the encoder's thread below the preview's (see _yield_to_the_preview)
_FINISH_TIMEOUT = 60.0  # an encoder that hangs must not hold the station for ever
_RETRIES = 3  # re-encodes at a halved rate limit before a clip that will not fit is refused


@dataclass(frozen=True)
class Clip:
    """A finished boomerang: the MP4's bytes and its poster (the first frame, a JPEG)."""

    mp4: bytes
    poster: bytes
    width: int
    height: int
    fps: Fraction
    frames: int  # in the file: 2n-2 for n recorded
    recorded: int  # frames handed in
    seconds: float  # playing time, frames / fps
    finish_seconds: float  # from finish() called to the bytes


def clip_size(width: int, height: int, min_height: int = CLIP_HEIGHT) -> tuple[int, int]:
    """The clip's size for a photo of width x height: min_height tall (even, as yuv420p
    needs), as wide as the photo's aspect makes it, rounded to even."""
    h = min_height + min_height % 2
    return max(2, 2 * round(width * h / height / 2)), h


def require_encoder() -> Any:
    """PyAV with its libx264 encoder, or a BoothError saying how to install it."""
    try:
        import av
    except ImportError:
        raise BoothError("boomerang clips need PyAV: reinstall the booth "
                         "(pip install selfie-booth brings the `av` package)") from None
    if "libx264" not in av.codecs_available:
        # A PyAV built against a system FFmpeg may lack it; the wheels on PyPI bundle it.
        raise BoothError("this PyAV has no libx264 encoder for boomerang clips: install "
                         "PyAV's wheel from PyPI (pip install --force-reinstall av)")
    return av


class ClipRecorder:
    """Frames in while recording (`add`), the clip out when it ends (`finish`).

    `size`: the clip's (width, height), even (see clip_size); a frame of another size is
    resized to it. `fps`: the camera's rate, the clip's playing rate. `max_seconds`: the
    longest recording taken (frames past it are refused), which sizes the rate limit and the
    memory kept. `add` hands the frame to the encoder's thread and returns at once; the
    recorder keeps the array until it is encoded, so hand in a new array each time.
    """

    def __init__(self, size: tuple[int, int], fps: float, *, max_seconds: float = 3.0,
                 max_bytes: int = MAX_BYTES, crf: int = CRF, preset: str = PRESET,
                 threads: int = THREADS, jpeg_quality: int = 90) -> None:
        self.av = require_encoder()
        width, height = size
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"a clip's size must be even and positive, not {width}x{height}")
        if fps < MIN_FPS:
            raise BoothError(f"the camera delivers {fps:g} fps and a boomerang needs at least "
                             f"{MIN_FPS}: set the camera's fps to 24 or more, or offer photos "
                             f"only")
        self.size = (width, height)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.max_frames = max(2, math.floor(max_seconds * fps))
        self.max_bytes = max_bytes
        self.crf, self.preset, self.threads = crf, preset, threads
        self.jpeg_quality = jpeg_quality
        # The longest file: 2*max_frames-2 frames. Its rate limit, with a buffer of one
        # second that the encoder may spend at once, fits 90 % of max_bytes (the rest: the
        # container, and VBV's small overshoots).
        longest = (2 * self.max_frames - 2) / float(self.fps)
        self.maxrate = int(0.9 * max_bytes * 8 / (longest + 1.0))
        self._frames: list[np.ndarray] = []  # I420, one buffer a frame
        self._poster: bytes | None = None
        self._queue: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self._added = 0
        self._error: BaseException | None = None
        self._result: Clip | None = None
        self._cancelled = False
        self._finish_called: float | None = None
        self._thread = threading.Thread(target=self._run, name="clip-encoder", daemon=True)
        self._thread.start()

    @property
    def recorded(self) -> int:
        return self._added

    def add(self, frame: np.ndarray) -> bool:
        """Queue a BGR frame for the clip; False when the recording is full (max_seconds)
        or over (finished, cancelled)."""
        if (self._added >= self.max_frames or self._finish_called is not None
                or self._cancelled):
            return False
        self._added += 1
        self._queue.put(frame)
        return True

    def finish(self) -> Clip:
        """The clip, once the frames still queued and the backward half are encoded. A
        BoothError when it cannot be made (fewer than two frames, an encoder failure)."""
        if self._finish_called is None:
            self._finish_called = time.perf_counter()
            self._queue.put(None)
        self._thread.join(_FINISH_TIMEOUT)
        if self._thread.is_alive():
            self.cancel()
            raise BoothError("the clip's encoder stopped answering: restart the booth")
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise BoothError("the recording was cancelled, so there is no clip: record again")
        return self._result

    def cancel(self) -> None:
        """Abandon the recording (the camera dropped out, the visitor left): the thread
        stops after the frame it is on and the frames are let go."""
        self._cancelled = True
        self._queue.put(None)

    def close(self) -> None:
        """Cancel and wait for the encoder's thread (inside PyAV and OpenCV: it must end
        before the process does, see booth.station.stops)."""
        self.cancel()
        self._thread.join(_FINISH_TIMEOUT)

    # The encoder's thread.

    def _run(self) -> None:
        _yield_to_the_preview()
        try:
            self._result = self._record()
        except BoothError as exc:
            self._error = exc
        except Exception as exc:  # PyAV's errors, a frame that is not a picture
            log.warning("clip encoding failed: %s", first_line(exc))
            self._error = BoothError(f"the clip could not be encoded ({first_line(exc)}); "
                                     f"take a photo instead, and restart the booth if it "
                                     f"happens again")
        finally:
            self._frames = []  # the recording's memory goes back when its clip is made

    def _record(self) -> Clip | None:
        encoder = self._encoder_at(self.maxrate, self.crf)
        while (frame := self._queue.get()) is not None:
            if self._cancelled:
                return None
            if frame.shape[1::-1] != self.size:
                frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
            if not self._frames:
                self._poster = encode_jpeg(frame, self.jpeg_quality)
            # OpenCV's I420 is BT.601 at studio range: the stream is tagged so (see Encoder).
            i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
            self._frames.append(i420)
            encoder.encode(i420)
        if self._cancelled:
            return None
        n = len(self._frames)
        if n < 2:
            raise BoothError(f"a clip needs at least two frames and the recording gave {n}: "
                             f"check the camera")
        for i420 in reversed(self._frames[1:-1]):
            encoder.encode(i420)
        mp4 = encoder.close()
        maxrate, crf = self.maxrate, self.crf
        for _ in range(_RETRIES):
            if len(mp4) <= self.max_bytes:
                break
            # Rare (noise the rate limit let through): the whole clip again, at half the rate
            # and a coarser quality (which holds where a rate too low for x264 is ignored).
            log.info("clip of %d bytes over %d; encoding it again", len(mp4), self.max_bytes)
            maxrate, crf = maxrate // 2, min(51, crf + 6)
            encoder = self._encoder_at(maxrate, crf)
            for i420 in self._sequence():
                encoder.encode(i420)
            mp4 = encoder.close()
        if len(mp4) > self.max_bytes:
            raise BoothError(f"the clip stays over {self.max_bytes} bytes even at a low rate: "
                             f"record a shorter clip or take a photo")
        assert self._poster is not None and self._finish_called is not None
        frames = 2 * n - 2
        return Clip(mp4, self._poster, *self.size, self.fps, frames, n,
                    frames / float(self.fps), time.perf_counter() - self._finish_called)

    def _encoder_at(self, maxrate: int, crf: int) -> Encoder:
        return Encoder(self.av, self.size, self.fps, crf, self.preset, self.threads, maxrate)

    def _sequence(self) -> Iterator[np.ndarray]:
        yield from self._frames
        yield from reversed(self._frames[1:-1])


def _yield_to_the_preview() -> None:
    """Lower this thread's scheduling priority (Linux: the nice value is a thread's own), so
    where the cores are short the preview keeps its rate and the clip waits; a thread may
    always lower its own priority, and elsewhere it stays as it is."""
    try:
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, os.getpriority(os.PRIO_PROCESS, me) + NICENESS)
    except (AttributeError, OSError):
        pass


class Encoder:
    """One pass of libx264 into an MP4 in memory, frame by frame (I420 frames of `size`);
    `maxrate`: the rate limit in bits a second, None for constant quality alone."""

    def __init__(self, av: Any, size: tuple[int, int], fps: Fraction | float, crf: int,
                 preset: str, threads: int, maxrate: int | None) -> None:
        self.av = av
        self.buffer = buffer = io.BytesIO()
        # faststart: the index (moov) before the pictures (mdat), so a phone starts playing
        # before the whole file is in. Its second pass reads the file written so far through
        # a second handle, which io_open gives it (a copy: the pass reads ahead of its writes).
        # The handle's function knows the buffer, not the encoder: an encoder -> container ->
        # function -> encoder cycle kept each clip's x264 state (about 70 MB) until Python's
        # occasional full collection, so a station's memory grew by that much a boomerang.
        self.container = av.open(buffer, "w", format="mp4", options={"movflags": "+faststart"},
                                 io_open=lambda _url, _flags, _options: io.BytesIO(
                                     buffer.getvalue()))
        width, height = size
        # The colours as OpenCV's I420 has them (BT.601, studio range), said in the stream so
        # a browser converts them back as they were made.
        options = {"crf": str(crf), "preset": preset, "threads": str(threads),
                   "colorspace": "smpte170m", "color_primaries": "smpte170m",
                   "color_trc": "smpte170m", "color_range": "tv"}
        if maxrate:
            options.update(maxrate=str(maxrate), bufsize=str(maxrate))
        stream = self.container.add_stream("libx264", rate=Fraction(fps), options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        self.stream = stream
        self.pts = 0

    def encode(self, i420: np.ndarray) -> None:
        frame = self.av.VideoFrame.from_ndarray(i420, format="yuv420p")
        frame.pts = self.pts
        self.pts += 1
        self.container.mux(self.stream.encode(frame))

    def close(self) -> bytes:
        self.container.mux(self.stream.encode(None))
        self.container.close()
        return self.buffer.getvalue()
