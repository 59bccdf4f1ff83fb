"""Solid bodies in any light (issue 20, item 4): inside a person the saved photo's cut-out is
opaque, and the edge colours never repaint a hand with the room's colours."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from booth.vision.compositing import Matte
from booth.vision.fusion import fused_matte
from booth.vision.modnet import Modnet
from booth.vision.placement import find_people
from booth.vision.refine import refined_alpha
from booth.vision.segmentation import exposed
from booth.wiring import load_pipeline
from devtools.quality import (
    DAVIS,
    DAVIS_HELD_OUT,
    INTERIOR,
    OPAQUE,
    ROOMS,
    davis_frames,
    davis_view,
    interior_opacity,
)
from tests.conftest import ASSETS, MODNET, plate_config, unavailable
from tests.test_cutout import video_frame

# The hoodie video's last frames: the visitor's arms hang by his sides against the office
# wall, and his right hand (left in the picture) runs off the bottom of the 1280x720 view.
# The box is the part of that hand that is skin only, picked by looking at the frame at 100 %
# (RGB about 115, 102, 84 there; the wall beside it is about 153, 158, 147).
HAND_FRAME = 72
HAND_BOX = (300, 690, 350, 720)  # x0, y0, x1, y1 in the 1280x720 view
# Beside it, the wall between his sleeve and his body, picked the same way: MODNet takes it
# for him (the fused alpha there was 0.94 on average before gaps were kept).
WALL_BOX = (360, 690, 420, 720)


def _lab(bgr: np.ndarray) -> np.ndarray:
    """The mean colour of BGR pixels in CIELAB."""
    mean = bgr.reshape(-1, 3).mean(axis=0).astype(np.float32)[None, None] / 255
    return cv2.cvtColor(mean, cv2.COLOR_BGR2Lab)[0, 0]


def _interior(truth: np.ndarray) -> np.ndarray:
    """The person's inside as interior_opacity counts it: the truth eroded by INTERIOR of
    their height."""
    inside = (truth > 0.5).astype(np.uint8)
    rows = np.nonzero(inside.any(axis=1))[0]
    r = max(1, round(INTERIOR * (rows[-1] - rows[0] + 1)))
    return cv2.erode(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                       (2 * r + 1, 2 * r + 1))) > 0


@pytest.fixture(scope="module")
def pipeline():
    if not MODNET.is_file():
        unavailable(f"the matting model {MODNET} is missing (scripts/setup-tests installs it)")
    fused = load_pipeline(plate_config(), mirror=False)
    fused.portrait = Modnet(MODNET)
    return fused


def test_a_hand_keeps_its_own_skin_colour_and_the_wall_beside_it_stays_out(pipeline):
    frame = video_frame("intel_asl_again.mp4", HAND_FRAME)
    analysis = pipeline.photo_analysis(frame)
    assert analysis.people.found
    colours, alpha = pipeline.cutout(frame, analysis, pipeline.photo_matte(frame, analysis))
    x0, y0, x1, y1 = HAND_BOX
    hand = np.s_[y0:y1, x0:x1]
    assert alpha[hand].mean() >= 0.9  # the hand is kept, solid
    # Delta E (CIE76) of the mean colours. Without the model, MediaPipe's alpha is soft over
    # this hand (0.56) and its estimated colours come out 12.6 darker (toward the sleeve).
    assert np.linalg.norm(_lab(colours[hand]) - _lab(frame[hand])) <= 3.0
    x0, y0, x1, y1 = WALL_BOX
    assert alpha[y0:y1, x0:x1].mean() <= 0.1  # measured 0.04


@pytest.mark.slow
def test_bodies_of_the_davis_held_out_people_are_solid_inside(pipeline):
    """The fused cut-out of every 6th measured frame of each held-out sequence (17 pictures)
    and of breakdance-flare 00005, made from the MediaPipe person the photo path finds (the
    pose check left out: it is tested on its own). Inside the body no alpha is left soft;
    what is not opaque there is what both models miss: the truth holds kite boards and lines
    (kite-walk), the tulle of a skirt flying mid-jump (dance-jump 00030) and shoes at the tip
    of a leg (breakdance-flare)."""
    found = {}
    # And the one where MODNet misses most of the dancer (upside down), but is sure of his
    # raised leg, which MediaPipe misses (fusion._union).
    extra = [ASSETS / DAVIS / "breakdance-flare" / "00005.jpg"]
    for sequence in DAVIS_HELD_OUT:
        for jpg in davis_frames(ASSETS, sequence)[::6] + extra * (sequence == "breakdance-flare"):
            truth = cv2.imread(str(jpg.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
            frame, truth = davis_view(cv2.imread(str(jpg)), truth)
            small = cv2.resize(frame, pipeline.segmenter.input_size,
                               interpolation=cv2.INTER_LINEAR)
            people = find_people(pipeline.segmenter.segment(exposed(small)),
                                 pipeline.min_person_fraction)
            alpha, box = refined_alpha(frame, people.bbox, pipeline.refiner)
            matte = fused_matte(Matte.from_alpha(alpha, box), pipeline.portrait.alpha(frame),
                                image=frame)
            cut = pipeline.photo_alpha(frame, None, matte)
            inside = cut[_interior(truth)]
            found[f"{sequence}/{jpg.stem}"] = (interior_opacity(cut, truth),
                                               ((inside >= 0.05) & (inside < OPAQUE)).mean())
    assert len(found) == 18
    assert found["breakdance-flare/00005"][0] >= 0.95, found  # 0.80 with MODNet dropped
    # Measured: mean 0.956 (0.950 before the body was made solid deeper than 1 % of the
    # height), worst 0.77 (kite-walk 00030), soft inside at most 4.7 % (kite-walk, the board).
    assert np.mean([opaque for opaque, _ in found.values()]) >= 0.95, found
    assert all(opaque >= 0.95 for name, (opaque, _) in found.items()
               if not name.startswith("kite-walk") and name != "dance-jump/00030"), found
    assert all(soft <= 0.05 for _, soft in found.values()), found


@pytest.mark.slow
def test_bodies_are_solid_inside_in_every_room_of_issue_8s_set(issue8_measured):
    """Every picture of issue 8's set (the bright wall, the back plate, the two offices, the
    dim lamp-lit room; the shared five as they are), the saved photo's cut-out with the
    model: opaque inside. Measured with MODNet's soft edge lowered (fusion.EDGE): 0.9865 at
    worst (rembg_girl-1 in the dim room); before, with MODNet at 384: 0.987 (0.990 while
    MediaPipe's whole person was forced opaque, 0.996 with MODNet at 512)."""
    rows = issue8_measured
    assert len(rows) == 30
    assert {r["room"] for r in rows} == {"own", *ROOMS}
    assert all(r["booth"]["opaque"] >= 0.985 for r in rows), [
        (r["room"], r["photo"], r["booth"]["opaque"]) for r in rows]
