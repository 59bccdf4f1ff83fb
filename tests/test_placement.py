"""Placement geometry: pure functions on small arrays, no media needed."""

from __future__ import annotations

import numpy as np
import pytest

from booth.scene.definition import load_scene
from booth.vision.placement import Smoother, Transform, find_people, fit_to_stage

STAGE = load_scene("sol46").stage
ASPECT_PLATE = 1920 / 1412
ASPECT_FRAME = 16 / 9


def scene_point(t: Transform, u: float, v: float, mirror: bool = False) -> tuple[float, float]:
    """Where frame fraction (u, v) lands, as fractions of the plate."""
    if mirror:
        u = 1 - u
    x = t.k * u * ASPECT_FRAME + t.ox
    return x / ASPECT_PLATE, t.k * v + t.oy


def test_visible_feet_stand_on_the_ground_line_in_the_stage_centre():
    bbox = (0.45, 0.3, 0.55, 0.8)  # a small full figure, feet visible
    t = fit_to_stage(bbox, ASPECT_FRAME, ASPECT_PLATE, STAGE, mirror=False)
    x0, y0 = scene_point(t, bbox[0], bbox[1])
    x1, y1 = scene_point(t, bbox[2], bbox[3])
    assert y1 == pytest.approx(STAGE.ground)
    assert y0 >= STAGE.top - 1e-9
    assert (x0 + x1) / 2 == pytest.approx((STAGE.left + STAGE.right) / 2)
    assert STAGE.left - 1e-9 <= x0 < x1 <= STAGE.right + 1e-9


def test_a_visitor_cut_off_by_the_frame_is_cut_off_by_the_photo():
    bbox = (0.3, 0.2, 0.7, 1.0)  # head and shoulders, bottom at the frame's edge
    t = fit_to_stage(bbox, ASPECT_FRAME, ASPECT_PLATE, STAGE, mirror=False)
    _, bottom = scene_point(t, 0.5, 1.0)
    _, top = scene_point(t, 0.5, bbox[1])
    assert bottom == pytest.approx(STAGE.bottom)
    assert top >= STAGE.top - 1e-9


def test_a_group_shrinks_to_fit_the_stage_width():
    bbox = (0.02, 0.3, 0.98, 0.9)  # three people across the whole frame
    t = fit_to_stage(bbox, ASPECT_FRAME, ASPECT_PLATE, STAGE, mirror=False)
    x0, _ = scene_point(t, bbox[0], bbox[1])
    x1, y1 = scene_point(t, bbox[2], bbox[3])
    assert x0 == pytest.approx(STAGE.left)
    assert x1 == pytest.approx(STAGE.right)
    assert y1 == pytest.approx(STAGE.ground)


def test_mirror_swaps_left_and_right():
    bbox = (0.1, 0.3, 0.3, 0.9)  # someone on the camera's left
    plain = fit_to_stage(bbox, ASPECT_FRAME, ASPECT_PLATE, STAGE, mirror=False)
    mirrored = fit_to_stage(bbox, ASPECT_FRAME, ASPECT_PLATE, STAGE, mirror=True)
    # Their left hand (u=0.1) is on the photo's left without mirror, on the right with it.
    assert scene_point(plain, 0.1, 0.5)[0] < scene_point(plain, 0.3, 0.5)[0]
    assert scene_point(mirrored, 0.1, 0.5, True)[0] > scene_point(mirrored, 0.3, 0.5, True)[0]


def test_pixel_matrix_matches_the_fractional_transform():
    t = Transform(0.8, 0.1, 0.2)
    m = t.pixel_matrix(1280, 720, canvas_h=1412, mirror=True)
    x, y = m @ np.array([1280 * 0.25, 720 * 0.5, 1.0])
    fx, fy = scene_point(t, 0.25, 0.5, mirror=True)
    assert x == pytest.approx(fx * 1920, abs=1e-6)
    assert y == pytest.approx(fy * 1412, abs=1e-6)


def test_find_people_drops_small_blobs_and_keeps_everyone_else():
    mask = np.zeros((144, 256), np.float32)
    mask[40:144, 20:70] = 0.95  # person one, cut off at the bottom
    mask[30:144, 150:210] = 0.9  # person two
    mask[5:8, 240:243] = 1.0  # a speck of noise
    people = find_people(mask, min_fraction=0.01)
    assert people.bbox == pytest.approx((20 / 256, 30 / 144, 210 / 256, 1.0))
    assert people.mask[6, 241] == 0.0
    assert people.mask[100, 40] == pytest.approx(0.95)
    assert people.mask[100, 180] == pytest.approx(0.9)
    assert not find_people(np.zeros((144, 256), np.float32), 0.01).found


def test_smoother_snaps_first_then_eases_without_jumps():
    s = Smoother(time_constant=0.3)
    a, b = Transform(1.0, 0.0, 0.0), Transform(2.0, 1.0, -1.0)
    assert s.update(a, 0.0) == a
    previous = a
    for i in range(1, 61):  # 2 s at 30 fps
        current = s.update(b, i / 30)
        assert abs(current.ox - previous.ox) < 0.12  # no frame moves more than ~1/9 of the way
        previous = current
    assert current.k == pytest.approx(2.0, rel=0.01)
    assert current.ox == pytest.approx(1.0, abs=0.01)
    assert s.update(None, 3.0) == current  # nobody in view: hold still


def test_a_low_head_is_placed_at_a_standing_adults_scale():
    """A child or a wheelchair user, close to the camera, head low in the frame: the same
    scale as the standing adult beside them, cut off by the photo's bottom like them, head
    inside the stage, not magnified until it reaches the stage's top."""
    adult = (0.4, 0.15, 0.6, 1.0)
    child = (0.42, 0.55, 0.58, 1.0)
    a = fit_to_stage(adult, ASPECT_FRAME, ASPECT_PLATE, STAGE, mirror=False)
    c = fit_to_stage(child, ASPECT_FRAME, ASPECT_PLATE, STAGE, mirror=False)
    assert c.k == pytest.approx(a.k)
    assert scene_point(c, 0.5, 1.0)[1] == pytest.approx(STAGE.bottom)
    _, head = scene_point(c, 0.5, child[1])
    assert STAGE.top < head < STAGE.bottom
    x0, _ = scene_point(c, child[0], 0.5)
    x1, _ = scene_point(c, child[2], 0.5)
    assert STAGE.left - 1e-9 <= x0 < x1 <= STAGE.right + 1e-9
