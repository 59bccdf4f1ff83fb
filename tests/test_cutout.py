"""The cut-out's edge in the pictures visitors see: the room's colour stays out, the edge of
the region the compositor works on never shows, and only a clear visitor is worth a photo."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from booth.bench import cover
from booth.vision.compositing import Matte, composite
from booth.vision.placement import People, Transform, find_people
from booth.wiring import load_pipeline
from tests.conftest import asset, plate_config

WALL = (232, 236, 238)


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(plate_config(), mirror=True)


def video_frame(name: str, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(asset(f"video/{name}")))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return cover(frame, 1280, 720)


def on_wall(name: str, opacity: float = 1.0, blur: int = 0) -> np.ndarray:
    """A shared person over a bright plain wall at webcam size, through their reference
    matte; optionally faded and smeared sideways (a hand moving fast near the lens)."""
    photo = cv2.imread(str(asset(f"people/{name}.jpg")))
    alpha = cv2.imread(str(asset(f"people/reference_alpha/{name}.png")),
                       cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 * opacity
    photo, alpha = cover(photo, 1280, 720), cover(alpha, 1280, 720)
    if blur:
        kernel = np.full((1, blur), 1.0 / blur, np.float32)
        photo, alpha = cv2.filter2D(photo, -1, kernel), cv2.filter2D(alpha, -1, kernel)
    a = alpha[:, :, None]
    return (photo * a + np.float32(WALL) * (1 - a) + 0.5).astype(np.uint8)


def test_the_preview_keeps_the_pale_wall_out_of_the_edge(pipeline):
    # The yellow hoodie in front of a pale office wall: at her soft edge the preview used to
    # blend the wall into Mars. With her own colours estimated there, that band is darker.
    frame = video_frame("intel_asl_book.mp4", 50)
    analysis = pipeline.photo_analysis(frame)
    canvas_shape = (720, 980, 3)
    plain = dataclasses.replace(pipeline.effects, edge_colours=0)
    bands = []
    for effects in (plain, pipeline.effects):
        pipeline.effects = effects
        canvas = cv2.resize(pipeline.plate, canvas_shape[1::-1], interpolation=cv2.INTER_AREA)
        before = canvas.copy()
        assert pipeline.draw_preview(canvas, frame, analysis) is not None
        bands.append((canvas, before))
    on, (off, before) = bands[1][0], bands[0]
    changed = np.abs(on.astype(int) - off.astype(int)).max(axis=2) > 0
    assert changed.sum() > 500  # the edge, and only a band of it
    assert changed.mean() < 0.1
    lightness = [cv2.cvtColor(c, cv2.COLOR_BGR2Lab)[:, :, 0][changed].mean() for c in (off, on)]
    assert lightness[1] < lightness[0] - 3


def test_the_edge_of_the_worked_region_never_shows():
    # A matte that is solid far beyond the people's box (a ghostly hand, a mistaken table):
    # the region the compositor works on is the box plus a margin, and the cut-out must fade
    # out inside it, never stop in a straight line.
    frame = np.full((720, 1280, 3), 200, np.uint8)
    canvas = np.zeros((720, 1000, 3), np.uint8)
    mask = np.zeros((144, 256), np.float32)
    mask[40:100, 100:150] = 1.0
    people = People(mask, (100 / 256, 40 / 144, 150 / 256, 100 / 144))
    everywhere = Matte.from_alpha(np.ones((720, 1280), np.float32), (0, 0, 1280, 720))
    drawn = composite(canvas, frame, people, everywhere, Transform(1.0, 0.2, 0.0),
                      mirror=False, stage_px=(0, 0, 1000, 720), keep_px=[])
    assert drawn is not None
    alpha = drawn.alpha
    for edge in (alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]):
        assert edge.max() < 0.2
    steps = max(np.abs(np.diff(alpha, axis=0)).max(), np.abs(np.diff(alpha, axis=1)).max())
    assert steps < 0.2  # a ramp, not a line
    drawn = canvas.max(axis=2) > 0
    rows, cols = np.nonzero(drawn)
    assert canvas[rows, cols].min() < canvas.max()  # the fade shows as a gradient


def test_only_a_clear_visitor_is_worth_a_photo(pipeline):
    visitor = video_frame("intel_asl_again.mp4", 30)
    assert pipeline.photo_analysis(visitor).people.confident
    assert pipeline.photo_analysis(on_wall("rembg_girl-3")).people.confident
    empty = np.full((720, 1280, 3), WALL, np.uint8)
    assert not pipeline.photo_analysis(empty).people.confident
    for name, opacity, blur in (("rembg_girl-2", 0.25, 61), ("p3m_p_a09f6d7a", 0.5, 121)):
        # The shutter's check is the preview's: the photo's second look finds no body at all.
        ghost = pipeline.preview_analysis(on_wall(name, opacity, blur), 0.0).people
        pipeline.forget()
        assert ghost.found and not ghost.confident  # seen, but only as a doubt
    far = cv2.resize(on_wall("rembg_girl-3"), (160, 90), interpolation=cv2.INTER_AREA)
    crowd_far_away = np.full((720, 1280, 3), WALL, np.uint8)
    crowd_far_away[600:690, 500:660] = far
    assert not pipeline.photo_analysis(crowd_far_away).people.confident


def test_a_clean_mask_is_confident_and_a_doubtful_one_is_not():
    solid = np.zeros((144, 256), np.float32)
    solid[20:140, 90:170] = 0.97
    assert find_people(solid, 0.01).confident
    doubtful = solid * 0.7  # found (above 0.5) but nowhere sure
    assert find_people(doubtful, 0.01).found and not find_people(doubtful, 0.01).confident
