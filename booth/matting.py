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


def _means(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, radius: int,
           interpolation: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Local mean colour of fg under alpha and of bg under 1 - alpha (box of the given
    radius), computed on pictures shrunk by a quarter of the radius (a large box blur is a
    low-pass filter anyway): (fg mean, bg mean, shrink), both at the shrunk size."""
    h, w = alpha.shape
    shrink = max(1, radius // 4)
    if shrink > 1:
        size = (max(1, w // shrink), max(1, h // shrink))
        fg, alpha = (cv2.resize(fg, size, interpolation=interpolation),
                     cv2.resize(alpha, size, interpolation=interpolation))
        bg = fg if bg is None else cv2.resize(bg, size, interpolation=interpolation)
        radius = max(1, radius // shrink)
    elif bg is None:
        bg = fg
    k = (2 * radius + 1, 2 * radius + 1)
    a = alpha[:, :, None]
    mean_fg = cv2.blur(fg * a, k) / (cv2.blur(alpha, k)[:, :, None] + _EPS)
    mean_bg = cv2.blur(bg * (1.0 - a), k) / (cv2.blur(1.0 - alpha, k)[:, :, None] + _EPS)
    return mean_fg, mean_bg, shrink


def _fuse(image: np.ndarray, fg: np.ndarray, bg: np.ndarray | None, alpha: np.ndarray,
          radius: int) -> tuple[np.ndarray, np.ndarray]:
    """One blur-fusion pass (bg None: the image itself): (foreground estimate, local
    background mean), at full size."""
    mean_fg, mean_bg, shrink = _means(fg, bg, alpha, radius, cv2.INTER_AREA)
    if shrink > 1:
        size = alpha.shape[::-1]
        mean_fg = cv2.resize(mean_fg, size, interpolation=cv2.INTER_LINEAR)
        mean_bg = cv2.resize(mean_bg, size, interpolation=cv2.INTER_LINEAR)
    a = alpha[:, :, None]
    # F = F' + a (I - a F' - (1 - a) B'): the pixel's colour, the room's share removed.
    residual = image - a * mean_fg - (1.0 - a) * mean_bg
    return np.clip(mean_fg + a * residual, 0.0, 255.0), mean_bg


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The visitor's colour (uint8 BGR, same size) for every pixel of `image` (uint8 BGR)
    under `alpha` (float32 0..1): a wide pass, then a narrow one starting from it. Where
    alpha is 0 it holds the nearby visitor's colour, so a cut-out resized or feathered
    later never pulls the room back in."""
    side = min(alpha.shape)
    wide, narrow = max(4, round(side * 0.06)), max(2, round(side * 0.01))
    image_f = image.astype(np.float32)
    fg, mean_bg = _fuse(image_f, image_f, None, alpha, wide)
    fg, _ = _fuse(image_f, fg, mean_bg, alpha, narrow)
    return (fg + 0.5).astype(np.uint8)


def clean_edge_colours(fg: np.ndarray, alpha: np.ndarray, radius: int) -> None:
    """The live preview's cheaper form, in place on fg (uint8 BGR): one blur-fusion pass,
    its means left small and sampled, applied only where alpha is strictly between 0 and 1
    (where it is 1 the pixel is the visitor's already; where it is 0 it is not drawn)."""
    h, w = alpha.shape
    edge = np.flatnonzero((alpha > 0.01) & (alpha < 0.99))  # flat indices: cheap to gather
    if not len(edge):
        return
    # Linear shrinking is several times cheaper than area averaging here, and the box blur
    # that follows smooths what it skips.
    mean_fg, mean_bg, shrink = _means(fg, None, alpha, radius, cv2.INTER_LINEAR)
    sh, sw = mean_fg.shape[:2]
    small = np.minimum(edge // w // shrink, sh - 1) * sw + np.minimum(edge % w // shrink, sw - 1)
    f = mean_fg.reshape(-1, 3).take(small, axis=0)
    b = mean_bg.reshape(-1, 3).take(small, axis=0)
    a = alpha.reshape(-1).take(edge)[:, None]
    pixels = fg.reshape(-1, 3)
    colour = f + a * (pixels.take(edge, axis=0) - a * f - (1.0 - a) * b)
    pixels[edge] = np.clip(colour + 0.5, 0, 255).astype(np.uint8)


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
