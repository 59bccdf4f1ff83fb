"""Who is in the photo (booth.vision.presence): no photo with nobody in it, on real media.

The empty back plate, the Mars plate itself, the shared videos' visitor stepping out of a
window moving across their frame, and the seated audience of a DAVIS sequence (the camera on
the crowd) make no photo; every shared photo of a person still does, unchanged; and people
much smaller than the visitor are left off Mars; the people of DAVIS's held-out part are
confirmed (their pose is looked for again, mirrored and wider, where it is not found at
first). DAVIS frames are read from the shared assets for these tests only (CC BY-NC:
nothing made from them is kept).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.clock import ManualClock
from booth.station.machine import State
from booth.store import Store
from booth.vision.placement import find_people
from booth.vision.presence import Presence, touching
from booth.vision.segmentation import exposed
from booth.wiring import load_pipeline
from devtools.quality import refusals
from tests.conftest import ASSETS, PLATE, asset, plate_config
from tests.test_station import HandCamera, small_station

PEOPLE = ["bgm_0001_img.png", "p3m_p_a09f6d7a.jpg", "p3m_p_bd6af989.jpg", "rembg_girl-1.jpg",
          "rembg_girl-2.jpg", "rembg_girl-3.jpg", "skimage_astronaut.png"]
TWIRL = "devset/davis/dance-twirl/00020"  # a dancer before a seated audience, 854x480


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(plate_config(), mirror=True)


def photo(pipeline, frame: np.ndarray) -> np.ndarray | None:
    """The photo's picture area as `booth compose` makes it, or None: no photo."""
    return pipeline.shown_final(frame, pipeline.photo_analysis(frame))


def video_frame(name: str, index: int = 30) -> np.ndarray:
    cap = cv2.VideoCapture(str(asset(f"video/{name}")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def window(name: str, x0: int, index: int = 30) -> np.ndarray:
    """A 160x360 window of a 640x480 video frame from column x0: sliding it right, the
    visitor steps out of it to the left (real pixels, nothing painted)."""
    return np.ascontiguousarray(video_frame(name, index)[60:420, x0:x0 + 160])


def test_the_pose_says_its_piece_on_fd_2_while_it_is_made_not_at_its_first_body(capfd):
    """MediaPipe logs on fd 2 when a new pose graph first finds a body; the check's
    construction shows it one, so a photo later never needs fd 2 silenced (which would
    swallow other threads' lines)."""
    presence = Presence()
    capfd.readouterr()
    frame = cv2.imread(str(asset("people/rembg_girl-1.jpg")))
    assert len(presence.landmarks(frame, (0.0, 0.0, 1.0, 1.0)))
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("name", PEOPLE)
def test_every_shared_photo_of_a_person_still_makes_one(pipeline, name):
    assert photo(pipeline, cv2.imread(str(asset(f"people/{name}")))) is not None


@pytest.mark.parametrize("relative", ["people/bgm_0001_back_plate.png", PLATE])
def test_no_photo_of_an_empty_room_or_of_the_plate_itself(pipeline, relative):
    """The plate: the person model sees someone in the rover's mast and arm; no body."""
    assert photo(pipeline, cv2.imread(str(asset(relative)))) is None


@pytest.mark.parametrize(("name", "x0", "in_view"), [
    ("intel_asl_again.mp4", 200, True), ("intel_asl_again.mp4", 100, False),
    ("intel_asl_again.mp4", 400, False), ("intel_asl_again.mp4", 460, False),
    ("intel_asl_again.mp4", 480, False), ("intel_asl_book.mp4", 200, True),
    ("intel_asl_book.mp4", 100, False), ("intel_asl_book.mp4", 400, False),
    ("intel_asl_book.mp4", 460, False), ("intel_asl_book.mp4", 0, False)])
def test_no_photo_as_the_visitor_steps_out_of_the_frame(pipeline, name, x0, in_view):
    """Half out (an arm and a shoulder at the edge: the preview's model is sure of them),
    a sliver of sleeve, an office chair, the empty wall: no photo."""
    assert (photo(pipeline, window(name, x0)) is not None) is in_view


@pytest.mark.slow
@pytest.mark.parametrize("name", ["intel_asl_again.mp4", "intel_asl_book.mp4"])
def test_the_further_looks_find_no_visitor_half_out_of_the_frame(pipeline, name):
    """Where the first two looks find no body, the mirrored and the wider look are taken:
    at three moments of each video, with an arm and a shoulder at the window's edge or
    nothing of the visitor in it, still no photo."""
    for index in (10, 30, 60):
        for x0 in (0, 20, 40, 60, 80, 100, 380, 400, 420, 440, 460, 480):
            assert photo(pipeline, window(name, x0, index)) is None, (index, x0)


@pytest.mark.slow
def test_the_people_of_the_davis_held_out_part_are_confirmed(pipeline):
    """Every measured frame of the held-out sequences (people the booth was never tuned on:
    a dancer mid-jump, a paraglider pilot seen from behind, a breakdancer upside down): the
    photo keeps the annotated person on all but 3 of 92 (before the further looks, 10 were
    refused: 2 of dance-jump's, 8 of paragliding-launch's)."""
    rows = [r for r in refusals(ASSETS, pipeline) if r["set"] == "davis-held-out"]
    refused = [f"{r['sequence']}/{r['frame']}" for r in rows if not r["confirmed"]]
    assert len(rows) == 92
    assert len(refused) <= 3, refused


def test_the_second_look_decides_where_the_preview_was_sure(pipeline):
    """A window the preview's model is confident of, with no body in it: the shutter's
    check passes, the photo's does not."""
    frame = window("intel_asl_again.mp4", 100)
    assert pipeline.preview_analysis(frame, 0.0).people.confident
    pipeline.forget()
    assert not pipeline.photo_analysis(frame).drawable


def test_no_photo_of_a_crowd_far_away(pipeline):
    """The camera on the audience: the person model finds them, and its preview is sure;
    the pose finds them too small to be a visitor in front of the camera."""
    crowd = np.ascontiguousarray(cv2.imread(str(asset(f"{TWIRL}.jpg")))[0:190, 0:338])
    assert pipeline.preview_analysis(crowd, 0.0).people.confident
    pipeline.forget()
    assert photo(pipeline, crowd) is None


def test_people_far_behind_the_visitor_are_left_off(pipeline):
    """The dancer with the audience behind her, every blob the person model sees kept
    (down to 0.05 % of the frame): the photo keeps all of the dancer (her hand-drawn truth,
    grown by a model pixel) and leaves off most of the audience further than 4 model pixels
    from her (what stays touches her)."""
    frame = cv2.imread(str(asset("devset/davis/dance-twirl/00033.jpg")))
    truth = cv2.imread(str(asset("devset/davis/dance-twirl/00033.png")),
                       cv2.IMREAD_GRAYSCALE) > 0
    small = cv2.resize(frame, pipeline.segmenter.input_size, interpolation=cv2.INTER_LINEAR)
    everyone = find_people(pipeline.segmenter.segment(exposed(small)), 0.0005)
    kept = pipeline.presence.visitors(frame, everyone)
    h, w = everyone.mask.shape
    her = cv2.resize(truth.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    near_truth = cv2.dilate(her, np.ones((9, 9)))
    outside = np.count_nonzero((everyone.mask > 0.5) & (near_truth == 0))
    assert outside > 0.02 * h * w  # the audience was there to leave off
    assert np.count_nonzero((kept.mask > 0.5) & (near_truth == 0)) < outside / 3
    on_her = (everyone.mask > 0.5) & (cv2.dilate(her, np.ones((3, 3))) > 0)
    assert np.count_nonzero((kept.mask > 0.5) & on_her) == np.count_nonzero(on_her)


def test_people_touching_the_visitor_in_the_picture_are_left_off(pipeline):
    """The dancer's arm and dress overlap the seated audience behind her (one blob of the
    person model with her): the saved photo's cut-out keeps her (her hand-drawn truth;
    0.94 of it before the pose's own mask of her was asked, 0.93 now) and leaves off most
    of the audience (pixels more than 7 px off her truth: 8,400 before, 840 now; what is
    left touches her: a piece of the hay bale by her hair, a sliver by her hand)."""
    frame = cv2.imread(str(asset("devset/davis/dance-twirl/00033.jpg")))
    truth = cv2.imread(str(asset("devset/davis/dance-twirl/00033.png")),
                       cv2.IMREAD_GRAYSCALE) > 0
    analysis = pipeline.photo_analysis(frame)
    _, alpha = pipeline.cutout(frame, analysis, pipeline.photo_matte(frame, analysis))
    near_truth = cv2.dilate(truth.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert np.count_nonzero((alpha > 0.5) & ~near_truth) < 2000
    assert np.count_nonzero((alpha > 0.5) & truth) > 0.9 * np.count_nonzero(truth)


@pytest.mark.parametrize(("landmark", "kept"), [(None, False), ((180, 85), True),
                                                 ((120, 60), False)])
def test_a_part_touching_the_visitor_stays_when_it_holds_one_of_their_landmarks(landmark, kept):
    """A wide piece joined to the visitor's blob that the pose's own mask leaves out (drawn:
    a dancer's skirt, or someone sitting behind her): left off, unless one of the landmarks
    that keep a part theirs falls in it; one on the visitor's own body keeps nothing else."""
    mask = np.zeros((144, 256), np.float32)
    mask[20:130, 100:130] = 1.0  # the visitor, as the person model sees them
    mask[70:100, 130:200] = 1.0  # the piece joined to them
    body = np.zeros_like(mask)
    body[20:130, 100:130] = 1.0  # the pose's own mask of the visitor
    holding = None if landmark is None else np.array([landmark]) / [256, 144]
    found = touching(find_people(mask, 0.0), body, holding)
    assert found.mask[60:130, 105:125].min() > 0.5
    assert (found.mask[75:95, 160:195].min() > 0.5) == kept
    assert (found.allowed is None) == kept


def test_the_station_says_nobody_when_the_photo_finds_no_one(pipeline, tmp_path: Path,
                                                             station_log: list[str]):
    """The visitor half out of the frame at the shutter: the preview is sure, the photo's
    second look is not. The station says to step in, saves nothing, goes back to attract."""
    frame = window("intel_asl_again.mp4", 100)
    store = Store(tmp_path / "data")
    clock, camera = ManualClock(), HandCamera([frame])
    station = small_station(pipeline, camera, store, clock)
    try:
        with station:
            station.step()
            station.press()
            states = []
            for _ in range(3000):  # the photo's look runs on the worker, in real time
                clock.advance(1 / 30)
                camera.deliver()
                station.step()
                states.append(station.machine.state)
                if station.machine.state is State.NOBODY:
                    break
                time.sleep(0.005)  # while the photo is made the station analyses no frame
            assert State.CAPTURE in states and states[-1] is State.NOBODY
            assert station.captures == 0 and store.count() == 0
            for _ in range(round(7 * 30)):  # the message stays 6 s, then attract
                clock.advance(1 / 30)
                camera.deliver()
                station.step()
            assert station.machine.state is State.ATTRACT
    finally:
        store.close()
    assert station_log == ["shutter: nobody in the preview (no body in it); no photo taken"]
