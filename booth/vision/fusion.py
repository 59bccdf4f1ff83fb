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
# Forced opaque: the body eroded by this share of their height. 0.02 left soft alpha inside
# bodies (DAVIS tuning part: 66 of 82 pictures with some soft inside, 0.01: 58; the
# boundary error fell from 0.164 to 0.163).
CORE = 0.01
# Gaps in MediaPipe's person narrower than twice this share of the height, where its alpha
# is under ROOM, keep its alpha (DAVIS tuning part: IoU 0.7876 -> 0.7880, boundary 0.1629 ->
# 0.1624; 0.10 did no better).
GAP = 0.06
ROOM = 0.05


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
    # MODNet missed the person MediaPipe found: trust MediaPipe alone (made solid too).
    if ((modnet > 0.5) & person).sum() < COVER * person.sum():
        return solid_body(booth.astype(np.float32), person, height)
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
    # A gap in MediaPipe's person that it is sure is the room (between an arm and the
    # body) stays the room: MODNet fills such gaps with the wall (the hoodie video).
    gap = _gaps(person, GAP * height) & (booth < ROOM)
    alpha[gap] = booth[gap]
    return solid_body(alpha, person, height)


def _gaps(person: np.ndarray, radius: float) -> np.ndarray:
    """Where a closing of `person` by a disk of `radius` fills in, worked at a quarter of
    the size (a closing that wide costs hundreds of ms at full size)."""
    h, w = person.shape
    small = cv2.resize(person.astype(np.uint8), (max(1, w // 4), max(1, h // 4)),
                       interpolation=cv2.INTER_AREA)
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, _disk(radius / 4),
                              borderType=cv2.BORDER_REPLICATE) - small
    return (cv2.resize(closed, (w, h), interpolation=cv2.INTER_NEAREST) > 0) & ~person


def solid_body(alpha: np.ndarray, person: np.ndarray, height: int) -> np.ndarray:
    """`alpha` (in place) opaque inside the body: soft alpha belongs at the edge and in hair
    only. The body is MediaPipe's person and where the alpha is over 0.5; what lies deeper
    than CORE of the person's height inside it is forced to 1."""
    core = _disk(CORE * height)
    body = (alpha > 0.5).astype(np.uint8) | person.astype(np.uint8)
    inner = cv2.erode(body, core) > 0
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
