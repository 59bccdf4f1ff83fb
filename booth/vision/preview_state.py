"""The live preview's state between frames (booth.vision.pipeline's preview path): what the
model last saw, the mask as smoothed, the frame before's placement and colours, what the second
thread made of a frame, and whether a new frame shows anything new."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from booth.vision.placement import People

# The live preview asks the model again only when the picture has changed since it last
# looked (as obs-backgroundremoval skips inference on a frame that barely changed): most of a
# kiosk's day is an empty room, and a visitor holding still for the countdown needs no new
# cut-out. Changed: more than STILL_PIXELS pixels of the model's small grey frame differ
# from the one the model saw by more than STILL_LEVELS (averaged over 3x3 of them). A still
# webcam's noise and JPEG blocks leave 0 to 5 such pixels (sigma up to 6 at 1280x720, Motion
# JPEG); a visitor's edge moved by a model pixel makes one per pixel of outline wherever its
# contrast is over 36, and a moving visitor in the shared video hundreds (fewer than 18 in
# only a tenth of its frames, most of those repeated ones). The model looks again at least
# every STILL_SECONDS anyway.
STILL_LEVELS = 12
STILL_PIXELS = 8
STILL_SECONDS = 0.5


@dataclass(frozen=True)
class Sight:
    """What the model made of the preview frame it last looked at."""

    grey: np.ndarray  # that frame, small and grey
    at: float  # when (the clock of Pipeline.preview_analysis)
    people: People
    colour: np.ndarray | None


@dataclass(frozen=True)
class SmoothedMask:
    """The preview frame before, for the mask's smoothing over time: the frame small and
    grey (how the picture moved since), and its mask as smoothed."""

    grey: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class Before:
    """The preview frame before: its people's box and colour transfer, with which the next
    frame is placed ahead while the model looks at it (and shown, while someone stays)."""

    bbox: tuple[float, float, float, float] | None = None
    colour: np.ndarray | None = None


@dataclass(frozen=True)
class Aside:
    """What the second thread made of a preview frame while the model looked at it."""

    moved: np.ndarray | None  # how the picture moved since the frame before (effects.motion)
    colour: np.ndarray | None  # its colour transfer under the people of the last sight


def unchanged(seen: np.ndarray, grey: np.ndarray) -> bool:
    """Whether a small grey frame shows what `seen` showed, a webcam's noise aside."""
    difference = cv2.blur(cv2.absdiff(seen, grey), (3, 3))
    return cv2.countNonZero(cv2.threshold(difference, STILL_LEVELS, 255,
                                          cv2.THRESH_BINARY)[1]) <= STILL_PIXELS
