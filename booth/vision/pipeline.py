"""The per-frame path: segment, place, composite. It knows no store, web app or screen."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from booth.scene.definition import Scene
from booth.vision.compositing import (
    Drawn,
    Look,
    Matte,
    Placed,
    alpha_from_confidence,
    composite,
    place_ahead,
)
from booth.vision.effects import colour_lut, colour_stats, glow, motion, smooth_mask
from booth.vision.matting import estimate_foreground
from booth.vision.placement import People, Smoother, Transform, find_people, fit_to_stage
from booth.vision.refine import refined_alpha
from booth.vision.segmentation import Segmenter, exposed

# The live preview asks the model again only when the picture has changed since it last
# looked (as obs-backgroundremoval skips inference on a frame that barely changed): most of a
# kiosk's day is an empty room, and a visitor holding still for the countdown needs no new
# cut-out. Changed: more than _STILL_PIXELS pixels of the model's small grey frame differ
# from the one the model saw by more than _STILL_LEVELS (averaged over 3x3 of them). A still
# webcam's noise and JPEG blocks leave 0 to 5 such pixels (sigma up to 6 at 1280x720, Motion
# JPEG); a visitor's edge moved by a model pixel makes one per pixel of outline wherever its
# contrast is over 36, and a moving visitor in the shared video hundreds (fewer than 18 in
# only a tenth of its frames, most of those repeated ones). The model looks again at least
# every _STILL_SECONDS anyway.
_STILL_LEVELS = 12
_STILL_PIXELS = 8
_STILL_SECONDS = 0.5


@dataclass(frozen=True)
class _Look:
    """What the model made of the preview frame it last looked at."""

    grey: np.ndarray  # that frame, small and grey
    at: float  # when (the clock of Pipeline.analyse)
    people: People
    colour: np.ndarray | None


@dataclass(frozen=True)
class Analysis:
    """What one camera frame says about where the people are, where they go, and how their
    colours are shifted toward the scene (the same for the preview and the photo)."""

    people: People
    transform: Transform | None
    colour: np.ndarray | None = None
    # The frame placed for the preview while the model looked at it (Pipeline.analyse).
    placed: Future[Placed | None] | None = None

    @property
    def drawable(self) -> bool:
        return self.people.found and self.transform is not None


def _unchanged(seen: np.ndarray, grey: np.ndarray) -> bool:
    """Whether a small grey frame shows what `seen` showed, a webcam's noise aside."""
    difference = cv2.blur(cv2.absdiff(seen, grey), (3, 3))
    return cv2.countNonZero(cv2.threshold(difference, _STILL_LEVELS, 255,
                                          cv2.THRESH_BINARY)[1]) <= _STILL_PIXELS


class Pipeline:
    def __init__(self, scene: Scene, plate: np.ndarray, segmenter: Segmenter, *,
                 mirror: bool = True, min_person_fraction: float = 0.01) -> None:
        self.scene = scene
        self.effects = scene.effects
        self.plate = plate
        self.segmenter = segmenter
        # The photo's closer second look uses the square model, best on a tight crop.
        self.refiner = Segmenter("square") if self.effects.refine else None
        self.mirror = mirror
        self.min_person_fraction = min_person_fraction
        self.smoother = Smoother()
        self.plate_aspect = plate.shape[1] / plate.shape[0]
        x0, y0, x1, y1 = self.stage_box(plate.shape[1], plate.shape[0])
        self.scene_colour = colour_stats(plate[y0:y1, x0:x1])  # where visitors stand
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # grey frame, mask
        self.timings: dict[str, float] = {}  # seconds per stage of the last analyse()
        self._glows: dict[tuple[int, int], np.ndarray] = {}
        # The live preview: its canvas size, and the people's box and the colour transfer of
        # the frame before, with which a new frame is placed while the model looks at it.
        self._preview: tuple[int, int] | None = None
        self._before: tuple[tuple[float, float, float, float] | None, np.ndarray | None] = (
            None, None)
        self._helper: ThreadPoolExecutor | None = None  # the live preview's second thread
        self._look: _Look | None = None  # the model's last look at a preview frame
        self._last: Analysis | None = None  # the last preview analysis

    def forget(self) -> None:
        """Start the live preview afresh: no placement, smoothing or look of the model's
        carried over from the frames before (a benchmark that analyses one frame again and
        again, timing the whole of it)."""
        self.smoother.reset()
        self._previous = self._look = self._last = None
        self._before = (None, None)

    def analyse(self, frame: np.ndarray, now: float | None = None) -> Analysis:
        """Segment one frame and update the placement. `now` (seconds) smooths mask and
        placement over time, as in the live preview; None treats the frame as a still.

        In the live preview a frame is shown at the placement and colours of the frame
        before (one frame more of the smoothing's 0.3 s, which nobody sees; the visitor's
        picture and cut-out are this frame's), so that, while the model looks at the frame
        on this thread, a second one places it in the preview and does what else needs no
        look at it (see _aside): the two cores share the work, and the frame is ready
        sooner. And the model looks at a preview frame only if the picture changed since it
        last looked (see _STILL_LEVELS); otherwise its last look stands."""
        # Only while someone stays in view: a visitor stepping in is shown at once.
        shown = self.smoother.current if now is not None and self._before[0] else None
        placed = None
        if shown is not None and self._preview is not None:
            w, h = self._preview
            placed = self._second_thread().submit(
                place_ahead, frame, self._before[0], shown, mirror=self.mirror, canvas=(w, h),
                stage_px=self.stage_box(w, h), colour=self._before[1])
        t0 = time.perf_counter()
        small = cv2.resize(frame, self.segmenter.input_size, interpolation=cv2.INTER_LINEAR)
        grey = None if now is None else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        look = self._look
        still = look is not None and now is not None and now - look.at < _STILL_SECONDS and (
            _unchanged(look.grey, grey))
        if still:
            people, colour = look.people, look.colour
            t1 = time.perf_counter()
        else:
            aside = None if now is None else self._second_thread().submit(
                self._aside, small, grey, self._previous, look)
            mask = self.segmenter.segment(exposed(small))
            t1 = time.perf_counter()
            people, colour = self._people(mask, small, grey, now,
                                          None if aside is None else aside.result())
        target = None
        if people.bbox is not None:
            target = fit_to_stage(people.bbox, frame.shape[1] / frame.shape[0],
                                  self.plate_aspect, self.scene.stage, self.mirror)
        transform = target if now is None else self.smoother.update(target, now)
        if now is not None:
            before, self._before = self._before[1], (people.bbox, colour)
            if shown is not None:
                transform, colour = shown, before
        self.timings = {"segment": t1 - t0, "place": time.perf_counter() - t1}
        last = self._last
        if (now is not None and not people.found and last is not None
                and not last.people.found and last.transform is transform):
            return last  # the empty room again: the same analysis, the same screen
        analysis = Analysis(people, transform, colour, placed)
        if now is not None:
            self._last = analysis
        return analysis

    def _second_thread(self) -> ThreadPoolExecutor:
        if self._helper is None:
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview")
        return self._helper

    def _aside(self, small: np.ndarray, grey: np.ndarray,
               previous: tuple[np.ndarray, np.ndarray] | None,
               look: _Look | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """What a preview frame needs that waits for no look of the model's at it, worked
        out on the second thread while the model looks: how the picture moved since the
        frame before (`previous`: its grey frame and mask), for the mask's smoothing; and
        its colour transfer under the people of the last look (a frame's colours are shown
        from the next frame on, see analyse: a cut-out a frame old measures them as well)."""
        moved = None
        if previous is not None and self.effects.temporal > 0:
            moved = motion(previous[0], grey)
        colour = None
        if look is not None and look.people.found:
            colour = self._colour(small, look.people.mask)
        return moved, colour

    def _colour(self, small: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """The colour transfer of a frame at the model's size, under the people's mask."""
        if self.effects.colour <= 0:
            return None
        return colour_lut(colour_stats(small, mask), self.scene_colour, self.effects.colour)

    def _people(self, mask: np.ndarray, small: np.ndarray, grey: np.ndarray | None,
                now: float | None,
                aside: tuple[np.ndarray | None, np.ndarray | None] | None = None,
                ) -> tuple[People, np.ndarray | None]:
        """The people in the model's `mask` of a frame (small: the frame at the model's size;
        grey: the same in grey, for the live preview's smoothing over time, or None for a
        still; `aside`: what _aside made of the frame meanwhile), and their colour
        transfer."""
        moved, colour = aside or (None, None)
        if grey is not None and self.effects.temporal > 0:
            if moved is not None:
                mask = smooth_mask(self._previous[1], mask, moved, self.effects.temporal)
            self._previous = (grey, mask)
        people = find_people(mask, self.min_person_fraction)
        if not people.found:
            colour = None
        elif colour is None:  # a still, or someone the last look did not see
            colour = self._colour(small, people.mask)
        if grey is not None:
            self._look = _Look(grey, now, people, colour)
        return people, colour

    def still_analysis(self, still: np.ndarray, preview: Analysis) -> Analysis | None:
        """The photo's analysis of a still taken at the shutter (booth.camera.sources.StillSource):
        the people found in the still itself, at the preview's placement and colours, so the
        photo shows what the screen showed (the still must have the preview's framing). None
        when nobody is found in it."""
        if preview.transform is None:
            return None
        analysed = self.analyse(still)
        if not analysed.people.found:
            return None
        return Analysis(analysed.people, preview.transform, preview.colour)

    def stage_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        s = self.scene.stage
        return (round(s.left * width), round(s.top * height),
                round(s.right * width), round(s.bottom * height))

    def keep_boxes(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        return [box.pixels(width, height) for _, box in self.scene.keep_visible]

    def look(self, analysis: Analysis, canvas_w: int, canvas_h: int) -> Look:
        e = self.effects
        wrap_px = round(e.light_wrap_width * canvas_h)
        return Look(analysis.colour, e.light_wrap, wrap_px,
                    self._glow(canvas_w, canvas_h, wrap_px) if e.light_wrap > 0 else None,
                    e.shadow, round(e.shadow_height * canvas_h),
                    max(2, round(e.edge_colours * canvas_h)) if e.edge_colours > 0 else 0)

    def _glow(self, width: int, height: int, wrap_px: int) -> np.ndarray:
        """The blurred plate at a canvas size, made once per size (the plate never moves)."""
        key = (width, height)
        if key not in self._glows:
            plate = self.plate if (width, height) == self.plate.shape[1::-1] else cv2.resize(
                self.plate, (width, height), interpolation=cv2.INTER_AREA)
            self._glows[key] = glow(plate, wrap_px)
        return self._glows[key]

    def render(self, canvas: np.ndarray, frame: np.ndarray, analysis: Analysis,
               matte: Matte | None = None, interpolation: int = cv2.INTER_LINEAR,
               colours_estimated: bool = False) -> Drawn | None:
        """Composite into `canvas` (a copy of the plate at any size) in place; returns what
        was drawn (booth.vision.compositing.Drawn), or None when nobody was.
        `colours_estimated`: frame already holds the visitor's own colours at the edge."""
        if not analysis.drawable:
            return None
        h, w = canvas.shape[:2]
        placed, helper = None, None
        if matte is None and interpolation == cv2.INTER_LINEAR and not colours_estimated:
            self._preview = (w, h)  # the live preview's canvas: the next frames are placed ahead
            helper = self._helper  # the preview's second thread (see analyse), if it has one
            if analysis.placed is not None:
                placed = analysis.placed.result()
        if matte is None:
            matte = Matte.from_confidence(analysis.people.mask, frame.shape[1], frame.shape[0])
        look = self.look(analysis, w, h)
        if colours_estimated:
            look = dataclasses.replace(look, edge_colours_px=0)
        return composite(canvas, frame, analysis.people, matte, analysis.transform,
                         mirror=self.mirror, stage_px=self.stage_box(w, h),
                         keep_px=self.keep_boxes(w, h), look=look, interpolation=interpolation,
                         placed=placed, helper=helper)

    def photo_matte(self, frame: np.ndarray, analysis: Analysis) -> Matte | None:
        """The saved photo's cut-out: refined at full resolution (None: the preview's)."""
        if self.refiner is None or analysis.people.bbox is None:
            return None
        alpha, box = refined_alpha(frame, analysis.people.bbox, self.refiner)
        return Matte.from_alpha(alpha, box)

    def photo_alpha(self, frame: np.ndarray, analysis: Analysis,
                    matte: Matte | None = None) -> np.ndarray:
        """The saved photo's cut-out as a float32 alpha at the frame's own size (`matte`:
        the photo_matte() already made for this frame, if any)."""
        h, w = frame.shape[:2]
        if matte is None:
            mask = cv2.resize(analysis.people.mask, (w, h), interpolation=cv2.INTER_LINEAR)
            return alpha_from_confidence(mask)
        alpha = np.zeros((h, w), np.float32)
        x0, y0 = int(matte.to_frame[0, 2]), int(matte.to_frame[1, 2])
        mh, mw = matte.values.shape
        alpha[y0:y0 + mh, x0:x0 + mw] = matte.values
        return alpha

    def cutout(self, frame: np.ndarray, analysis: Analysis,
               matte: Matte | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The saved photo's cut-out at the frame's own size, no effects: the visitor's
        estimated colours (BGR uint8) and the alpha (float32 0..1)."""
        alpha = self.photo_alpha(frame, analysis, matte)
        return self._photo_colours(frame, alpha, matte), alpha

    def _photo_colours(self, frame: np.ndarray, alpha: np.ndarray,
                       matte: Matte | None) -> np.ndarray:
        """The frame with the visitor's own colours estimated at their soft edges (over the
        refined matte's box only; with the preview's matte, the whole frame)."""
        if self.effects.edge_colours <= 0:
            return frame
        if matte is None:
            return estimate_foreground(frame, alpha)
        x0, y0 = int(matte.to_frame[0, 2]), int(matte.to_frame[1, 2])
        mh, mw = matte.values.shape
        colours = frame.copy()
        colours[y0:y0 + mh, x0:x0 + mw] = estimate_foreground(
            frame[y0:y0 + mh, x0:x0 + mw], matte.values)
        return colours

    def final(self, frame: np.ndarray, analysis: Analysis,
              matte: Matte | None = None) -> np.ndarray:
        """The saved photo's picture area: the full-resolution plate with the people in it
        (`matte`: the photo_matte() already made for this frame, if any)."""
        canvas = self.plate.copy()
        matte = matte or self.photo_matte(frame, analysis)
        if matte is not None:
            # The refined cut-out can reach past the small mask's box (a raised hand): the
            # compositor works on all of it, placed as the preview placed the visitor.
            extent = matte.extent(frame.shape[1], frame.shape[0])
            if extent is not None:
                people = dataclasses.replace(analysis.people, bbox=extent)
                analysis = dataclasses.replace(analysis, people=people)
            if self.effects.edge_colours > 0:
                frame = self._photo_colours(frame, matte.values, matte)
        self.render(canvas, frame, analysis, matte, interpolation=cv2.INTER_CUBIC,
                    colours_estimated=matte is not None)
        return canvas
