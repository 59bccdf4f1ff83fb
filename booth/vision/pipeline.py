"""The two paths through the vision layer: the live preview and the saved photo.

The live preview, every camera frame: `Pipeline.preview_analysis(frame, now)` finds the
people (the model looks again only when the picture changed), smooths their placement and
mask over time and, on a second thread, places the frame ahead of its analysis;
`Pipeline.draw_preview(canvas, frame, analysis)` composites them into the screen's small
plate with that thread's help.

The saved photo, once a capture: `Pipeline.photo_analysis(frame)` (or `still_analysis`, for
a still taken at the shutter) finds the people in one frame on its own, confirmed by a
second look (booth.vision.presence; `confirm` for the preview's analysis); `photo_matte`
refines their cut-out at full resolution; `final` composites it into the full-size plate
(through `draw_photo`; `shown_final`: None when it would hardly show anyone) and `cutout`
gives the cut-out alone.

Both paths share the model, the placement and the compositor (booth.vision.compositing). It
knows no store, web app or screen.
"""

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
    Finish,
    Matte,
    PixelBox,
    Placed,
    alpha_from_confidence,
    composite,
    place_ahead,
)
from booth.vision.effects import colour_lut, colour_stats, glow, motion, smooth_mask
from booth.vision.fusion import PIECE, fused_matte
from booth.vision.matting import estimate_foreground
from booth.vision.modnet import Modnet
from booth.vision.placement import People, Smoother, Transform, find_people, fit_to_stage
from booth.vision.presence import Presence, shows_someone
from booth.vision.preview_state import (
    STILL_SECONDS,
    Aside,
    Before,
    Sight,
    SmoothedMask,
    unchanged,
)
from booth.vision.refine import refined_alpha
from booth.vision.segmentation import Segmenter, exposed


@dataclass(frozen=True)
class Analysis:
    """What one camera frame says about where the people are, where they go, and how their
    colours are shifted toward the scene (the same for the preview and the photo)."""

    people: People
    transform: Transform | None
    colour: np.ndarray | None = None
    # The frame placed for the preview while the model looked at it (preview_analysis).
    placed: Future[Placed | None] | None = None
    # The photo's second look (booth.vision.presence) confirmed the people in this frame.
    confirmed: bool = False

    @property
    def drawable(self) -> bool:
        return self.people.found and self.transform is not None


class Pipeline:
    """The two paths over one scene, plate and model, and the live preview's state between
    its frames (one preview per pipeline; the photo path keeps none)."""

    def __init__(self, scene: Scene, plate: np.ndarray, segmenter: Segmenter, *,
                 mirror: bool = True, min_person_fraction: float = 0.01,
                 matting: Modnet | None = None) -> None:
        self.scene = scene
        self.effects = scene.effects
        self.plate = plate
        self.segmenter = segmenter
        # MODNet for the saved photo's edges and hair (None: not installed, MediaPipe alone).
        self.portrait = matting
        # The photo's closer second look uses the square model, best on a tight crop.
        self.refiner = Segmenter("square") if self.effects.refine else None
        self.presence = Presence()  # who is in the photo: a second look, once a photo
        self.mirror = mirror
        self.min_person_fraction = min_person_fraction
        self.smoother = Smoother()
        self.plate_aspect = plate.shape[1] / plate.shape[0]
        x0, y0, x1, y1 = self.stage_box(plate.shape[1], plate.shape[0])
        self.scene_colour = colour_stats(plate[y0:y1, x0:x1])  # where visitors stand
        self.timings: dict[str, float] = {}  # seconds per stage of the last analysis
        self._glows: dict[tuple[int, int], np.ndarray] = {}
        # The live preview's state: its canvas size (the frames after the first drawn are
        # placed ahead for it), the frame before, the mask as smoothed, the model's last
        # sight, the last analysis, and the second thread.
        self._preview_canvas: tuple[int, int] | None = None
        self._before = Before()
        self._smoothed: SmoothedMask | None = None
        self._sight: Sight | None = None
        self._last_analysis: Analysis | None = None
        self._helper: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """End the threads: the preview's second one, MediaPipe's graphs, ONNX Runtime's
        pool. Once the station and its photo worker have stopped."""
        if self._helper is not None:
            self._helper.shutdown(wait=True)
            self._helper = None
        for model in (self.segmenter, self.refiner, self.presence, self.portrait):
            if model is not None:
                model.close()

    def forget(self) -> None:
        """Start the live preview afresh: no placement, smoothing or sight of the model's
        carried over from the frames before (a benchmark that analyses one frame again and
        again, timing the whole of it)."""
        self.smoother.reset()
        self._smoothed = self._sight = self._last_analysis = None
        self._before = Before()

    # The live preview.

    def preview_analysis(self, frame: np.ndarray, now: float) -> Analysis:
        """Segment one preview frame and update the placement, smoothing mask and placement
        over time (`now`, seconds).

        A frame is shown at the placement and colours of the frame before (one frame more of
        the smoothing's 0.3 s, which nobody sees; the visitor's picture and cut-out are this
        frame's), so that, while the model looks at the frame on this thread, a second one
        places it in the preview and does what else needs no look at it (see _aside): the
        two cores share the work, and the frame is ready sooner. And the model looks at a
        frame only if the picture changed since it last looked (see
        preview_state.STILL_LEVELS); otherwise its last sight stands."""
        # Only while someone stays in view: a visitor stepping in is shown at once.
        before = self._before
        shown = self.smoother.current if before.bbox is not None else None
        placed = None
        if shown is not None and self._preview_canvas is not None:
            w, h = self._preview_canvas
            placed = self._second_thread().submit(
                place_ahead, frame, before.bbox, shown, mirror=self.mirror, canvas=(w, h),
                stage_px=self.stage_box(w, h), colour=before.colour)
        t0 = time.perf_counter()
        small = cv2.resize(frame, self.segmenter.input_size, interpolation=cv2.INTER_LINEAR)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        sight = self._sight
        if sight is not None and now - sight.at < STILL_SECONDS and unchanged(sight.grey,
                                                                                grey):
            t1 = time.perf_counter()
        else:
            aside = self._second_thread().submit(self._aside, small, grey, self._smoothed,
                                                 sight)
            mask = self.segmenter.segment(exposed(small))
            t1 = time.perf_counter()
            sight = self._look_again(mask, small, grey, now, aside.result())
        people, colour = sight.people, sight.colour
        transform = self.smoother.update(self._target(people, frame), now)
        self._before = Before(people.bbox, colour)
        if shown is not None:
            transform, colour = shown, before.colour
        self.timings = {"segment": t1 - t0, "place": time.perf_counter() - t1}
        last = self._last_analysis
        if (not people.found and last is not None and not last.people.found
                and last.transform is transform):
            return last  # the empty room again: the same analysis, the same screen
        self._last_analysis = Analysis(people, transform, colour, placed)
        return self._last_analysis

    def _second_thread(self) -> ThreadPoolExecutor:
        if self._helper is None:
            self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="preview")
        return self._helper

    def _aside(self, small: np.ndarray, grey: np.ndarray, smoothed: SmoothedMask | None,
               sight: Sight | None) -> Aside:
        """What a preview frame needs that waits for no look of the model's at it, worked
        out on the second thread while the model looks: how the picture moved since the
        frame before (`smoothed`), for the mask's smoothing; and its colour transfer under
        the people of the last sight (a frame's colours are shown from the next frame on,
        see preview_analysis: a cut-out a frame old measures them as well)."""
        moved = None
        if smoothed is not None and self.effects.temporal > 0:
            moved = motion(smoothed.grey, grey)
        colour = None
        if sight is not None and sight.people.found:
            colour = self._colour(small, sight.people.mask)
        return Aside(moved, colour)

    def _look_again(self, mask: np.ndarray, small: np.ndarray, grey: np.ndarray, now: float,
                    aside: Aside) -> Sight:
        """The model's new sight of a preview frame: the people in its `mask` (smoothed over
        time) and their colour transfer (small: the frame at the model's size; grey: the
        same in grey; `aside`: what _aside made of the frame meanwhile)."""
        if self.effects.temporal > 0:
            if aside.moved is not None:
                mask = smooth_mask(self._smoothed.mask, mask, aside.moved,
                                   self.effects.temporal)
            self._smoothed = SmoothedMask(grey, mask)
        people = find_people(mask, self.min_person_fraction)
        colour = aside.colour
        if not people.found:
            colour = None
        elif colour is None:  # someone the last sight did not see
            colour = self._colour(small, people.mask)
        self._sight = Sight(grey, now, people, colour)
        return self._sight

    def draw_preview(self, canvas: np.ndarray, frame: np.ndarray,
                     analysis: Analysis) -> Drawn | None:
        """Composite a preview frame into `canvas` (the plate at the screen's size) in
        place, with what the second thread placed ahead and its help; returns what was
        drawn (booth.vision.compositing.Drawn), or None when nobody was. The frames after
        are placed ahead for this canvas."""
        if not analysis.drawable:
            return None
        h, w = canvas.shape[:2]
        self._preview_canvas = (w, h)
        placed = None if analysis.placed is None else analysis.placed.result()
        return self._draw(canvas, frame, analysis, None, self.finish(analysis, w, h),
                          cv2.INTER_LINEAR, placed=placed, helper=self._helper)

    # The saved photo.

    def photo_analysis(self, frame: np.ndarray) -> Analysis:
        """Segment one frame on its own, as the saved photo is made: no smoothing over
        time, nothing carried over from the frames before or to the frames after. Its
        people are confirmed (see confirm): nobody found when the second look finds none."""
        t0 = time.perf_counter()
        small = cv2.resize(frame, self.segmenter.input_size, interpolation=cv2.INTER_LINEAR)
        mask = self.segmenter.segment(exposed(small))
        t1 = time.perf_counter()
        people = self.presence.visitors(frame, find_people(mask, self.min_person_fraction))
        t2 = time.perf_counter()
        colour = self._colour(small, people.mask) if people.found else None
        transform = self._target(people, frame)
        self.timings = {"segment": t1 - t0, "presence": t2 - t1,
                        "place": time.perf_counter() - t2}
        return Analysis(people, transform, colour, confirmed=True)

    def confirm(self, frame: np.ndarray, analysis: Analysis) -> Analysis:
        """The analysis of the frame a photo is made from (the preview's, say) with only
        the people a second, independent look finds there (booth.vision.presence): the
        visitor and anyone as tall; nobody when it finds no body on the mask."""
        if analysis.confirmed:
            return analysis
        people = self.presence.visitors(frame, analysis.people)
        return dataclasses.replace(analysis, people=people, confirmed=True)

    def still_analysis(self, still: np.ndarray, preview: Analysis) -> Analysis | None:
        """The photo's analysis of a still taken at the shutter (booth.camera.sources.StillSource):
        the people found in the still itself, at the preview's placement and colours, so the
        photo shows what the screen showed (the still must have the preview's framing). None
        when nobody is found in it."""
        if preview.transform is None:
            return None
        analysed = self.photo_analysis(still)
        if not analysed.people.found:
            return None
        return Analysis(analysed.people, preview.transform, preview.colour, confirmed=True)

    def photo_matte(self, frame: np.ndarray, analysis: Analysis) -> Matte | None:
        """The saved photo's cut-out: refined at full resolution (None: the preview's), fused
        with the portrait-matting model's edges and hair when there is one (booth.vision.fusion).
        The model looks at the whole frame: on a crop round MediaPipe's person it loses what
        they hold or push (a pram: DAVIS tuning part IoU 0.787 -> 0.751)."""
        if self.refiner is None or analysis.people.bbox is None:
            return None
        h, w = frame.shape[:2]
        alpha, box = refined_alpha(frame, analysis.people.bbox, self.refiner)
        matte = Matte.from_alpha(analysis.people.within(alpha, box, w, h), box)
        if self.portrait is None:
            return matte
        modnet = self.portrait.alpha(frame)
        box = _fusion_box(modnet, box)
        x0, y0, x1, y1 = box
        modnet = analysis.people.within(modnet[y0:y1, x0:x1].copy(), box, w, h)
        people = analysis.people
        return fused_matte(matte, modnet, (x0, y0), frame[y0:y1, x0:x1], people.joints, people.body)

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
        return self._final(frame, analysis, matte)[0]

    def shown_final(self, frame: np.ndarray, analysis: Analysis,
                    matte: Matte | None = None) -> np.ndarray | None:
        """final(), or None when the picture would hardly show anyone (a sliver of sleeve
        at the frame's edge, a figure behind the scene's foreground): no photo then."""
        canvas, drawn = self._final(frame, analysis, matte)
        return canvas if shows_someone(drawn, canvas.shape[1], canvas.shape[0]) else None

    def _final(self, frame: np.ndarray, analysis: Analysis,
               matte: Matte | None) -> tuple[np.ndarray, Drawn | None]:
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
        drawn = self.draw_photo(canvas, frame, analysis, matte,
                                colours_estimated=matte is not None)
        return canvas, drawn

    def draw_photo(self, canvas: np.ndarray, frame: np.ndarray, analysis: Analysis,
                   matte: Matte | None = None, *,
                   colours_estimated: bool = False) -> Drawn | None:
        """Composite the photo's people into `canvas` (the plate, at full resolution for the
        saved photo) in place, bicubic, with `matte` (None: the model's small mask); returns
        what was drawn, or None when nobody was. `colours_estimated`: frame already holds
        the visitor's own colours at the edge (see cutout)."""
        if not analysis.drawable:
            return None
        h, w = canvas.shape[:2]
        finish = self.finish(analysis, w, h)
        if colours_estimated:
            finish = dataclasses.replace(finish, edge_colours_px=0)
        return self._draw(canvas, frame, analysis, matte, finish, cv2.INTER_CUBIC)

    # What both paths share.

    def _target(self, people: People, frame: np.ndarray) -> Transform | None:
        """Where the people of a frame go on the stage (None: nobody to place)."""
        if people.bbox is None:
            return None
        return fit_to_stage(people.bbox, frame.shape[1] / frame.shape[0], self.plate_aspect,
                            self.scene.stage, self.mirror)

    def _colour(self, small: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """The colour transfer of a frame at the model's size, under the people's mask."""
        if self.effects.colour <= 0:
            return None
        return colour_lut(colour_stats(small, mask), self.scene_colour, self.effects.colour)

    def stage_box(self, width: int, height: int) -> PixelBox:
        s = self.scene.stage
        return (round(s.left * width), round(s.top * height),
                round(s.right * width), round(s.bottom * height))

    def keep_boxes(self, width: int, height: int) -> list[PixelBox]:
        return [box.pixels(width, height) for _, box in self.scene.keep_visible]

    def finish(self, analysis: Analysis, canvas_w: int, canvas_h: int) -> Finish:
        """The effects of a composite of `analysis` into a canvas of this size."""
        e = self.effects
        wrap_px = round(e.light_wrap_width * canvas_h)
        edge_px = max(2, round(e.edge_colours * canvas_h)) if e.edge_colours > 0 else 0
        return Finish(
            colour=analysis.colour, light_wrap=e.light_wrap, light_wrap_px=wrap_px,
            glow=self._glow(canvas_w, canvas_h, wrap_px) if e.light_wrap > 0 else None,
            shadow=e.shadow, shadow_px=round(e.shadow_height * canvas_h),
            edge_colours_px=edge_px)

    def _glow(self, width: int, height: int, wrap_px: int) -> np.ndarray:
        """The blurred plate at a canvas size, made once per size (the plate never moves)."""
        key = (width, height)
        if key not in self._glows:
            plate = self.plate if (width, height) == self.plate.shape[1::-1] else cv2.resize(
                self.plate, (width, height), interpolation=cv2.INTER_AREA)
            self._glows[key] = glow(plate, wrap_px)
        return self._glows[key]

    def _draw(self, canvas: np.ndarray, frame: np.ndarray, analysis: Analysis,
              matte: Matte | None, finish: Finish, interpolation: int, *,
              placed: Placed | None = None, helper: ThreadPoolExecutor | None = None,
              ) -> Drawn | None:
        h, w = canvas.shape[:2]
        if matte is None:
            matte = Matte.from_confidence(analysis.people.mask, frame.shape[1], frame.shape[0])
        return composite(canvas, frame, analysis.people, matte, analysis.transform,
                         mirror=self.mirror, stage_px=self.stage_box(w, h),
                         keep_px=self.keep_boxes(w, h), finish=finish,
                         interpolation=interpolation, placed=placed, helper=helper)


def _fusion_box(modnet: np.ndarray, box: PixelBox) -> PixelBox:
    """Where the fusion can draw anyone: MediaPipe's matte (`box`) and MODNet's pieces
    (the fusion keeps those on the person), grown by a tenth of the frame's height, more than
    the fusion grows them (booth.vision.fusion.GROW, a share of the person's height); fusing
    there alone gives the whole frame's result for less work."""
    h, w = modnet.shape
    solid = modnet > PIECE
    rows, cols = np.nonzero(solid.any(axis=1))[0], np.nonzero(solid.any(axis=0))[0]
    x0, y0, x1, y1 = box
    if rows.size:
        x0, x1 = min(x0, int(cols[0])), max(x1, int(cols[-1]) + 1)
        y0, y1 = min(y0, int(rows[0])), max(y1, int(rows[-1]) + 1)
    grow = h // 10 + 2
    # On multiples of 4: the fusion's gap rule works at a quarter of the size, whose pixels
    # must be the whole frame's.
    x0, y0 = max(0, x0 - grow) // 4 * 4, max(0, y0 - grow) // 4 * 4
    return x0, y0, min(w, -(-(x1 + grow) // 4) * 4), min(h, -(-(y1 + grow) // 4) * 4)
