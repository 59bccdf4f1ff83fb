"""The saved photo's cut-out: a second, closer look at the people, then edge-aware refinement.

The live preview's mask comes from the whole frame squeezed into the model's 256x144 input,
so one mask pixel covers five or more camera pixels. For the photo, the region around the
people is segmented again on its own (the square model, letterboxed so nobody is stretched),
then a guided filter snaps the soft edge to the real edges of the full-resolution frame, and
a contrast stretch makes the edge narrow again. Measured on the test media against reference
mattes (scripts/mask_quality.py): mean IoU 0.940 -> 0.968, boundary error 0.17 -> 0.08.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from booth.segmentation import Segmenter


@dataclass(frozen=True)
class RefineSettings:
    margin: float = 0.2  # around the people's box, as a share of its size
    radius: float = 0.02  # guided filter radius, as a share of the frame's shorter side
    eps: float = 1e-3  # guided filter regularisation, for 0..1 intensities
    low: float = 0.3  # refined alpha below this is room...
    high: float = 0.7  # ...above this is person


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


def refined_alpha(frame: np.ndarray, bbox: tuple[float, float, float, float],
                  segmenter: Segmenter, settings: RefineSettings = RefineSettings()
                  ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Alpha (float32, 0..1) over the people's region of `frame`, and that region."""
    h, w = frame.shape[:2]
    box = crop_box(bbox, w, h, settings.margin)
    x0, y0, x1, y1 = box
    crop = frame[y0:y1, x0:x1]
    confidence = letterboxed(segmenter, crop)
    radius = max(2, round(min(h, w) * settings.radius))
    guided = cv2.ximgproc.guidedFilter(crop, confidence, radius, settings.eps * 255 * 255)
    alpha = (guided - settings.low) * (1.0 / (settings.high - settings.low))
    return np.clip(alpha, 0.0, 1.0, out=alpha), box
