"""The visitor's own colours where the cut-out is soft.

At an edge pixel with alpha between 0 and 1 the camera saw part visitor, part room. Blending
that pixel into Mars as it is carries the room in with it: a pale rim on a bright wall. The
blur-fusion estimator (Forte and Pitie, "Approximate Fast Foreground Colour Estimation",
ICIP 2021) recovers the visitor's share from two box-blur passes: the local mean colour of the
visitor and of the room, then the pixel's own colour with the room's share taken out.

Box blurs of a large radius are smooth, so the wide pass runs on a picture shrunk by the
radius and is scaled back up: the same surface at a fraction of the cost.

The live preview's composite cleans the edge colours of the region it draws
(clean_edge_colours; so does the photo's without a refined matte); the saved photo estimates
them beforehand over its refined matte (estimate_foreground, also in Pipeline.cutout).
"""

from __future__ import annotations

import cv2
import numpy as np

_EPS = 1e-4
_SOFT = (0.01, 0.99)  # alpha of the soft edge, whose colours are estimated


def _means(fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray, radius: int,
           interpolation: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Local mean colour of fg under alpha and of bg under 1 - alpha (box of the given
    radius), computed on pictures shrunk by a third of the radius (a large box blur is a
    low-pass filter anyway): (fg mean, bg mean, shrink), both at the shrunk size."""
    h, w = alpha.shape
    shrink = max(1, radius // 3)
    if shrink > 1:
        size = (max(1, w // shrink), max(1, h // shrink))
        fg, alpha = (cv2.resize(fg, size, interpolation=interpolation),
                     cv2.resize(alpha, size, interpolation=interpolation))
        if bg is not None:
            bg = cv2.resize(bg, size, interpolation=interpolation)
        radius = max(1, radius // shrink)
    k = (2 * radius + 1, 2 * radius + 1)
    fg = fg.astype(np.float32)
    share = cv2.blur(alpha, k)  # the visitor's share of each box
    sum_fg = cv2.blur(fg * alpha[:, :, None], k)
    if bg is None:  # the room is the rest of the picture: a box blur is linear
        sum_bg = cv2.blur(fg, k) - sum_fg
    else:
        sum_bg = cv2.blur(bg.astype(np.float32) * (1.0 - alpha)[:, :, None], k)
    mean_fg = sum_fg / (share[:, :, None] + _EPS)
    mean_bg = sum_bg / ((1.0 - share)[:, :, None] + _EPS)
    return mean_fg, mean_bg, shrink


def _edge_pass(image: np.ndarray, fg: np.ndarray, bg: np.ndarray | None, alpha: np.ndarray,
               edge: np.ndarray, radius: int, interpolation: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """One blur-fusion pass at the edge pixels only (flat indices `edge`; bg None: the
    image itself): (the visitor's colour there, the room's mean colour there), float32 Nx3.
    The means stay small and are sampled: they are smooth."""
    w = alpha.shape[1]
    mean_fg, mean_bg, shrink = _means(fg, bg, alpha, radius, interpolation)
    sh, sw = mean_fg.shape[:2]
    small = np.minimum(edge // w // shrink, sh - 1) * sw + np.minimum(edge % w // shrink, sw - 1)
    f = mean_fg.reshape(-1, 3).take(small, axis=0)
    b = mean_bg.reshape(-1, 3).take(small, axis=0)
    a = alpha.reshape(-1).take(edge)[:, None]
    # F = F' + a (I - a F' - (1 - a) B') = F' + a (I - B' - a (F' - B')): the pixel's colour,
    # the room's share removed (worked in place, in float from the start: fewer passes).
    colour = image.reshape(-1, 3).take(edge, axis=0).astype(np.float32)
    colour -= b
    colour -= a * (f - b)
    colour *= a
    colour += f
    return np.clip(colour, 0.0, 255.0, out=colour), b


def put_pixels(rows: np.ndarray, at: np.ndarray, values: np.ndarray) -> None:
    """rows[at] = values for N x 3 uint8 pixel rows (values rounded and cut to uint8 as an
    assignment would): numpy writes 3-byte items scattered by index twice as fast as rows of
    three bytes, which matters at a frame's thousands of edge pixels."""
    if values.dtype != np.uint8:
        values = values.astype(np.uint8)
    pixel = np.dtype((np.void, 3))
    rows.view(pixel)[:, 0][at] = np.ascontiguousarray(values).view(pixel)[:, 0]


def _edge(alpha: np.ndarray) -> np.ndarray:
    """Flat indices of the soft edge, where alpha is strictly between 0 and 1: where it is
    1 the pixel is the visitor's already, where it is 0 it is not drawn."""
    return np.flatnonzero((alpha > _SOFT[0]) & (alpha < _SOFT[1]))


def estimate_foreground(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The visitor's colour (uint8 BGR, same size) at the soft edge of `image` (uint8 BGR)
    under `alpha` (float32 0..1); elsewhere the image as it is. A wide pass, then a narrow
    one starting from it (Forte and Pitie's two passes)."""
    side = min(alpha.shape)
    wide, narrow = max(4, round(side * 0.06)), max(2, round(side * 0.01))
    out = image.copy()
    edge = _edge(alpha)
    if not len(edge):
        return out
    colour, room = _edge_pass(image, image, None, alpha, edge, wide, cv2.INTER_AREA)
    pixels, rooms = out.reshape(-1, 3), image.copy()
    pixels[edge] = colour + 0.5  # the first estimate, and the room's mean behind it,
    rooms.reshape(-1, 3)[edge] = room + 0.5  # seed the narrow pass
    colour, _ = _edge_pass(image, out, rooms, alpha, edge, narrow, cv2.INTER_AREA)
    pixels[edge] = colour + 0.5
    return out


def clean_edge_colours(fg: np.ndarray, alpha: np.ndarray, radius: int) -> None:
    """The live preview's cheaper form, in place on fg (uint8 BGR): the wide pass alone.
    Linear shrinking is several times cheaper than area averaging here, and the box blur
    that follows smooths what it skips."""
    edge = _edge(alpha)
    if len(edge):
        colour, _ = _edge_pass(fg, fg, None, alpha, edge, radius, cv2.INTER_LINEAR)
        put_pixels(fg.reshape(-1, 3), edge, np.add(colour, 0.5, out=colour))


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
