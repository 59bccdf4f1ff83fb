"""Where the people go: from a low-resolution person mask to a smoothed camera-to-scene transform.

Geometry is kept in resolution-free units so one transform serves the preview and the full-size
photo: camera positions in camera heights (U, V), scene positions in plate heights (X, Y).
A transform is X = k * U + ox, Y = k * V + oy (uniform scale: people are never stretched).
The live preview smooths it over time (Smoother); the saved photo takes the preview's, or
fits a frame on its own (fit_to_stage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from booth.scene.definition import Stage

# A bbox whose bottom is this close to the frame's bottom is cut off by the camera.
_CUT_OFF_MARGIN = 0.02
# Upper bound on k, so a tiny far-away figure is not blown up into mush.
_MAX_SCALE = 2.5
# A photo is only taken of someone the model is sure of: a solid core of at least this share
# of the frame, and most of what looks like a person solid (a blurred, half-transparent hand
# near the lens is mostly doubt). Visitors in the test media, a dim room included: core
# 0.06-0.25 of the frame, 68-99 % of it solid; faded, smeared figures: 13-56 % solid (fainter
# ones are not found at all; a figure clear enough to be seen as a person may pass).
_CONFIDENT_CORE = 0.02
_CONFIDENT_SOLID = 0.6
# Where a standing adult's head is in the frame (a share of its height from the top). A
# visitor cut off by the frame's bottom is shown at most at that adult's scale: a child or a
# wheelchair user, whose head is lower, is then as big as they are beside the adult, feet on
# the same line, not magnified until their head reaches the stage's top (a giant face).
_ADULT_HEAD_TOP = 0.12


@dataclass(frozen=True)
class People:
    """The people found in one frame: a cleaned mask and their joint bounding box."""

    mask: np.ndarray  # float32, the segmenter's size, small blobs removed
    bbox: tuple[float, float, float, float] | None  # u0, v0, u1, v1 as fractions of the frame
    # Where the saved photo may show anyone (the mask's size, 0/1), when someone touching
    # the visitor was left off (booth.vision.presence); None: anywhere.
    allowed: np.ndarray | None = None
    # The pose that confirmed them (booth.vision.presence): its 33 landmarks (u, v fractions
    # of the frame, visibility) and its own mask of the visitor (float32, its size).
    joints: np.ndarray | None = None
    body: np.ndarray | None = None

    @property
    def found(self) -> bool:
        return self.bbox is not None

    @property
    def confident(self) -> bool:
        """Whether someone is clearly there: worth a photo."""
        if self.bbox is None:
            return False
        core = np.count_nonzero(self.mask > 0.8)
        soft = max(1, np.count_nonzero(self.mask > 0.5))
        return core >= _CONFIDENT_CORE * self.mask.size and core >= _CONFIDENT_SOLID * soft

    def within(self, alpha: np.ndarray, box: tuple[int, int, int, int],
               frame_w: int, frame_h: int) -> np.ndarray:
        """`alpha` over the frame pixels `box` (x0, y0, x1, y1), cut in place to where the
        photo may show anyone (see allowed)."""
        if self.allowed is None:
            return alpha
        h, w = self.allowed.shape
        x0, y0, x1, y1 = box
        # The box's part of the mask, scaled to the box (a soft edge of a mask pixel).
        sx, sy = w / frame_w, h / frame_h
        to_mask = np.array([[sx, 0, (x0 + 0.5) * sx - 0.5], [0, sy, (y0 + 0.5) * sy - 0.5]])
        region = cv2.warpAffine(self.allowed.astype(np.float32), to_mask, (x1 - x0, y1 - y0),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        alpha *= region
        return alpha

    @property
    def feet_visible(self) -> bool:
        """Whether the camera sees the bottom of the people (else they stand close)."""
        return self.bbox is not None and self.bbox[3] < 1.0 - _CUT_OFF_MARGIN


@dataclass(frozen=True)
class Transform:
    k: float
    ox: float
    oy: float

    def pixel_matrix(self, frame_w: int, frame_h: int, canvas_h: int, mirror: bool,
                     dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
        """2x3 affine from camera pixels to canvas pixels (canvas = plate area of height
        canvas_h), shifted by (-dx, -dy) so it can render straight into a region."""
        s = canvas_h * self.k / frame_h
        tx, ty = canvas_h * self.ox - dx, canvas_h * self.oy - dy
        if mirror:  # u -> frame_w - u: the visitor sees a mirror
            return np.array([[-s, 0.0, s * frame_w + tx], [0.0, s, ty]], np.float64)
        return np.array([[s, 0.0, tx], [0.0, s, ty]], np.float64)


def find_people(mask: np.ndarray, min_fraction: float) -> People:
    """Drop blobs smaller than min_fraction of the frame; box up everyone that is left."""
    count, labels, stats = components(mask)
    min_area = max(1.0, min_fraction * mask.size)
    keep = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    return people_of(mask, labels, stats, keep)


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """The blobs of a person mask (over 0.5), as cv2.connectedComponentsWithStats counts,
    labels and stats them (label 0: the background)."""
    binary = (mask > 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    return count, labels, stats


def people_of(mask: np.ndarray, labels: np.ndarray, stats: np.ndarray,
              keep: list[int]) -> People:
    """The people of `mask` in the blobs `keep` (labels and stats: see components)."""
    if not keep:
        return People(np.zeros_like(mask), None)
    if len(keep) < len(stats) - 1:
        # Grow the kept blobs a little so their soft edges (below 0.5) survive the cut.
        kept = np.isin(labels, keep).astype(np.uint8)
        kept = cv2.dilate(kept, np.ones((5, 5), np.uint8))
        mask = mask * kept
    h, w = mask.shape
    x0 = min(stats[i, cv2.CC_STAT_LEFT] for i in keep)
    y0 = min(stats[i, cv2.CC_STAT_TOP] for i in keep)
    x1 = max(stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_WIDTH] for i in keep)
    y1 = max(stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] for i in keep)
    return People(mask, (float(x0 / w), float(y0 / h), float(x1 / w), float(y1 / h)))


def fit_to_stage(bbox: tuple[float, float, float, float], frame_aspect: float,
                 plate_aspect: float, stage: Stage, mirror: bool) -> Transform:
    """Fit everyone into the stage: feet on the ground line when the camera sees them,
    otherwise the frame's bottom on the photo's bottom (a visitor standing close)."""
    u0, v0, u1, v1 = bbox
    if mirror:
        u0, u1 = 1.0 - u1, 1.0 - u0
    u0, u1 = u0 * frame_aspect, u1 * frame_aspect  # fractions of width -> camera heights
    left, right = stage.left * plate_aspect, stage.right * plate_aspect
    width_fit = (right - left) / max(u1 - u0, 1e-6)
    if v1 >= 1.0 - _CUT_OFF_MARGIN:
        top = min(v0, _ADULT_HEAD_TOP)
        k = min((stage.bottom - stage.top) / max(1.0 - top, 1e-6), width_fit, _MAX_SCALE)
        oy = stage.bottom - k * 1.0
    else:
        k = min((stage.ground - stage.top) / max(v1 - v0, 1e-6), width_fit, _MAX_SCALE)
        oy = stage.ground - k * v1
    ox = (left + right) / 2 - k * (u0 + u1) / 2
    return Transform(k, ox, oy)


class Smoother:
    """Exponential smoothing of the transform over time, so nobody jitters or jumps.

    Scale is smoothed in log space (a zoom feels even); the first sighting snaps into place.
    """

    def __init__(self, time_constant: float = 0.3) -> None:
        self.tau = time_constant
        self.current: Transform | None = None
        self._t: float | None = None

    def update(self, target: Transform | None, now: float) -> Transform | None:
        if target is None:  # nobody in view: hold still until someone is back
            self._t = now
            return self.current
        if self.current is None or self._t is None:
            self.current, self._t = target, now
            return target
        a = 1.0 - math.exp(-max(now - self._t, 0.0) / self.tau)
        c = self.current
        k = math.exp(math.log(c.k) + a * (math.log(target.k) - math.log(c.k)))
        self.current = Transform(k, c.ox + a * (target.ox - c.ox), c.oy + a * (target.oy - c.oy))
        self._t = now
        return self.current

    def reset(self) -> None:
        self.current, self._t = None, None
