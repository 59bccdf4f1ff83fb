"""The saved photo's cut-out fused from two models (issue 20): MediaPipe's refined alpha
decides who is in the photo and where, MODNet's portrait matte decides the edges and hair,
and the body is forced opaque. Tuned on the tuning parts only (DAVIS's and issue 8's tuning
people, devtools.quality)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from booth.vision.compositing import Matte
from booth.vision.presence import VISIBLE

# MODNet must cover this share of MediaPipe's person, or MediaPipe's alpha stands, with only
# what MODNet is sure of joined to that person added (_union). The tuning parts hold no such
# picture: the union is by design, and on DAVIS's held-out part (9 pictures) it raised IoU
# 0.7607 -> 0.7645 and lowered boundary error 0.1828 -> 0.1803 (a dancer's raised leg, a
# skirt, a kite board MediaPipe missed).
COVER = 0.5
GROW = 0.04  # the region MODNet may draw in: the person grown by this share of their height
SHARE = 0.2  # a MODNet piece is kept when this share of it lies on MediaPipe's person
# MODNet's pieces are taken where it is over PIECE, not 0.5: its soft parts joined to the body
# (a pram, swing chains, both in DAVIS's truth) stay with it instead of being cut as pieces of
# their own (DAVIS tuning part: IoU 0.8060 -> 0.8120, boundary 0.1486 -> 0.1461).
PIECE = 0.05
# A limb MODNet misses: a piece of MediaPipe's person, where it is at least SURE and MODNet
# under 0.5, wider than twice LIMB of the height and not mostly ringed by MODNet's body (a
# hole between arm and knees that MediaPipe fills is), takes MediaPipe's alpha (DAVIS tuning
# part: IoU 0.8121 -> 0.8132, boundary 0.1462 -> 0.1457, interior opacity 0.890 -> 0.896).
LIMB = 0.01
SURE = 0.99
RINGED = 0.5
# A hollow body: a ringed piece wider than twice HOLLOW of the height whose colour is nearer
# the body's than LIKE times the room's is the person MODNet missed inside (a white shirt),
# not the room between arm and body, and takes MediaPipe's alpha (DAVIS tuning part: IoU
# 0.8246 -> 0.8248, 36 pictures with some inside under 0.95 where 37 were; without the
# colour test issue 8's dim room lost the room between an arm and the body, IoU 0.985 ->
# 0.973 on p3m_p_a09f6d7a; 1.0 and 1.5 scored the same, 2.0 filled less).
HOLLOW = 0.03
LIKE = 1.5
# MediaPipe's person is forced opaque only where MODNet is over LOW: where MODNet is sure of
# the room lie MediaPipe's halo and the smooth blob it draws past the hair. Forcing the whole
# person lost to MODNet alone on issue 8's tuning people (IoU 0.9739 vs 0.9750, boundary
# 0.0681 vs 0.0653); forcing MODNet's body alone: 0.9749 / 0.0642 but interior opacity 0.9980
# (0.9993); with LOW: 0.9750 / 0.0647, 0.9991 (DAVIS tuning part: 0.896 -> 0.899).
LOW = 0.02
# Forced opaque: the body eroded by this share of their height. 0.02 left soft alpha inside
# bodies (DAVIS tuning part: 66 of 82 pictures with some soft inside, 0.01: 58; the
# boundary error fell from 0.164 to 0.163).
CORE = 0.01
# Gaps in MediaPipe's person narrower than twice this share of the height, where its alpha
# is under ROOM, keep its alpha (DAVIS tuning part: IoU 0.7876 -> 0.7880, boundary 0.1629 ->
# 0.1624; 0.10 did no better).
GAP = 0.06
ROOM = 0.05
# MODNet's soft edge reaches past the true edge (it is drawn at 384 px and scaled up): on
# issue 8's tuning people its alpha there was 0.06 too high on average in hair and 0.03 on
# the room beside the person. Its alpha is lowered so that EDGE and below read as the room
# (issue 8 tuning part: IoU 0.9750 -> 0.9769, boundary 0.0647 -> 0.0526, rim 3.73 -> 3.39;
# DAVIS tuning part: IoU 0.8243 -> 0.8246, boundary 0.1452 -> 0.1390; 0.1 and 0.25 did less;
# lowering MODNet's alpha before the rules below look at it: IoU 0.9767 and 0.8190).
EDGE = 0.2
# Limbs both models miss: along a limb of the pose (a segment between two landmarks it
# sees, presence.VISIBLE or more), within LIMB_RADIUS of the person's height of it, where the
# pose's own mask of the visitor is over POSE_SURE and both models and the fused alpha under 0.5,
# a piece crossing the segment's line takes the pose's mask, unless its colour is within
# UNLIKE (CIELAB delta E) of the room round it (within RING of the height): the pose draws
# limbs it guesses behind a swing's pole and its mask is coarse round feet. DAVIS tuning
# part: IoU 0.8248 -> 0.8253, boundary 0.1391 -> 0.1386 (without the colour test 0.8247 /
# 0.1387, issue 8's tuning people 0.9769 -> 0.9765, 0.0526 -> 0.0532: the room beside a
# raised arm and a backpack); issue 8's tuning people unchanged. Flat from 15 to 30 delta E,
# radius 0.02 to 0.05, pose 0.5 to 0.9 sure, ring 0.01 to 0.02; visibility 0.9 did less,
# and so did leaving out feet or hands.
LIMB_RADIUS = 0.03
POSE_SURE = 0.9
UNLIKE = 20.0
RING = 0.02
# Shoulder-elbow-wrist-index finger, hip-knee-ankle-heel and toes (MediaPipe's indices).
SEGMENTS = ((11, 13), (13, 15), (15, 19), (12, 14), (14, 16), (16, 20),
            (23, 25), (25, 27), (27, 29), (27, 31), (24, 26), (26, 28), (28, 30), (28, 32))


def _disk(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def fused_alpha(booth: np.ndarray, modnet: np.ndarray, image: np.ndarray | None = None,
                pose: Pose | None = None) -> np.ndarray:
    """The fused alpha (float32 HxW 0..1) from the booth's alpha and MODNet's, both at the
    size of `image`, the picture they were made from (BGR uint8; None: hollow bodies are
    not looked for); `pose`: the pose that confirmed the visitor, at that size (None: limbs
    both models miss are not looked for)."""
    person = booth > 0.5
    rows = np.nonzero(person.any(axis=1))[0]
    if rows.size == 0:
        return np.zeros_like(modnet)
    height = rows[-1] - rows[0] + 1
    # MODNet missed the person MediaPipe found: MediaPipe's alpha stands (made solid too).
    if ((modnet > 0.5) & person).sum() < COVER * person.sum():
        return _union(booth, modnet, person, height, pose, image)
    # Who: MODNet's pieces mostly on MediaPipe's person (a bystander MODNet alone would keep
    # is dropped); where: those pieces and the person, grown for MODNet's soft edge and hair.
    solid = (modnet > PIECE).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    over = np.bincount(labels[person], minlength=n) / np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    keep = over >= SHARE
    keep[0] = False
    region = cv2.dilate(keep[labels].astype(np.uint8) | person.astype(np.uint8),
                        _disk(GROW * height)) > 0
    alpha = np.where(region, (modnet - EDGE) * (1 / (1 - EDGE)), 0).astype(np.float32)
    np.clip(alpha, 0, 1, out=alpha)
    # A gap in MediaPipe's person that it is sure is the room (between an arm and the
    # body) stays the room: MODNet fills such gaps with the wall (the hoodie video).
    gap = _gaps(person, GAP * height) & (booth < ROOM)
    alpha[gap] = booth[gap]
    # Worked on the person's box (and a pixel round it, for the ring): it is all in there.
    cols = np.nonzero(person.any(axis=0))[0]
    box = np.s_[max(0, rows[0] - 1):rows[-1] + 2, max(0, cols[0] - 1):cols[-1] + 2]
    part, sure = alpha[box], booth[box]
    limbs = _missed_limbs(sure, part, person[box], height,
                          None if image is None else image[box])
    part[limbs] = np.maximum(part[limbs], sure[limbs])
    _pose_limbs(alpha, booth, modnet, pose, height, image)
    return solid_body(alpha, person & (modnet > LOW), height)


def _union(booth: np.ndarray, modnet: np.ndarray, person: np.ndarray,
           height: int, pose: Pose | None, image: np.ndarray | None) -> np.ndarray:
    """Where MODNet misses most of MediaPipe's person: MediaPipe's alpha, and besides it what
    MODNet is sure of (over 0.5) on or touching that person, with its soft edge (lowered as
    in the main path) round those parts; what MODNet holds apart from the person stays out."""
    alpha = booth.astype(np.float32)
    n, labels = cv2.connectedComponents((modnet > 0.5).astype(np.uint8), connectivity=8)
    touching = np.zeros(n, bool)
    touching[labels[cv2.dilate(person.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0]] = True
    touching[0] = False
    if touching.any():
        # Their soft edge: MODNet's alpha within GROW of the height of them, worked on their
        # box only (a disk dilation of the whole frame costs ~35 ms).
        pieces = touching[labels]
        ys, xs = np.nonzero(pieces)
        r = int(round(GROW * height)) + 1
        box = np.s_[max(0, ys.min() - r):ys.max() + r + 1, max(0, xs.min() - r):xs.max() + r + 1]
        near = cv2.distanceTransform((~pieces[box]).astype(np.uint8), cv2.DIST_L2, 3) < r
        edge = np.clip((modnet[box] - EDGE) * (1 / (1 - EDGE)), 0, 1)
        alpha[box] = np.where(near, np.maximum(alpha[box], edge), alpha[box])
    _pose_limbs(alpha, booth, modnet, pose, height, image)
    return solid_body(alpha, person, height)


@dataclass(frozen=True)
class Pose:
    """The pose that confirmed the visitor (booth.vision.presence), at the fused picture's
    size: its 33 landmarks, (33, 3) x, y pixels and visibility, and its own mask of the
    visitor (float32 0..1)."""

    joints: np.ndarray
    body: np.ndarray


def _pose_limbs(alpha: np.ndarray, booth: np.ndarray, modnet: np.ndarray,
                pose: Pose | None, height: int, image: np.ndarray | None) -> None:
    """`alpha` (in place) with the pose's mask taken along the pose's limbs where both
    models miss them (see LIMB_RADIUS); `image`: the picture (None: no colour test)."""
    if pose is None or len(pose.joints) < 33:
        return
    along = np.zeros(alpha.shape, np.uint8)
    line = np.zeros(alpha.shape, np.uint8)
    radius = max(1, int(round(LIMB_RADIUS * height)))
    seen = pose.joints[:, 2] >= VISIBLE
    ends = np.round(pose.joints[:, :2]).astype(int)
    for a, b in SEGMENTS:
        if seen[a] and seen[b]:
            cv2.line(along, tuple(ends[a]), tuple(ends[b]), 1, 2 * radius + 1)
            cv2.line(line, tuple(ends[a]), tuple(ends[b]), 1, 3)
    take = (along > 0) & (pose.body > POSE_SURE) & (alpha < 0.5) & (booth < 0.5) & (modnet < 0.5)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(take.astype(np.uint8), connectivity=8)
    crossing = np.bincount(labels[(line > 0) & take], minlength=n) > 0
    crossing[0] = False
    if image is not None and crossing.any():
        # Each piece's colour against the room round it, worked on the piece's box.
        h, w = alpha.shape
        r = max(1, int(round(RING * height)))
        for label in np.nonzero(crossing)[0]:
            x, y, bw, bh = stats[label, :4]
            box = np.s_[max(0, y - r):min(h, y + bh + r), max(0, x - r):min(w, x + bw + r)]
            piece = (labels[box] == label).astype(np.uint8)
            ring = (cv2.dilate(piece, _disk(r)) > 0) & (alpha[box] < 0.05) & (labels[box] == 0)
            if ring.any():
                part = image[box]
                crossing[label] = np.linalg.norm(
                    _mean_lab(part[piece > 0]) - _mean_lab(part[ring])) > UNLIKE
    take = crossing[labels]
    alpha[take] = pose.body[take]


def _missed_limbs(booth: np.ndarray, alpha: np.ndarray, person: np.ndarray, height: int,
                  image: np.ndarray | None) -> np.ndarray:
    """Where MediaPipe's person has a limb that `alpha` (MODNet's) misses: the pieces of
    the person where MediaPipe is sure and alpha under 0.5, opened by LIMB of the height,
    less those mostly ringed by alpha's body unless hollow (_hollow), grown back by twice
    that within the person."""
    miss = (person & (alpha <= 0.5) & (booth >= SURE)).astype(np.uint8)
    miss = cv2.morphologyEx(miss, cv2.MORPH_OPEN, _disk(LIMB * height))
    n, labels = cv2.connectedComponents(miss, connectivity=8)
    if n < 2:
        return np.zeros_like(person)
    # Labels dilated as uint16 when they fit: ten times faster than as float32.
    ring = cv2.dilate(labels.astype(np.uint16 if n < 2 ** 16 else np.float32),
                      np.ones((3, 3), np.uint8)).astype(np.int64)
    rim = (ring > 0) & (labels == 0)
    ringed = np.bincount(ring[rim & (alpha > 0.5)], minlength=n) >= RINGED * np.maximum(
        np.bincount(ring[rim], minlength=n), 1)
    ringed[0] = True
    if image is not None and ringed[1:].any():
        ringed &= ~_hollow(miss, labels, ringed, alpha, person, image, height)
    keep = ~ringed[labels]
    limbs = np.zeros_like(person)
    if not keep.any():
        return limbs
    # Grown within the limbs' box only: a dilation of the whole frame costs ~7 ms.
    ys, xs = np.nonzero(keep)
    r = int(round(2 * LIMB * height)) + 1
    y0, y1 = max(0, ys.min() - r), ys.max() + r + 1
    x0, x1 = max(0, xs.min() - r), xs.max() + r + 1
    grown = cv2.dilate(keep[y0:y1, x0:x1].astype(np.uint8), _disk(2 * LIMB * height)) > 0
    limbs[y0:y1, x0:x1] = grown & person[y0:y1, x0:x1]
    return limbs


def _hollow(miss: np.ndarray, labels: np.ndarray, ringed: np.ndarray, alpha: np.ndarray,
            person: np.ndarray, image: np.ndarray, height: int) -> np.ndarray:
    """Which ringed pieces (`labels` of `miss`) are the person's inside: wider than twice
    HOLLOW of the height and nearer in colour (CIELAB) to alpha's body than LIKE times the
    room's beside it."""
    hollow = np.zeros_like(ringed)
    wide = cv2.distanceTransform(miss, cv2.DIST_L2, 3) >= HOLLOW * height
    candidates = np.unique(labels[wide])
    candidates = candidates[ringed[candidates] & (candidates > 0)]
    room = (alpha < 0.05) & ~person
    body = alpha > 0.9
    if not candidates.size or not room.any() or not body.any():
        return hollow
    body_colour, room_colour = _mean_lab(image[body]), _mean_lab(image[room])
    for label in candidates:
        colour = _mean_lab(image[labels == label])
        hollow[label] = (LIKE * np.linalg.norm(colour - body_colour)
                         < np.linalg.norm(colour - room_colour))
    return hollow


def _mean_lab(pixels: np.ndarray) -> np.ndarray:
    """The mean colour of BGR uint8 pixels (N, 3) in OpenCV's 8-bit CIELAB (L scaled to
    0..255: distances there are what UNLIKE and LIKE were measured in)."""
    lab = cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_BGR2Lab)
    return lab.reshape(-1, 3).astype(np.float32).mean(axis=0)


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


def fused_matte(matte: Matte, modnet: np.ndarray, origin: tuple[int, int] = (0, 0),
                image: np.ndarray | None = None, joints: np.ndarray | None = None,
                body: np.ndarray | None = None) -> Matte:
    """The refined full-resolution `matte` (Matte.from_alpha) fused with MODNet's alpha of a
    region of the frame holding the matte (its top-left corner at `origin`, frame pixels; by
    default the whole frame; `image`: that region of the frame, see fused_alpha), cut to
    where the fused alpha holds anyone (unchanged when it holds nobody). `joints`, `body`:
    the pose that confirmed the visitor (booth.vision.placement.People), its landmarks as
    fractions of the frame and its mask at the frame's size (None: not used)."""
    h, w = modnet.shape
    ox, oy = origin
    booth = np.zeros((h, w), np.float32)
    x0, y0 = int(matte.to_frame[0, 2]) - ox, int(matte.to_frame[1, 2]) - oy
    mh, mw = matte.values.shape
    booth[y0:y0 + mh, x0:x0 + mw] = matte.values
    pose = None
    if joints is not None and body is not None and len(joints):
        fh, fw = body.shape
        at = joints * [fw, fh, 1] - [ox, oy, 0]
        pose = Pose(at, body[oy:oy + h, ox:ox + w])
    alpha = fused_alpha(booth, modnet, image, pose)
    ys, xs = np.nonzero(alpha > 0)
    if not len(ys):
        return matte
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    return Matte.from_alpha(alpha[y0:y1, x0:x1], (x0 + ox, y0 + oy, x1 + ox, y1 + oy))
