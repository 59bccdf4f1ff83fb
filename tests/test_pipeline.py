"""The per-frame pipeline on real photos and the real plate: segment, place, composite."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from booth.bench import cover
from booth.vision.compositing import Matte, composite
from booth.vision.placement import Transform
from booth.wiring import load_pipeline
from tests.conftest import asset, plate_config

PEOPLE = ["skimage_astronaut.png", "rembg_girl-1.jpg", "rembg_girl-2.jpg", "rembg_girl-3.jpg",
          "p3m_p_a09f6d7a.jpg", "p3m_p_bd6af989.jpg", "bgm_0001_img.png"]


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(plate_config(), mirror=True)


def read(name: str) -> np.ndarray:
    return cv2.imread(str(asset(f"people/{name}")), cv2.IMREAD_COLOR)


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 8


@pytest.mark.parametrize("name", PEOPLE)
def test_every_shared_person_lands_in_the_stage_and_nowhere_else(pipeline, name):
    frame = read(name)
    analysis = pipeline.photo_analysis(frame)
    assert analysis.drawable, f"nobody found in {name}"
    final = pipeline.final(frame, analysis)
    plate = pipeline.plate
    h, w = plate.shape[:2]
    diff = changed(final, plate)
    x0, y0, x1, y1 = pipeline.stage_box(w, h)
    outside = diff.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any(), "visitor pixels outside the stage"
    for name_, box in pipeline.scene.keep_visible:
        bx0, by0, bx1, by1 = box.pixels(w, h)
        assert np.array_equal(final[by0:by1, bx0:bx1], plate[by0:by1, bx0:bx1]), name_
    assert diff.sum() > 0.03 * w * h  # and the person really is there, at a decent size


def test_keep_visible_regions_hold_even_when_placement_points_at_them(pipeline):
    """A transform that would put the visitor right over Ingenuity and the rover."""
    frame = read("rembg_girl-2.jpg")
    analysis = pipeline.photo_analysis(frame)
    plate = pipeline.plate
    h, w = plate.shape[:2]
    for target in (Transform(0.9, 0.45, 0.1), Transform(1.2, 0.7, 0.05)):
        shifted = type(analysis)(analysis.people, target)
        final = pipeline.final(frame, shifted)
        for name, box in pipeline.scene.keep_visible:
            bx0, by0, bx1, by1 = box.pixels(w, h)
            assert np.array_equal(final[by0:by1, bx0:bx1], plate[by0:by1, bx0:bx1]), name


def test_the_astronauts_face_is_opaque_and_the_corners_are_clear(pipeline):
    frame = read("skimage_astronaut.png")
    mask = pipeline.photo_analysis(frame).people.mask
    alpha = cv2.resize(mask, (512, 512))
    assert alpha[60:140, 190:250].min() > 0.5  # her face
    for corner in (alpha[:40, :40], alpha[:40, -40:]):  # her suit fills the bottom corners
        assert corner.max() < 0.1


def test_two_people_side_by_side_both_appear(pipeline):
    # A 16:9 camera frame with one visitor in each half.
    left = cover(read("rembg_girl-2.jpg"), 640, 720)
    right = cover(read("bgm_0001_img.png"), 640, 720)
    frame = np.hstack([left, right])
    analysis = pipeline.photo_analysis(frame)
    u0, _, u1, _ = analysis.people.bbox
    split = left.shape[1] / frame.shape[1]
    assert u0 < split - 0.15 and u1 > split + 0.15, "the box must span both people"
    final = pipeline.final(frame, analysis)
    diff = changed(final, pipeline.plate)
    # Two visitors: changed columns form two groups with a gap of unchanged plate between them.
    cols = diff.sum(axis=0) > 20
    runs = np.flatnonzero(np.diff(cols.astype(np.int8)) == 1)
    assert len(runs) >= 1 + (not cols[0]), "expected two separate figures"


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_the_saved_photo_matches_the_mirrored_preview(pipeline):
    frame = read("rembg_girl-3.jpg")
    analysis = pipeline.photo_analysis(frame)
    h, w = pipeline.plate.shape[:2]
    small = cv2.resize(pipeline.plate, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    preview = small.copy()
    pipeline.draw_preview(preview, frame, analysis)
    final = cv2.resize(pipeline.final(frame, analysis), (w // 2, h // 2),
                       interpolation=cv2.INTER_AREA)
    region = changed(preview, small)
    assert region.sum() > 10000
    error = np.abs(final.astype(np.int16) - preview.astype(np.int16))[region].mean()
    assert error < 12, f"final and preview differ by {error:.1f} levels"
    # Mirrored: the girl faces left in the photo, so her face ends up on the other side
    # compared with an unmirrored render of the same frame.
    plain = load_pipeline(plate_config(), mirror=False)
    unmirrored = plain.final(frame, plain.photo_analysis(frame))
    assert not np.array_equal(unmirrored, pipeline.final(frame, analysis))
    assert np.array_equal(
        changed(unmirrored, plain.plate).any(axis=0)[::-1].nonzero()[0].size > 0, True)


def test_the_preview_drawn_with_its_second_thread_is_the_same_picture(pipeline):
    # The live preview shares a frame's work with a second thread: the light's reach is
    # worked out there while this one cleans the edge's colours. The picture is the one a
    # single thread draws, pixel for pixel.
    frame = read("rembg_girl-3.jpg")
    analysis = pipeline.photo_analysis(frame)
    h, w = (side // 2 for side in pipeline.plate.shape[:2])
    small = cv2.resize(pipeline.plate, (w, h), interpolation=cv2.INTER_AREA)
    pictures = []
    with ThreadPoolExecutor(max_workers=1) as second:
        for helper in (None, second):
            canvas = small.copy()
            composite(canvas, frame, analysis.people,
                      Matte.from_confidence(analysis.people.mask, *frame.shape[1::-1]),
                      analysis.transform, mirror=pipeline.mirror,
                      stage_px=pipeline.stage_box(w, h), keep_px=pipeline.keep_boxes(w, h),
                      finish=pipeline.finish(analysis, w, h), helper=helper)
            pictures.append(canvas)
    assert changed(pictures[0], small).sum() > 10000  # the visitor, light wrap and all
    assert np.array_equal(*pictures)
