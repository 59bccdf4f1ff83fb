"""The saved photo's cut-out fused from two models (issue 20): MediaPipe's refined alpha
decides who is in the photo and where, MODNet's portrait matte decides the edges and hair,
and the body is forced opaque. Tuned on the DAVIS tuning part only (devtools.quality)."""

from __future__ import annotations

import cv2
import numpy as np

from booth.vision.compositing import Matte

COVER = 0.5  # MODNet must cover this share of MediaPipe's person, or the booth's alpha stays
GROW = 0.04  # the region MODNet may draw in: the person grown by this share of their height
SHARE = 0.2  # a MODNet piece is kept when this share of it lies on MediaPipe's person
CORE = 0.02  # forced opaque: the person eroded by this share of their height


def _disk(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def fused_alpha(booth: np.ndarray, modnet: np.ndarray) -> np.ndarray:
    """The fused alpha (float32 HxW 0..1) from the booth's alpha and MODNet's, both at the
    frame's size."""
    person = booth > 0.5
    rows = np.nonzero(person.any(axis=1))[0]
    if rows.size == 0:
        return np.zeros_like(modnet)
    height = rows[-1] - rows[0] + 1
    # MODNet missed the person MediaPipe found: trust MediaPipe alone.
    if ((modnet > 0.5) & person).sum() < COVER * person.sum():
        return booth.astype(np.float32)
    # Who: MODNet's pieces mostly on MediaPipe's person (a bystander MODNet alone would keep
    # is dropped); where: those pieces and the person, grown for MODNet's soft edge and hair.
    solid = (modnet > 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    over = np.bincount(labels[person], minlength=n) / np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    keep = over >= SHARE
    keep[0] = False
    region = cv2.dilate(keep[labels].astype(np.uint8) | person.astype(np.uint8),
                        _disk(GROW * height)) > 0
    alpha = np.where(region, modnet, 0).astype(np.float32)
    # Solid body: soft alpha belongs at the edge and in hair only.
    core = _disk(CORE * height)
    inner = cv2.erode(person.astype(np.uint8), core) > 0
    inner |= cv2.erode((alpha > 0.5).astype(np.uint8), core) > 0
    alpha[inner] = 1.0
    return alpha


def fused_matte(matte: Matte, modnet: np.ndarray, origin: tuple[int, int] = (0, 0)) -> Matte:
    """The refined full-resolution `matte` (Matte.from_alpha) fused with MODNet's alpha of a
    region of the frame holding the matte (its top-left corner at `origin`, frame pixels; by
    default the whole frame), cut to where the fused alpha holds anyone (unchanged when it
    holds nobody)."""
    h, w = modnet.shape
    ox, oy = origin
    booth = np.zeros((h, w), np.float32)
    x0, y0 = int(matte.to_frame[0, 2]) - ox, int(matte.to_frame[1, 2]) - oy
    mh, mw = matte.values.shape
    booth[y0:y0 + mh, x0:x0 + mw] = matte.values
    alpha = fused_alpha(booth, modnet)
    ys, xs = np.nonzero(alpha > 0)
    if not len(ys):
        return matte
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    return Matte.from_alpha(alpha[y0:y1, x0:x1], (x0 + ox, y0 + oy, x1 + ox, y1 + oy))
