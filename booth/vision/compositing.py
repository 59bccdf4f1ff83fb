"""Put the people into the plate: warp only the region around them and blend with a soft alpha.

Both paths of booth.vision.pipeline draw with composite(): the live preview (a small plate,
every frame, with the frame placed ahead on a second thread, see place_ahead) and the saved
photo (the plate at full resolution, bicubic, with the refined matte); only the canvas size,
the interpolation, the matte and the help differ. A `Finish` holds the effects of one
composite in canvas pixels; a `PixelBox` is a box of canvas pixels (x0, y0, x1, y1).
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from dataclasses import dataclass

import cv2
import numpy as np

from booth.vision.effects import contact_shadow, light_reach, recolour, wrap_amount
from booth.vision.matting import clean_edge_colours, fade_edges, put_pixels
from booth.vision.placement import People, Transform

# Model confidence mapped to alpha: below LO is room, above HI is person. Centred above 0.5,
# the edge sits inside the soft rim where the room shows through; against the reference
# mattes in the test media this cut scored best (IoU 0.944, boundary error 0.110).
_ALPHA_LO, _ALPHA_HI = 0.4, 0.8
_OUTSIDE = -_ALPHA_LO / (_ALPHA_HI - _ALPHA_LO)  # stretch() of zero confidence
PixelBox = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1 and y1 excluded
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


def _intersect(a: PixelBox, b: PixelBox) -> PixelBox | None:
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
    def from_alpha(cls, alpha: np.ndarray, box: PixelBox) -> Matte:
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
class Finish:
    """The effects of one composite, in canvas pixels (see booth.vision.effects)."""

    colour: np.ndarray | None = None  # lookup table for cv2.LUT (effects.colour_lut)
    light_wrap: float = 0.0
    light_wrap_px: int = 0
    glow: np.ndarray | None = None  # the plate at canvas size, blurred (effects.glow)
    shadow: float = 0.0
    shadow_px: int = 0
    edge_colours_px: int = 0  # blur-fusion radius for the visitor's edge colours; 0: as seen


@dataclass(frozen=True)
class Drawn:
    """What composite() drew: the alpha it used over the people's region, that region, and
    the box of the canvas it changed (the region and the contact shadow), canvas pixels."""

    alpha: np.ndarray
    region: PixelBox
    box: PixelBox


def _union(a: PixelBox, b: PixelBox | None) -> PixelBox:
    return a if b is None else (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]),
                                max(a[3], b[3]))


def person_region(bbox: tuple[float, float, float, float], m: np.ndarray, frame_w: int,
                  frame_h: int, canvas_h: int, stage_px: PixelBox) -> PixelBox | None:
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
    # np.clip's result, by two of OpenCV's thresholds at a quarter of its cost.
    cv2.threshold(alpha, 1.0, 1.0, cv2.THRESH_TRUNC, dst=alpha)
    return cv2.threshold(alpha, 0.0, 0.0, cv2.THRESH_TOZERO, dst=alpha)[1]


def _place_frame(frame: np.ndarray, m: np.ndarray, size: tuple[int, int], interpolation: int,
                 colour: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The camera frame under the placement `m` (2x3: uniform scale, maybe mirrored, and a
    shift) over a region of `size`, colour-shifted by the lookup table `colour` (None: as
    seen), with the 2x3 actually used: the shift is rounded to whole region pixels. Then
    the scaling is a plain resize of the frame's crop by the exact scale and the mirror a
    flip, three times cheaper than a general warp of the same pixels; half a pixel of
    placement is nothing the eye sees (the matte is warped with the same 2x3, so the
    cut-out stays on the person). The colour transfer comes before the edge colours'
    estimate (a per-channel shift commutes with it), so it can be done ahead of time. Each
    pass over the region costs: the crop is resized alone, and the lookup, the flip and
    the border each make the region's picture or work in place, never copying it again."""
    w, h = size
    fh, fw = frame.shape[:2]
    s, mirrored = m[1, 1], m[0, 0] < 0
    # Camera pixels the region needs (with room for the interpolation's kernel).
    us = sorted(((0 - m[0, 2]) / m[0, 0], (w - 1 - m[0, 2]) / m[0, 0]))
    vs = ((0 - m[1, 2]) / s, (h - 1 - m[1, 2]) / s)
    u0, u1 = max(0, math.floor(us[0]) - 2), min(fw, math.ceil(us[1]) + 3)
    v0, v1 = max(0, math.floor(vs[0]) - 2), min(fh, math.ceil(vs[1]) + 3)
    if u1 - u0 < 2 or v1 - v0 < 2:  # the frame is nowhere near the region
        return _warped(frame, m, size, interpolation, colour)
    # cv2.resize by an exact factor: its pixel i shows camera u0 + (i + 0.5) / s - 0.5.
    scaled = cv2.resize(frame[v0:v1, u0:u1], None, fx=s, fy=s, interpolation=interpolation)
    sh, sw = scaled.shape[:2]
    # Region pixel x of scaled pixel i: i + ox, or after the flip (sw - 1 - i) + ox.
    ox = m[0, 2] - s * (u0 - 0.5) - sw + 0.5 if mirrored else m[0, 2] + s * (u0 - 0.5) + 0.5
    oy = m[1, 2] + s * (v0 - 0.5) + 0.5
    ix, iy = round(ox), round(oy)
    used = m.copy()
    used[0, 2] += ix - ox
    used[1, 2] += iy - oy
    # Into the region: what the crop does not cover repeats its edge, as a warp's border did.
    left, top = ix, iy
    right, bottom = w - (ix + sw), h - (iy + sh)
    c0, c1 = max(0, -left), sw - max(0, -right)  # the columns kept, counted after the flip
    if mirrored:
        c0, c1 = sw - c1, sw - c0
    part = scaled[max(0, -top):sh - max(0, -bottom), c0:c1]
    if part.shape[0] != h - max(0, top) - max(0, bottom) or (
            part.shape[1] != w - max(0, left) - max(0, right)):  # nowhere near the region
        return _warped(frame, m, size, interpolation, colour)
    # part is a view into scaled: the lookup, else the flip, else the border or a copy makes
    # the region's own picture, and the flip after a lookup is done in place.
    if colour is not None:
        part = recolour(part, colour)
    if mirrored:
        part = cv2.flip(part, 1, dst=part if colour is not None else None)
    border = (max(0, top), max(0, bottom), max(0, left), max(0, right))
    if any(border):
        return cv2.copyMakeBorder(part, *border, cv2.BORDER_REPLICATE), used
    return (part if colour is not None or mirrored else part.copy()), used


def _warped(frame: np.ndarray, m: np.ndarray, size: tuple[int, int], interpolation: int,
            colour: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    fg = cv2.warpAffine(frame, m, size, flags=interpolation, borderMode=cv2.BORDER_REPLICATE)
    return (fg if colour is None else recolour(fg, colour)), m


@dataclass(frozen=True)
class Placed:
    """The camera frame placed over a box of a canvas ahead of time (place_ahead), with the
    colour transfer done: composite() cuts its region out of it when it lies inside."""

    fg: np.ndarray
    m: np.ndarray  # 2x3 from camera pixels to the box's pixels, as used
    box: PixelBox  # canvas pixels
    canvas: tuple[int, int]  # the canvas's width and height
    transform: Transform
    colour: np.ndarray | None


def place_ahead(frame: np.ndarray, bbox: tuple[float, float, float, float],
                transform: Transform, *, mirror: bool, canvas: tuple[int, int],
                stage_px: PixelBox, colour: np.ndarray | None,
                margin: float = 0.02) -> Placed | None:
    """The camera frame placed and colour-shifted over the region the people had in the frame
    before (`bbox`), grown by `margin` of the canvas height, for a composite() of this frame
    with the same transform and colours: done while the model looks at the frame."""
    fh, fw = frame.shape[:2]
    cw, ch = canvas
    box = person_region(bbox, transform.pixel_matrix(fw, fh, ch, mirror), fw, fh, ch, stage_px)
    if box is None:
        return None
    grow = round(margin * ch)
    box = _intersect((box[0] - grow, box[1] - grow, box[2] + grow, box[3] + grow), stage_px)
    m = transform.pixel_matrix(fw, fh, ch, mirror, dx=box[0], dy=box[1])
    fg, m = _place_frame(frame, m, (box[2] - box[0], box[3] - box[1]), cv2.INTER_LINEAR,
                          colour)
    return Placed(fg, m, box, canvas, transform, colour)


def _ahead(placed: Placed | None, canvas: np.ndarray, region: PixelBox,
           transform: Transform, colour: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The region cut out of what was placed ahead of time, if it was placed for this
    canvas, transform and colours and the region lies inside it."""
    if (placed is None or placed.transform is not transform or placed.colour is not colour
            or placed.canvas != canvas.shape[1::-1] or _intersect(placed.box, region) != region):
        return None
    dx, dy = region[0] - placed.box[0], region[1] - placed.box[1]
    fg = placed.fg[dy:dy + region[3] - region[1], dx:dx + region[2] - region[0]].copy()
    m = placed.m.copy()
    m[0, 2] -= dx
    m[1, 2] -= dy
    return fg, m


def composite(canvas: np.ndarray, frame: np.ndarray, people: People, matte: Matte,
              transform: Transform, *, mirror: bool, stage_px: PixelBox,
              keep_px: list[PixelBox], finish: Finish = Finish(),
              interpolation: int = cv2.INTER_LINEAR,
              placed: Placed | None = None, helper: Executor | None = None) -> Drawn | None:
    """Blend the people from `frame` into `canvas` (the plate area, BGR uint8) in place
    (`placed`: the frame placed ahead of time, used if it fits, see place_ahead; `helper`:
    a thread on which the light's reach is worked out while this one cleans the edge's
    colours, for a frame that is ready sooner).

    Returns what was drawn (None if nobody was)."""
    if people.bbox is None:
        return None
    fh, fw = frame.shape[:2]
    whole = transform.pixel_matrix(fw, fh, canvas.shape[0], mirror)
    region = person_region(people.bbox, whole, fw, fh, canvas.shape[0], stage_px)
    if region is None:
        return None
    x0, y0, x1, y1 = region
    shadow = None
    if finish.shadow > 0 and people.feet_visible:
        u0, _, u1, v1 = people.bbox
        xs, ys = whole @ np.array([[u0 * fw, v1 * fh, 1], [u1 * fw, v1 * fh, 1]]).T
        shadow = contact_shadow(canvas, int(xs.min()), int(xs.max()), int(ys.max()),
                                finish.shadow_px, finish.shadow, stage_px)
    size = (x1 - x0, y1 - y0)
    m = transform.pixel_matrix(fw, fh, canvas.shape[0], mirror, dx=x0, dy=y0)
    fg, m = _ahead(placed, canvas, region, transform, finish.colour) or _place_frame(
        frame, m, size, interpolation, finish.colour)
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
    lit = finish.glow is not None and finish.light_wrap > 0 and finish.light_wrap_px >= 1
    pending = (helper.submit(light_reach, alpha, finish.light_wrap_px)
               if lit and helper is not None else None)
    if finish.edge_colours_px:
        clean_edge_colours(fg, alpha, finish.edge_colours_px)
    reach = None
    if lit:
        reach = (pending.result() if pending is not None
                 else light_reach(alpha, finish.light_wrap_px))
    solid, mixed = split(alpha, reach)
    blend(canvas[y0:y1, x0:x1], fg, alpha, solid, mixed,
          None if reach is None else (finish.glow[y0:y1, x0:x1], reach, finish.light_wrap))
    return Drawn(alpha, region, _union(region, shadow))


def split(alpha: np.ndarray, reach: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Where fg covers bg whole (a uint8 0/1 mask, for cv2.copyTo) and the flat indices of
    the pixels where they mix: a soft alpha, or (with the light wrap's `reach`, see
    booth.vision.effects.light_reach) light from the plate wrapping over the edge. Worked out once
    per frame: the edge colours and the blend share them."""
    solid = alpha >= 1.0
    if reach is not None:
        solid &= reach >= 1.0
    drawn = alpha > 0.0
    drawn ^= solid  # solid pixels are drawn ones: what is left mixes
    return solid.view(np.uint8), np.flatnonzero(drawn)


def _pixels(image: np.ndarray) -> tuple[np.ndarray, int]:
    """The pixels of a BGR image that may be a view into a larger one (the canvas's region)
    as rows of 3, without copying: (that N x 3 array, its pixels per image row). The pixel
    at flat index i of the image (i = y * width + x) is at _at(i, width, that)."""
    step, pixel, channel = image.strides
    if channel != 1 or pixel != 3 or step % 3:
        raise ValueError("expected rows of packed 8-bit BGR pixels")
    h, w = image.shape[:2]
    return np.lib.stride_tricks.as_strided(image, ((h - 1) * (step // 3) + w, 3), (3, 1)), \
        step // 3


def _at(flat: np.ndarray, width: int, row: int) -> np.ndarray:
    return flat if row == width else flat + (flat // width) * (row - width)


def blend(bg: np.ndarray, fg: np.ndarray, alpha: np.ndarray, solid: np.ndarray,
          mixed: np.ndarray, light: tuple[np.ndarray, np.ndarray, float] | None = None) -> None:
    """bg = fg over bg by alpha, in place (bg may be a view into the canvas), fg first lit
    by the plate's light where it wraps over the edge (`light`: the glow over bg's pixels,
    the light's reach and the light wrap's strength, see booth.vision.effects.wrap_amount).
    `solid` and `mixed` are split(alpha, reach). Where alpha is 0 bg stays and where fg is
    solid it is copied; in the live preview those are nearly all of a person's region, and
    computing only the few pixels that mix, gathered by index, costs half of blending the whole
    region twice. A wide soft edge (the photo's refined matte) is blended whole: gathering a large
    share of the pixels costs more than OpenCV's blends."""
    if len(mixed) > _GATHER_SHARE * alpha.size:
        bg[:] = _lit_over(fg, bg, alpha, light)
        return
    cv2.copyTo(fg, solid, bg)
    if not len(mixed):
        return
    # The mixing pixels gathered into 1 x N pictures, blended as the whole region would be.
    w = bg.shape[1]
    pixels, row = _pixels(bg)
    at = _at(mixed, w, row)
    if light is not None:
        glow, reach, strength = light
        lit, glow_row = _pixels(glow)
        light = (lit.take(_at(mixed, w, glow_row), axis=0)[None],
                 reach.reshape(-1).take(mixed)[None], strength)
    mixed_fg = fg.reshape(-1, 3).take(mixed, axis=0)[None]
    put_pixels(pixels, at, _lit_over(mixed_fg, pixels.take(at, axis=0)[None],
                                     alpha.reshape(-1).take(mixed)[None], light)[0])


def _lit_over(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray,
              light: tuple[np.ndarray, np.ndarray, float] | None) -> np.ndarray:
    """fg, lit by the glow where the light wraps (see blend), over bg by alpha: two of
    OpenCV's blends (rounded to bytes in between, a level at most), for a whole region or
    for pixels gathered into 1 x N pictures."""
    if light is not None:
        glow, reach, strength = light
        wrap = wrap_amount(alpha, reach, strength)
        fg = cv2.blendLinear(glow, fg, wrap, 1.0 - wrap)
    return cv2.blendLinear(fg, bg, alpha, 1.0 - alpha)
