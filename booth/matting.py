"""The visitor's own colours where the cut-out is soft.

At an edge pixel with alpha between 0 and 1 the camera saw part visitor, part room. Blending
that pixel into Mars as it is carries the room in with it: a pale rim on a bright wall. The
blur-fusion estimator (Forte and Pitie, "Approximate Fast Foreground Colour Estimation",
ICIP 2021) recovers the visitor's share from two box-blur passes: the local mean colour of the
visitor and of the room, then the pixel's own colour with the room's share taken out.

Box blurs of a large radius are smooth, so the wide pass runs on a picture shrunk by the
radius and is scaled back up: the same surface at a fraction of the cost.
"""

from __future__ import annotations

import cv2
import numpy as np

_EPS = 1e-4


def _mean_inside(values: np.ndarray, weight: np.ndarray, radius: int,
                 full_size: bool = True) -> np.ndarray:
    """Weighted local mean of values (HxWx3) under weight (HxW), box of the given radius,
    computed small when the box is large (it is a low-pass filter anyway); scaled back up
    unless full_size is False (then every `max(1, radius // 4)`-th pixel of it)."""
    h, w = weight.shape
    shrink = max(1, radius // 4)
    if shrink > 1:
        size = (max(1, w // shrink), max(1, h // shrink))
        values = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
        weight = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
        radius = max(1, radius // shrink)
    k = (2 * radius + 1, 2 * radius + 1)
    total = cv2.blur(values * weight[:, :, None], k)
    total /= cv2.blur(weight, k)[:, :, None] + _EPS
    if shrink > 1 and full_size:
        total = cv2.resize(total, (w, h), interpolation=cv2.INTER_LINEAR)
    return total


def _fuse(image: np.ndarray, fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray,
          radius: int) -> tuple[np.ndarray, np.ndarray]:
    """One blur-fusion pass: (foreground estimate, local background mean)."""
    a = alpha[:, :, None]
    mean_fg = _mean_inside(fg, alpha, radius)
    mean_bg = _mean_inside(bg, 1.0 - alpha, radius)
    # F = F' + a (I - a F' - (1 - a) B'): the pixel's colour, the room's share removed.
    residual = image - a * mean_fg - (1.0 - a) * mean_bg
    return np.clip(mean_fg + a * residual, 0.0, 255.0), mean_bg


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The visitor's colour (uint8 BGR, same size) for every pixel of `image` (uint8 BGR)
    under `alpha` (float32 0..1). Where alpha is 0 it holds the nearby visitor's colour, so a
    cut-out resized or feathered later never pulls the room back in."""
    side = min(alpha.shape)
    wide, narrow = max(4, round(side * 0.06)), max(2, round(side * 0.01))
    image_f = image.astype(np.float32)
    fg, mean_bg = _fuse(image_f, image_f, image_f, alpha, wide)
    fg, _ = _fuse(image_f, fg, mean_bg, alpha, narrow)
    return (fg + 0.5).astype(np.uint8)


def clean_edge_colours(fg: np.ndarray, alpha: np.ndarray, radius: int) -> None:
    """The live preview's cheaper form, in place on fg (uint8 BGR): one blur-fusion pass,
    its means computed small, applied only where alpha is strictly between 0 and 1 (where it
    is 1 the pixel is the visitor's already; where it is 0 it is not drawn)."""
    ys, xs = np.nonzero((alpha > 0.01) & (alpha < 0.99))
    if not len(ys):
        return
    shrink = max(1, radius // 4)
    mean_fg = _mean_inside(fg, alpha, radius, full_size=False)
    mean_bg = _mean_inside(fg, 1.0 - alpha, radius, full_size=False)
    sy = np.minimum(ys // shrink, mean_fg.shape[0] - 1)
    sx = np.minimum(xs // shrink, mean_fg.shape[1] - 1)
    a = alpha[ys, xs][:, None]
    f, b = mean_fg[sy, sx], mean_bg[sy, sx]
    colour = f + a * (fg[ys, xs] - a * f - (1.0 - a) * b)
    fg[ys, xs] = np.clip(colour + 0.5, 0, 255).astype(np.uint8)


def fade_edges(alpha: np.ndarray, width: int,
               sides: tuple[bool, bool, bool, bool] = (True, True, True, True)) -> None:
    """Ramp alpha down to zero over `width` pixels at the chosen sides (left, top, right,
    bottom), in place: a cut-out that runs past the part of the picture worked on fades out
    instead of ending in a hard line."""
    h, w = alpha.shape
    width = min(width, h // 2, w // 2)
    if width < 1:
        return
    ramp = (np.arange(width, dtype=np.float32) + 0.5) / width
    left, top, right, bottom = sides
    if left:
        alpha[:, :width] *= ramp
    if right:
        alpha[:, w - width:] *= ramp[::-1]
    if top:
        alpha[:width] *= ramp[:, None]
    if bottom:
        alpha[h - width:] *= ramp[::-1, None]
