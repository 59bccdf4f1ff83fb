"""Who is in the photo: a second, independent look for a person before a photo is saved.

The person model (booth.vision.segmentation) sees people in whatever looks like one: a piece
of the rover, a wall's shadow. So the saved photo's path asks MediaPipe's pose landmarker
(its BlazePose models, shipped in the same mediapipe 0.10.21 wheel) whether a body is there,
once per photo, never per preview frame. Its landmarks then say which of the mask's blobs
are the visitor: people much smaller than them (a crowd, a passer-by far behind) are left
off Mars. And the finished picture must show the visitor (shows_someone).

The pose landmarker, not the face detector: visitors turn away, hide their face behind hair
or a hand, look down (of the seven people in the shared photos, the short-range face detector
misses four, and one even in a square around her head; the pose landmarker, with its second
look at the person's box, none). Where neither of its first two looks finds a body, two more
are taken (issue 20: a dancer mid-jump, a paraglider pilot seen from behind): the frame
mirrored, and a wider square round the person's box. It runs through mediapipe's `solutions`
API: the Tasks API wants a .task bundle with metadata, which the wheel does not ship for the
pose models.
"""

from __future__ import annotations

import dataclasses
import threading
import warnings

import cv2
import numpy as np

from booth.quiet import quiet_stderr
from booth.vision.compositing import Drawn
from booth.vision.placement import People, components, people_of

# The pose detector's confidence for a body. Its default, 0.5, misses a woman seen from
# behind (p3m_p_bd6af989, found at 0.3) while the empty plates stay empty down to 0.1.
_DETECTION = 0.3
# A landmark counts where the model thinks it visible (its own default).
VISIBLE = 0.5
# The pose detector looks at the whole frame shrunk to 224x224; a dancer seen from the side
# (DAVIS dance-jump) is found only in a square around the person's box, this much wider.
_CROP_MARGIN = 0.15
# The detector is fickle on a blurred body or one seen from behind: it may miss it in the frame
# and in that square, yet find it in the frame mirrored or in a square this much wider. Of
# DAVIS's tuning people blurred sideways (41 px, as a twirl blurs), the first two looks miss
# 7 of 82 and these two find 3 (the person model misses 3 of the other 4). Each look costs
# what the first does (30-50 ms here), so they are taken only after both fail.
_WIDE_MARGIN = 0.5
# Those further looks see more: bodies half out of the frame (the shared videos' visitor
# stepping out, an arm and a shoulder at the edge) show 2-7 visible landmarks in them, the
# people of DAVIS's tuning part 14-33. So a further look counts only with this many.
_FURTHER_LANDMARKS = 12
# A visitor stands in front of the camera: their visible landmarks span at least this share
# of the frame's height (either way). The shared photos' and videos' visitors span 0.40-0.81,
# the seated audience of DAVIS dance-twirl (the camera on the crowd) 0.19.
_NEAR = 0.25
# A blob no landmark falls in is someone else: kept beside the visitor when at least this
# share of the visitor's height (a second visitor), left off when smaller (people far
# behind: the seated audience's blob behind DAVIS dance-twirl's dancer is 0.45 of her
# height). A small child apart from the adult the pose found may fall under it; one
# holding their hand is in the same blob and stays.
_COMPARABLE = 0.6
# Someone touching the visitor in the picture is one blob with them (the seated audience
# behind DAVIS dance-twirl's dancer). The pose's own mask of the visitor says which part is
# them: what of the blob lies further than _REACH of the visitor's height from it, reaches
# further than _FAR from it and is shorter than _COMPARABLE of them is left off. A backpack
# or a bag the pose's mask leaves out reaches 0.11-0.12 of the height (DAVIS hike, lucia),
# the girl sitting behind the dancer 0.14, a hiker's shadow 0.32. DAVIS tuning part, IoU
# and boundary error: before 0.7970 / 0.1559; reach 0.13: 0.8109 / 0.1548 (0.1: 0.8070 /
# 0.1579, 0.2: 0.8066 / 0.1549).
# The pose's mask must lie on the person model's people (at least _SAME of it), or it is
# someone else.
_REACH = 0.03
_FAR = 0.13
_SAME = 0.6
# Yet a part holding one of the pose's visible landmarks is the visitor's own (a dancer's
# tulle skirt the pose's mask leaves out: DAVIS dance-jump 00020, its inside opaque 0.75 ->
# 0.95), unless the landmark is a foot's: the ground and a shadow touch the feet (a hiker's
# shadow holds a heel: counting feet too, DAVIS tuning part IoU 0.8253 -> 0.8244). Landmarks
# from _FEET on are the ankles, heels and toes.
_FEET = 27
# The finished picture shows the visitor: at least this share of its pixels opaque
# (alpha >= 0.5) with them. The shared photos' visitors cover 9-22 % of it.
_SHOWN = 0.01


class Presence:
    """MediaPipe's pose landmarker on one picture at a time (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Like the person model, it logs on fd 2 while loading, and the first time it finds a
        # body: shown a drawn one here, it has said all it says before anything else runs
        # (fd 2 is the whole process's: silenced later, it would swallow others' lines).
        with quiet_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            from mediapipe.python.solutions.pose import Pose

            # Complexity 1 is the landmark model the wheel ships (0 and 2 would be downloaded).
            # Its person mask comes from the landmark model's own output: no extra cost.
            self._pose = Pose(static_image_mode=True, model_complexity=1,
                              min_detection_confidence=_DETECTION, enable_segmentation=True)
            self._pose.process(_figure())

    def close(self) -> None:
        """Close the graph and let it go (its threads end with the object)."""
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def visitors(self, frame: np.ndarray, people: People) -> People:
        """The people of a BGR frame's mask that its pose confirms (see visitors)."""
        if not people.found:
            return people
        joints, body = self.pose(frame, people.bbox)
        points = _visible(joints)
        h, w = frame.shape[:2]
        if len(points) and max(np.ptp(points[:, 1]), np.ptp(points[:, 0]) * w / h) < _NEAR:
            points = points[:0]  # someone far away, not a visitor in front of the camera
        holding = _visible(joints[:_FEET]) if len(points) else points
        found = visitors(people, points, body, holding)
        # The saved photo's fusion looks for limbs both models missed along the pose's.
        return dataclasses.replace(found, joints=joints, body=body) if found.found else found

    def landmarks(self, frame: np.ndarray, bbox: tuple[float, float, float, float]
                  ) -> np.ndarray:
        """The visible body landmarks in a BGR frame, (N, 2) u, v fractions of it (none
        found: N = 0). Where the whole frame shows no body, a square around `bbox` (the
        person model's box, fractions) is looked at; where that shows none either, the
        frame mirrored and a wider square (see _WIDE_MARGIN)."""
        return _visible(self.pose(frame, bbox)[0])

    def pose(self, frame: np.ndarray, bbox: tuple[float, float, float, float]
             ) -> tuple[np.ndarray, np.ndarray | None]:
        """All 33 landmarks of the body found as landmarks() finds it, (33, 3): u, v
        fractions of the frame and the model's visibility (none found: (0, 3)), and the
        pose's own mask of that one person (float32 0..1 at the frame's size; None: no
        body)."""
        joints, body = self._look(frame)
        if not len(_visible(joints)):
            joints, body = self._look_around(frame, bbox, _CROP_MARGIN)
        if len(_visible(joints)):
            return joints, body
        for further in (lambda: self._look(frame, mirrored=True),
                        lambda: self._look_around(frame, bbox, _WIDE_MARGIN)):
            joints, body = further()
            if len(_visible(joints)) >= _FURTHER_LANDMARKS:
                return joints, body
        return np.zeros((0, 3)), None

    def _look_around(self, frame: np.ndarray, bbox: tuple[float, float, float, float],
                     margin: float) -> tuple[np.ndarray, np.ndarray | None]:
        """_look at a square round `bbox` grown by `margin` of its side each way (cut to
        the frame); the landmarks as fractions of the frame, the mask at its size."""
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = bbox[0] * w, bbox[1] * h, bbox[2] * w, bbox[3] * h
        side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        right, bottom = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        if right - left < 8 or bottom - top < 8:
            return np.zeros((0, 3)), None
        joints, seen = self._look(frame[top:bottom, left:right])
        body = None
        if seen is not None:
            body = np.zeros((h, w), np.float32)
            body[top:bottom, left:right] = seen
        joints = joints.copy()
        joints[:, :2] = (joints[:, :2] * [right - left, bottom - top] + [left, top]) / [w, h]
        return joints, body

    def _look(self, bgr: np.ndarray, mirrored: bool = False
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """The landmarks in `bgr` ((33, 3): u, v fractions of it, visibility; (0, 3): no
        body) and the pose's mask of the person (None: no body); `mirrored`: looked for in
        its mirror image, given back as they are in `bgr` (left and right swap sides, which
        no caller minds: each limb stays a limb)."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        rgb = np.ascontiguousarray(rgb[:, ::-1] if mirrored else rgb)
        with self._lock:
            results = self._pose.process(rgb)
        found, body = results.pose_landmarks, results.segmentation_mask
        if found is None or body is None:
            return np.zeros((0, 3)), None
        body = np.ascontiguousarray(body[:, ::-1]) if mirrored else body
        return np.array([(1 - p.x if mirrored else p.x, p.y, p.visibility)
                         for p in found.landmark]).reshape(-1, 3), body


def _visible(joints: np.ndarray) -> np.ndarray:
    """The visible landmarks on the frame, (N, 2) u, v fractions of it."""
    points = joints[joints[:, 2] >= VISIBLE, :2]
    return points[((points >= 0) & (points < 1)).all(axis=1)]


def _figure() -> np.ndarray:
    """A person drawn in a few strokes (RGB, 256x256), which the pose finds."""
    image = np.full((256, 256, 3), 200, np.uint8)
    cv2.circle(image, (128, 50), 18, (200, 150, 120), -1)  # the head, skin-coloured
    for eye in (121, 135):
        cv2.circle(image, (eye, 46), 2, (40, 40, 40), -1)
    cv2.line(image, (122, 58), (134, 58), (150, 60, 60), 2)  # the mouth
    cv2.rectangle(image, (105, 72), (151, 150), (40, 80, 150), -1)  # the body, a blue top
    for shoulder, hand in (((105, 78), (80, 140)), ((151, 78), (176, 140))):
        cv2.line(image, shoulder, hand, (40, 80, 150), 12)
    for hip, foot in (((115, 150), (110, 240)), ((141, 150), (146, 240))):
        cv2.line(image, hip, foot, (60, 60, 60), 14)
    return image


def visitors(people: People, points: np.ndarray, body: np.ndarray | None = None,
             holding: np.ndarray | None = None) -> People:
    """The people of a photo's mask that are the visitor (a blob holding one of the pose's
    landmarks, `points`) or as tall as them, without the smaller people touching the
    visitor (see touching; `body`: the pose's own mask of the visitor, `holding`: the
    landmarks that keep a part theirs); nobody when no landmark falls on the mask.
    Unchanged (the same mask) when nobody is left off."""
    if not people.found or not len(points):
        return People(np.zeros_like(people.mask), None)
    count, labels, stats = components(people.mask)
    h, w = labels.shape
    cols = np.clip((points[:, 0] * w).astype(int), 0, w - 1)
    rows = np.clip((points[:, 1] * h).astype(int), 0, h - 1)
    # A landmark on a blob's soft edge (under 0.5) still belongs to it: look 2 pixels round.
    near = cv2.dilate(labels.astype(np.uint16), np.ones((5, 5), np.uint8))
    held = {int(label) for label in near[rows, cols] if label}
    if not held:
        return People(np.zeros_like(people.mask), None)
    tallest = max(stats[i, cv2.CC_STAT_HEIGHT] for i in held)
    keep = [i for i in range(1, count) if i in held
            or stats[i, cv2.CC_STAT_HEIGHT] >= _COMPARABLE * tallest]
    if len(keep) < count - 1:
        people = people_of(people.mask, labels, stats, keep)
    return people if body is None else touching(people, body, holding)


def touching(people: People, body: np.ndarray, holding: np.ndarray | None = None) -> People:
    """`people` without the parts of their blobs that lie further than _REACH of the
    visitor's height from the pose's own mask of the visitor (`body`, float32 0..1 at the
    frame's size), reach further than _FAR from it, are shorter than _COMPARABLE of them
    and hold none of the landmarks `holding` ((N, 2) u, v fractions of the frame; None: none):
    someone sitting behind a dancer who touches her arm in the picture is one blob with her.
    The saved photo's cut-out is kept off those parts (People.allowed). Unchanged when the
    pose's mask does not lie on the people (it is someone else)."""
    h, w = people.mask.shape
    person = people.mask > 0.5
    own = cv2.resize(body, (w, h), interpolation=cv2.INTER_AREA) > 0.5
    mine = np.count_nonzero(own)
    if not mine or np.count_nonzero(own & person) < _SAME * mine:
        return people
    rows = np.nonzero(own.any(axis=1))[0]
    height = rows[-1] - rows[0] + 1
    radius = max(1, round(_REACH * height))
    near = cv2.dilate(own.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))) > 0
    count, labels, stats = components((person & ~near).astype(np.float32))
    shorter = [i for i in range(1, count) if stats[i, cv2.CC_STAT_HEIGHT] < _COMPARABLE * height]
    if not shorter:
        return people
    away = cv2.distanceTransform((~own).astype(np.uint8), cv2.DIST_L2, 3)
    drop = [i for i in shorter if away[labels == i].max() >= _FAR * height]
    if holding is not None and len(holding):
        mine = labels[np.clip((holding[:, 1] * h).astype(int), 0, h - 1),
                      np.clip((holding[:, 0] * w).astype(int), 0, w - 1)]
        drop = [i for i in drop if i not in mine]
    if not drop:
        return people
    # Off: those parts grown by their soft edges (as people_of grows kept blobs), never
    # into the visitor. What the mask does not see stays allowed: the photo's closer look
    # finds a pram the mask misses.
    off = cv2.dilate(np.isin(labels, drop).astype(np.uint8), np.ones((5, 5), np.uint8))
    allowed = 1 - (off & ~near)
    mask = people.mask * allowed
    count, labels, stats = components(mask)
    cut = people_of(mask, labels, stats, list(range(1, count)))
    return dataclasses.replace(cut, allowed=allowed)


def shows_someone(drawn: Drawn | None, width: int, height: int) -> bool:
    """Whether a picture area of this size, as drawn, shows the visitor (see _SHOWN)."""
    return drawn is not None and np.count_nonzero(drawn.alpha >= 0.5) >= _SHOWN * width * height
