"""A boomerang at the station: its recording and, once made, its loop on the result screen.

The clip's frames are the preview's composite, drawn a second time at the clip's size: the
visitor as the model's mask sees them, smoothed over time as the preview smooths it (steady
edges, no ghost of someone who left), with the scene's effects, above the caption band. The
photo's own cut-out (the matting model refining the edges and hair at full resolution) takes
about 0.6 s a frame, twenty times a frame's time: a clip cannot have it. The composites go to
booth.station.clip's recorder, which encodes them as they come on its own thread.
"""

from __future__ import annotations

import time
from datetime import datetime

import cv2
import numpy as np

from booth.station.clip import ClipRecorder, clip_size
from booth.station.layout import Layout
from booth.vision.pipeline import Analysis, Pipeline

# The recorder takes this much at most: the recording's RECORD_SECONDS and a margin for a
# step that comes late.
MAX_SECONDS = 3.0


class Recording:
    """A boomerang being recorded: `add` each new preview frame while the state machine
    records; then the recorder's `finish` (on the photo worker) makes the clip."""

    def __init__(self, pipeline: Pipeline, band: np.ndarray, fps: float,
                 taken_at: datetime) -> None:
        self.pipeline, self.taken_at = pipeline, taken_at
        ph, pw = pipeline.plate.shape[:2]
        width, height = clip_size(pw, ph + band.shape[0])
        plate_h = round(ph * height / (ph + band.shape[0]))
        self.plate = cv2.resize(pipeline.plate, (width, plate_h), interpolation=cv2.INTER_AREA)
        self.band = cv2.resize(band, (width, height - plate_h), interpolation=cv2.INTER_AREA)
        self.recorder = ClipRecorder((width, height), fps, max_seconds=MAX_SECONDS)
        self.frames: list[np.ndarray] = []  # as encoded: the result screen loops them
        self.someone = False  # anyone clearly in any frame: else no clip is made
        self.seconds: list[float] = []  # what each frame's composite cost the screen's thread

    def add(self, frame: np.ndarray, analysis: Analysis) -> None:
        t0 = time.perf_counter()
        canvas = self.plate.copy()
        if analysis.drawable:
            self.pipeline.draw_photo(canvas, frame, analysis)  # the model's mask: no matte
        picture = np.vstack([canvas, self.band])  # a new array: the recorder keeps it
        if self.recorder.add(picture):
            self.frames.append(picture)
        self.someone = self.someone or analysis.people.confident
        self.seconds.append(time.perf_counter() - t0)

    def cancel(self) -> None:
        self.recorder.cancel()
        self.frames = []

    def close(self) -> None:
        """Cancel, and wait for the encoder's thread to end."""
        self.recorder.close()
        self.frames = []


class Loop:
    """The clip on the result screen: its frames in the file's order (0..n-1, then n-2..1),
    each shown for 1/fps of the clock's time from `start`."""

    def __init__(self, frames: list[np.ndarray], fps: float, layout: Layout,
                 start: float) -> None:
        self.frames, self.fps, self.layout, self.start = frames, fps, layout, start
        self.order = [*range(len(frames)), *range(len(frames) - 2, 0, -1)]
        self.shown = -1  # the index into order on the screen

    def draw(self, screen: np.ndarray, now: float) -> bool:
        """The frame due at `now` into the result screen's picture; True if it changed."""
        i = int(max(0.0, now - self.start) * self.fps) % len(self.order)
        if i == self.shown:
            return False
        self.shown = i
        region = self.layout.photo_region(screen)
        region[:] = cv2.resize(self.frames[self.order[i]], (region.shape[1], region.shape[0]),
                               interpolation=cv2.INTER_LINEAR)
        return True
