"""What makes a cut-out look like it stands in the scene: steady edges, the scene's colour,
its light spilling over the edges, and a shadow on the ground. Pure functions on arrays.

The mask's smoothing over time (smooth_mask, motion) is the live preview's alone; the colour
transfer, the light wrap and the contact shadow are in both the preview and the saved photo
(booth.vision.compositing.Finish carries them into one composite).
"""

from __future__ import annotations

import cv2
import numpy as np


def smooth_mask(previous: np.ndarray | None, current: np.ndarray, motion: np.ndarray | None,
                weight: float) -> np.ndarray:
    """Temporal smoothing that does not trail: where the picture changed (motion near 1) the
    new mask wins at once; where it is still, the previous one steadies the edge."""
    if previous is None or motion is None or weight <= 0 or previous.shape != current.shape:
        return current
    keep = weight * (1.0 - motion)
    return current + keep * (previous - current)


def motion(previous_small: np.ndarray | None, current_small: np.ndarray) -> np.ndarray | None:
    """0..1 per pixel: how much the (small, grey) frame changed since the last one."""
    if previous_small is None or previous_small.shape != current_small.shape:
        return None
    # A moving edge counts for its neighbourhood: the difference's 5x5 mean, in float
    # straight from the bytes (one pass), cut at 24 levels and scaled in place.
    diff = cv2.boxFilter(cv2.absdiff(previous_small, current_small), cv2.CV_32F, (5, 5))
    cv2.threshold(diff, 24.0, 24.0, cv2.THRESH_TRUNC, dst=diff)
    diff *= 1.0 / 24.0
    return diff


def colour_stats(image: np.ndarray, mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per BGR channel, optionally where mask > 0.5."""
    binary = None if mask is None else (mask > 0.5).astype(np.uint8)
    if binary is not None and not binary.any():
        return np.full(3, 128.0), np.full(3, 50.0)
    mean, std = cv2.meanStdDev(image, mask=binary)
    return mean.ravel(), std.ravel() + 1e-3


def colour_lut(person: tuple[np.ndarray, np.ndarray], scene: tuple[np.ndarray, np.ndarray],
               strength: float) -> np.ndarray | None:
    """A lookup table (256x1x3, for cv2.LUT) moving the person's colour statistics part of
    the way to the scene's (Reinhard-style, per channel). The contrast change is kept mild
    and most of the person's own brightness is kept (the plate is darker than a lit
    visitor), so skin stays skin, only lit by another sky."""
    if strength <= 0:
        return None
    (pm, ps), (sm, ss) = person, scene
    gain = np.clip(ss / ps, 0.75, 1.25) ** strength
    shift = sm - pm
    target = pm + strength * (shift - 0.5 * shift.mean())
    levels = np.arange(256, dtype=np.float32)[:, None]
    lut = (levels - pm) * gain + target
    return np.clip(lut + 0.5, 0, 255).astype(np.uint8).reshape(256, 1, 3)


def recolour(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """cv2.LUT(image, lut) for a BGR image (it may be a view) and a colour_lut() table, into
    a new array: the same values at about half the cost, since OpenCV looks a three-channel
    table up a byte at a time but a one-channel one faster, plane by plane."""
    planes = cv2.split(image)
    for channel, plane in enumerate(planes):
        cv2.LUT(plane, np.ascontiguousarray(lut[:, 0, channel]), dst=plane)
    return cv2.merge(planes)


def glow(plate: np.ndarray, width: int) -> np.ndarray:
    """The plate blurred by the light wrap's width: the light that wraps round a figure."""
    return cv2.blur(plate, (2 * width + 1, 2 * width + 1))


def light_reach(alpha: np.ndarray, width: int) -> np.ndarray:
    """How far in the plate's light reaches over a figure's edge: the alpha blurred by the
    light wrap's width (below 1 within that width of the edge)."""
    k = 2 * width + 1
    return cv2.blur(alpha, (k, k))


def wrap_amount(alpha: np.ndarray, reach: np.ndarray, strength: float) -> np.ndarray:
    """How much of the plate's light (its glow) each pixel of the person takes, as real
    light wraps round a figure: near the edge, where the light's reach drops, up to
    `strength`; nothing deep inside or outside. Elementwise: the preview works it out only
    at the few pixels where it mixes; the mix itself is done in the one blend that puts the
    person into the plate (compositing.blend)."""
    amount = 1.0 - reach
    amount *= alpha
    amount *= 2.0 * strength
    return np.minimum(amount, strength, out=amount)


def contact_shadow(canvas: np.ndarray, x0: int, x1: int, ground_y: int, height: int,
                   darkness: float, clip: tuple[int, int, int, int]
                   ) -> tuple[int, int, int, int] | None:
    """A soft dark ellipse on the ground under visible feet, drawn into canvas in place,
    never outside `clip` (the stage); returns the box it darkened (None: none). Separable
    (flat-topped across the feet, Gaussian in depth), so it costs two short vectors and one
    multiply."""
    if darkness <= 0 or height < 1 or x1 <= x0:
        return None
    cx, half_w = (x0 + x1) / 2, max(2.0, (x1 - x0) * 0.6)
    bx0, by0 = max(clip[0], int(cx - 1.6 * half_w)), max(clip[1], ground_y - 2 * height)
    bx1, by1 = min(clip[2], int(cx + 1.6 * half_w)), min(clip[3], ground_y + 2 * height)
    if bx1 <= bx0 or by1 <= by0:
        return None
    xs = (np.arange(bx0, bx1, dtype=np.float32) - cx) / half_w
    ys = (np.arange(by0, by1, dtype=np.float32) - ground_y) / (0.5 * height)
    across = np.exp(-(xs * xs) ** 2)  # flat under the feet, fading beyond them
    depth = np.exp(-0.5 * ys * ys)
    keep = 1.0 - darkness * np.outer(depth, across)
    region = canvas[by0:by1, bx0:bx1]
    region[:] = (region * keep[:, :, None]).astype(np.uint8)
    return bx0, by0, bx1, by1
