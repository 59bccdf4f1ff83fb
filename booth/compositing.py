"""Put the people into the plate: warp only the region around them and blend with a soft alpha.

The same code renders the live preview (a small plate, every frame) and the saved photo (the
plate at full resolution); only the canvas size and the interpolation differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from booth.effects import contact_shadow, light_wrap
from booth.matting import clean_edge_colours, fade_edges
from booth.placement import People, Transform

# Model confidence mapped to alpha: below LO is room, above HI is person. Centred above 0.5,
# the edge sits inside the soft rim where the room shows through; against the reference
# mattes in the test media this cut scored best (IoU 0.944, boundary error 0.110).
_ALPHA_LO, _ALPHA_HI = 0.4, 0.8
_OUTSIDE = -_ALPHA_LO / (_ALPHA_HI - _ALPHA_LO)  # stretch() of zero confidence
Box = tuple[int, int, int, int]
# Above this share of mixing pixels, blending the whole region is cheaper than gathering them
# (measured: the preview's edge is about 0.09 of its region, the refined photo's 0.16).
_GATHER_SHARE = 0.12


def stretch(mask: np.ndarray) -> np.ndarray:
    """Confidence to unclipped alpha. Affine, so it commutes with bilinear warping: done at
    the model's small size, and only the clip is left for the full-size region."""
    return (mask - _ALPHA_LO) * (1.0 / (_ALPHA_HI - _ALPHA_LO))


def alpha_from_confidence(mask: np.ndarray) -> np.ndarray:
    """A narrow, soft edge inside the model's soft rim, where the room shows through."""
    return np.clip(stretch(mask), 0.0, 1.0)


def _mask_to_frame(mask_shape: tuple[int, int], frame_w: int, frame_h: int) -> np.ndarray:
    """3x3 affine from mask pixel centres to frame pixel centres."""
    sx, sy = frame_w / mask_shape[1], frame_h / mask_shape[0]
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


def _intersect(a: Box, b: Box) -> Box | None:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


@dataclass(frozen=True)
class Matte:
    """An unclipped alpha over part of the frame: values, the 3x3 affine from its pixel
    centres to frame pixels, and its value beyond its edges."""

    values: np.ndarray
    to_frame: np.ndarray
    outside: float

    @classmethod
    def from_confidence(cls, mask: np.ndarray, frame_w: int, frame_h: int) -> Matte:
        """The model's small mask, stretched (the clip comes after warping)."""
        return cls(stretch(mask), _mask_to_frame(mask.shape, frame_w, frame_h), _OUTSIDE)

    @classmethod
    def from_alpha(cls, alpha: np.ndarray, box: Box) -> Matte:
        """A full-resolution alpha over box (frame pixels), e.g. the refined one."""
        return cls(alpha, np.array([[1, 0, box[0]], [0, 1, box[1]], [0, 0, 1]], np.float64), 0.0)

    def extent(self, frame_w: int, frame_h: int) -> tuple[float, float, float, float] | None:
        """Where a full-resolution matte holds any of the person, as fractions of the frame
        (the box the compositor must work on to draw all of it)."""
        ys, xs = np.nonzero(self.values > 0.02)
        if not len(ys):
            return None
        x0, y0 = self.to_frame[0, 2], self.to_frame[1, 2]
        return ((x0 + xs.min()) / frame_w, (y0 + ys.min()) / frame_h,
                (x0 + xs.max() + 1) / frame_w, (y0 + ys.max() + 1) / frame_h)


@dataclass(frozen=True)
class Look:
    """The effects for one render, in canvas pixels (see booth.effects)."""

    colour: np.ndarray | None = None  # lookup table for cv2.LUT (effects.colour_lut)
    light_wrap: float = 0.0
    light_wrap_px: int = 0
    glow: np.ndarray | None = None  # the plate at canvas size, blurred (effects.glow)
    shadow: float = 0.0
    shadow_px: int = 0
    edge_colours_px: int = 0  # blur-fusion radius for the visitor's edge colours; 0: as seen


def person_region(bbox: tuple[float, float, float, float], m: np.ndarray, frame_w: int,
                  frame_h: int, canvas_h: int, stage_px: Box) -> Box | None:
    """Canvas pixels that can hold a visitor: their box, a feather margin, inside the stage."""
    u0, v0, u1, v1 = bbox
    corners = np.array([[u0 * frame_w, v0 * frame_h, 1], [u1 * frame_w, v1 * frame_h, 1]]).T
    xs, ys = m @ corners
    pad = 0.03 * canvas_h
    box = (int(xs.min() - pad), int(ys.min() - pad),
           int(np.ceil(xs.max() + pad)), int(np.ceil(ys.max() + pad)))
    return _intersect(box, stage_px)


def _warp_matte(matte: Matte, to_region: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The matte's alpha over the region (to_region: 3x3 from matte to region pixels).

    Clipped after warping: the cut lands between matte pixels and the feather stays a few
    pixels wide however much the matte is enlarged. A matte much coarser than the region
    (the model's small mask in the preview) is warped at a fraction of the size and scaled
    up, which is the same bilinear surface at a fraction of the cost."""
    # Region pixels per matte pixel, halved: the small warp keeps two samples per matte pixel.
    # Not rounded down to a whole number: the preview's ratio is about 3.8 at any camera size,
    # and rounding it to 1 warped the whole region at full size, the dearest step of a frame.
    factor = min(4.0, abs(to_region[0, 0]) / 2)
    if factor < 1.5:
        alpha = cv2.warpAffine(matte.values, to_region[:2], size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=matte.outside)
    else:
        small = (math.ceil(size[0] / factor), math.ceil(size[1] / factor))
        fx, fy = size[0] / small[0], size[1] / small[1]
        # cv2.resize's pixel-centre convention, inverted: region -> small region.
        shrink = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5]])
        alpha = cv2.resize(
            cv2.warpAffine(matte.values, shrink @ to_region, small, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=matte.outside),
            size, interpolation=cv2.INTER_LINEAR)
    return np.clip(alpha, 0.0, 1.0, out=alpha)


def composite(canvas: np.ndarray, frame: np.ndarray, people: People, matte: Matte,
              transform: Transform, *, mirror: bool, stage_px: Box, keep_px: list[Box],
              look: Look = Look(), interpolation: int = cv2.INTER_LINEAR) -> np.ndarray | None:
    """Blend the people from `frame` into `canvas` (the plate area, BGR uint8) in place.

    Returns the alpha that was used over the person region (None if nobody was drawn).
    """
    if people.bbox is None:
        return None
    fh, fw = frame.shape[:2]
    whole = transform.pixel_matrix(fw, fh, canvas.shape[0], mirror)
    region = person_region(people.bbox, whole, fw, fh, canvas.shape[0], stage_px)
    if region is None:
        return None
    x0, y0, x1, y1 = region
    if look.shadow > 0 and people.feet_visible:
        u0, _, u1, v1 = people.bbox
        xs, ys = whole @ np.array([[u0 * fw, v1 * fh, 1], [u1 * fw, v1 * fh, 1]]).T
        contact_shadow(canvas, int(xs.min()), int(xs.max()), int(ys.max()), look.shadow_px,
                       look.shadow, stage_px)
    size = (x1 - x0, y1 - y0)
    m = transform.pixel_matrix(fw, fh, canvas.shape[0], mirror, dx=x0, dy=y0)
    fg = cv2.warpAffine(frame, m, size, flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    alpha = _warp_matte(matte, np.vstack([m, [0, 0, 1]]) @ matte.to_frame, size)
    for keep in keep_px:  # what must stay visible stays visible, whatever the smoothing does
        hit = _intersect(keep, region)
        if hit:
            alpha[hit[1] - y0:hit[3] - y0, hit[0] - x0:hit[2] - x0] = 0.0
    # Whatever the matte holds beyond the region fades out inside it: the region's edge never
    # shows as a line. The canvas's own edges stay hard (a visitor cut off by the bottom of
    # the camera frame is cut off by the bottom of the photo).
    ch, cw = canvas.shape[:2]
    fade_edges(alpha, max(2, round(0.01 * ch)), (x0 > 0, y0 > 0, x1 < cw, y1 < ch))
    if look.edge_colours_px:
        clean_edge_colours(fg, alpha, look.edge_colours_px)
    bg = canvas[y0:y1, x0:x1]
    if look.colour is not None:
        cv2.LUT(fg, look.colour, dst=fg)
    wrap = None if look.glow is None else light_wrap(alpha, look.light_wrap_px, look.light_wrap)
    blend(bg, fg, alpha, None if wrap is None else look.glow[y0:y1, x0:x1], wrap)
    return alpha


def blend(bg: np.ndarray, fg: np.ndarray, alpha: np.ndarray, glow: np.ndarray | None = None,
          wrap: np.ndarray | None = None) -> None:
    """bg = fg over bg by alpha, in place, fg first lit by `glow` by `wrap` (the light wrap;
    both None: none). Where alpha is 0 bg stays and where it is 1 (and no light wraps) fg is
    copied; in the live preview those are nearly all of a person's region, and computing
    only the few pixels that mix, gathered by index, costs half of blending the whole region
    twice. A wide soft edge (the photo's refined matte) is blended whole: gathering a large
    share of the pixels costs more than OpenCV's blends."""
    solid = alpha >= 1.0
    if wrap is not None:
        solid &= wrap <= 0.0
    mixed = np.flatnonzero((alpha > 0.0) & ~solid)
    if len(mixed) > _GATHER_SHARE * alpha.size:
        if wrap is not None:
            fg = cv2.blendLinear(glow, fg, wrap, 1.0 - wrap)
        bg[:] = cv2.blendLinear(fg, bg, alpha, 1.0 - alpha)
        return
    out = np.ascontiguousarray(bg)  # bg is a view into the canvas: work on a flat copy
    cv2.copyTo(fg, solid.view(np.uint8), out)
    if len(mixed):
        pixels = out.reshape(-1, 3)
        f = fg.reshape(-1, 3).take(mixed, axis=0).astype(np.float32)
        if wrap is not None:
            lit = np.ascontiguousarray(glow).reshape(-1, 3).take(mixed, axis=0)
            f += wrap.reshape(-1).take(mixed)[:, None] * (lit - f)
        b = pixels.take(mixed, axis=0).astype(np.float32)
        b += alpha.reshape(-1).take(mixed)[:, None] * (f - b)
        pixels[mixed] = np.rint(b, out=b).astype(np.uint8)
    bg[:] = out
