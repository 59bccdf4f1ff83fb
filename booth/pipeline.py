"""The per-frame path: segment, place, composite. It knows no store, web app or screen."""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from booth.compositing import composite
from booth.placement import People, Smoother, Transform, find_people, fit_to_stage
from booth.scene import Scene
from booth.segmentation import Segmenter


@dataclass(frozen=True)
class Analysis:
    """What one camera frame says about where the people are and where they go."""

    people: People
    transform: Transform | None

    @property
    def drawable(self) -> bool:
        return self.people.found and self.transform is not None


class Pipeline:
    def __init__(self, scene: Scene, plate: np.ndarray, segmenter: Segmenter, *,
                 mirror: bool = True, min_person_fraction: float = 0.01) -> None:
        self.scene = scene
        self.plate = plate
        self.segmenter = segmenter
        self.mirror = mirror
        self.min_person_fraction = min_person_fraction
        self.smoother = Smoother()
        self.plate_aspect = plate.shape[1] / plate.shape[0]
        self.timings: dict[str, float] = {}  # seconds per stage of the last analyse()

    def analyse(self, frame: np.ndarray, now: float | None = None) -> Analysis:
        """Segment one frame and update the placement. `now` (seconds) smooths the placement
        over time, as in the live preview; None places this frame on its own (a still)."""
        t0 = time.perf_counter()
        mask = self.segmenter.segment_small(frame)
        t1 = time.perf_counter()
        people = find_people(mask, self.min_person_fraction)
        target = None
        if people.bbox is not None:
            target = fit_to_stage(people.bbox, frame.shape[1] / frame.shape[0],
                                  self.plate_aspect, self.scene.stage, self.mirror)
        transform = target if now is None else self.smoother.update(target, now)
        self.timings = {"segment": t1 - t0, "place": time.perf_counter() - t1}
        return Analysis(people, transform)

    def stage_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        s = self.scene.stage
        return (round(s.left * width), round(s.top * height),
                round(s.right * width), round(s.bottom * height))

    def keep_boxes(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        return [box.pixels(width, height) for _, box in self.scene.keep_visible]

    def render(self, canvas: np.ndarray, frame: np.ndarray, analysis: Analysis,
               interpolation: int = cv2.INTER_LINEAR) -> np.ndarray | None:
        """Composite into `canvas` (a copy of the plate at any size) in place; returns the
        alpha used over the person region, or None when nobody was drawn."""
        if not analysis.drawable:
            return None
        h, w = canvas.shape[:2]
        return composite(canvas, frame, analysis.people, analysis.transform,
                         mirror=self.mirror, stage_px=self.stage_box(w, h),
                         keep_px=self.keep_boxes(w, h), interpolation=interpolation)

    def final(self, frame: np.ndarray, analysis: Analysis) -> np.ndarray:
        """The saved photo's picture area: the full-resolution plate with the people in it."""
        canvas = self.plate.copy()
        self.render(canvas, frame, analysis, interpolation=cv2.INTER_CUBIC)
        return canvas
