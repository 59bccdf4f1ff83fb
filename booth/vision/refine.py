"""The saved photo's cut-out (Pipeline.photo_matte; the photo path only): a second, closer
look at the people, then edge-aware refinement.

The live preview's mask comes from the whole frame squeezed into the model's 256x144 input,
so one mask pixel covers five or more camera pixels. For the photo, the region around the
people is segmented again on its own (the square model, letterboxed so nobody is stretched,
and once more mirrored: the two looks disagree where the model guesses, and their mean is
steadier), then a guided filter snaps the soft edge to the real edges of the full-resolution
frame (twice: wide to find the edge, fine to lay it on the pixels). A dim crop is brightened
before the model sees it (the model loses people in the dark).
Measured by scripts/mask_quality.py; the figures are in the README.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from booth.vision.matting import fade_edges
from booth.vision.segmentation import Segmenter, exposed


@dataclass(frozen=True)
class RefineSettings:
    margin: float = 0.2  # around the people's box, as a share of its size
    radius: float = 0.02  # guided filter radius, as a share of the frame's shorter side
    eps: float = 1e-3  # guided filter regularisation, for 0..1 intensities
    # A second, fine guided filter over the stretched alpha lays its edge on the picture's
    # own edges pixel by pixel (rim delta E 4.38 -> 4.18 on the tuning part when chosen).
    fine_radius: float = 0.005
    fine_eps: float = 1e-4
    # The refined confidence is stretched from [low, high] to [0, 1]. A fairly soft edge
    # scored best on the evaluation set's tuning part: with the visitor's colours estimated
    # at the edge (booth.vision.matting), softness no longer carries the room in.
    low: float = 0.25
    high: float = 0.8


def letterboxed(segmenter: Segmenter, image: np.ndarray) -> np.ndarray:
    """Confidence at the image's size, from the model's input with the image fitted inside
    it unstretched (edges replicated into the spare space)."""
    width, height = segmenter.input_size
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    x0, y0 = (width - nw) // 2, (height - nh) // 2
    padded = cv2.copyMakeBorder(small, y0, height - nh - y0, x0, width - nw - x0,
                                cv2.BORDER_REPLICATE)
    mask = segmenter.segment(padded)[y0:y0 + nh, x0:x0 + nw]
    return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)


def crop_box(bbox: tuple[float, float, float, float], width: int, height: int,
             margin: float) -> tuple[int, int, int, int]:
    """The people's box (fractions of the frame) grown by a margin, in frame pixels."""
    u0, v0, u1, v1 = bbox
    mx, my = (u1 - u0) * margin * width + 8, (v1 - v0) * margin * height + 8
    return (max(0, int(u0 * width - mx)), max(0, int(v0 * height - my)),
            min(width, int(np.ceil(u1 * width + mx))), min(height, int(np.ceil(v1 * height + my))))


def _confidence(segmenter: Segmenter, crop: np.ndarray) -> np.ndarray:
    """The model's confidence over the crop, as it and its mirror image see it."""
    mirrored = letterboxed(segmenter, np.ascontiguousarray(crop[:, ::-1]))[:, ::-1]
    return 0.5 * (letterboxed(segmenter, crop) + mirrored)


def _wide_guided(crop: np.ndarray, confidence: np.ndarray, radius: int,
                 eps: float) -> np.ndarray:
    """The wide guided filter, run at half size: it only has to find the edge (the fine one
    lays it on the pixels), and at half size it costs a quarter (same scores)."""
    h, w = confidence.shape
    half = (max(1, w // 2), max(1, h // 2))
    guided = cv2.ximgproc.guidedFilter(cv2.resize(crop, half, interpolation=cv2.INTER_AREA),
                                       cv2.resize(confidence, half, interpolation=cv2.INTER_AREA),
                                       max(1, radius // 2), eps * 255 * 255)
    return cv2.resize(guided, (w, h), interpolation=cv2.INTER_LINEAR)


def _reaches_inner_edge(alpha: np.ndarray, box: tuple[int, int, int, int], width: int,
                        height: int) -> tuple[bool, bool, bool, bool]:
    """Which sides of the box cut through the person without being the frame's edge."""
    x0, y0, x1, y1 = box
    solid = 0.5
    return (x0 > 0 and alpha[:, 0].max() > solid, y0 > 0 and alpha[0].max() > solid,
            x1 < width and alpha[:, -1].max() > solid, y1 < height and alpha[-1].max() > solid)


def refined_alpha(frame: np.ndarray, bbox: tuple[float, float, float, float],
                  segmenter: Segmenter, settings: RefineSettings = RefineSettings()
                  ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Alpha (float32, 0..1) over the people's region of `frame`, and that region.

    The low-resolution box can miss thin parts (raised fingers): when the person still runs
    off a side of the crop, that side is pushed out once and the crop looked at again; what
    still runs off fades out."""
    h, w = frame.shape[:2]
    box = crop_box(bbox, w, h, settings.margin)
    for attempt in range(2):
        x0, y0, x1, y1 = box
        crop = frame[y0:y1, x0:x1]
        confidence = _confidence(segmenter, exposed(crop))
        radius = max(2, round(min(h, w) * settings.radius))
        guided = _wide_guided(crop, confidence, radius, settings.eps)
        alpha = np.clip((guided - settings.low) * (1.0 / (settings.high - settings.low)),
                        0.0, 1.0, out=guided)
        fine = max(1, round(min(h, w) * settings.fine_radius))
        alpha = cv2.ximgproc.guidedFilter(crop, alpha, fine, settings.fine_eps * 255 * 255)
        np.clip(alpha, 0.0, 1.0, out=alpha)
        sides = _reaches_inner_edge(alpha, box, w, h)
        if attempt or not any(sides):
            fade_edges(alpha, max(2, radius // 2), sides)  # still cut: fade, never a seam
            break
        grow_x, grow_y = (x1 - x0) // 4, (y1 - y0) // 4
        box = (max(0, x0 - grow_x * sides[0]), max(0, y0 - grow_y * sides[1]),
               min(w, x1 + grow_x * sides[2]), min(h, y1 + grow_y * sides[3]))
    return alpha, box
