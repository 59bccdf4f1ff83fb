"""A still scene costs little: the live preview asks the model again only when the picture
changed since it last looked (or half a second has passed), and a new frame of the same empty
room is not drawn again. Real photos with a webcam's noise, on an injected clock."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.bench import cover
from booth.clock import ManualClock
from booth.station.loop import PhotoMaker, Station
from booth.station.machine import Machine
from booth.station.outputs.store import StoreOutput
from booth.station.renderer import Renderer
from booth.station.screens import Screens
from booth.store import Store
from booth.wiring import load_pipeline
from tests.conftest import asset, plate_config
from tests.test_station import HandCamera, counting


def webcam_frames(name: str, count: int, sigma: float, seed: int = 1) -> list[np.ndarray]:
    """A shared photo as a 1280x720 Motion JPEG webcam delivers it standing still: `count`
    frames, each with its own sensor noise (Gaussian, `sigma` levels), JPEG-compressed."""
    image = cover(cv2.imread(str(asset(f"people/{name}")), cv2.IMREAD_COLOR), 1280, 720)
    rng = np.random.default_rng(seed)
    return [cv2.imdecode(cv2.imencode(".jpg", np.clip(
        image + rng.normal(0.0, sigma, image.shape), 0, 255).astype(np.uint8))[1],
        cv2.IMREAD_COLOR) for _ in range(count)]


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(plate_config(), mirror=True)


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_a_still_visitor_is_segmented_again_only_when_they_move_or_half_a_second_passes(
        pipeline):
    model = counting(pipeline.segmenter, "segment")
    pipeline.forget()
    frames = webcam_frames("bgm_0001_img.png", 16, sigma=2.0)
    first = pipeline.preview_analysis(frames[0], 0.0)
    assert first.drawable and model[0] == 1
    for i in range(1, 15):  # within half a second, only noise changes: the model's look stays
        analysis = pipeline.preview_analysis(frames[i], i / 30)
        assert analysis.people is first.people and analysis.drawable
    assert model[0] == 1
    pipeline.preview_analysis(frames[15], 0.5)  # half a second on, it looks again
    assert model[0] == 2
    # The visitor steps 40 pixels aside: the very next frame is looked at, and they are
    # found where they now stand.
    moved = np.roll(frames[1], 40, axis=1)
    analysis = pipeline.preview_analysis(moved, 0.5 + 1 / 30)
    assert model[0] == 3
    assert analysis.people.bbox[0] == pytest.approx(first.people.bbox[0] + 40 / 1280, abs=0.01)
    # A still (the photo) is always looked at afresh.
    pipeline.photo_analysis(frames[2])
    pipeline.photo_analysis(frames[2])
    assert model[0] == 5


def test_a_noisy_camera_is_looked_at_every_frame(pipeline):
    """Where a camera's noise is far above the threshold (the heavy grain of a dim room at
    full gain), every frame goes to the model as before: nothing is saved, nothing missed."""
    model = counting(pipeline.segmenter, "segment")
    pipeline.forget()
    for i, frame in enumerate(webcam_frames("bgm_0001_img.png", 6, sigma=16.0)):
        pipeline.preview_analysis(frame, i / 30)
    assert model[0] == 6


@pytest.mark.slow
def test_an_empty_room_is_drawn_once_and_a_visitor_stepping_in_is_drawn_at_once(
        tmp_path: Path, pipeline):
    """The station stepped at 30 fps on an injected clock, its camera showing an empty room
    with a webcam's noise: the screen is drawn once and the model looks twice a second; the
    first frame with a visitor in it is looked at and drawn on that very step."""
    pipeline.forget()
    model = counting(pipeline.segmenter, "segment")
    renders = counting(pipeline, "draw_preview")
    clock = ManualClock()
    camera = HandCamera(webcam_frames("bgm_0001_back_plate.png", 30, sigma=2.0), clock)
    camera.start()
    store = Store(tmp_path / "data")
    screens = Screens(640, 360, pipeline.plate, pipeline.scene, countdown=3)
    renderer = Renderer(pipeline, screens)
    station = Station(camera, renderer,
                      PhotoMaker(pipeline, screens, [StoreOutput(store, "http://x")],
                                 retention_hours=1, clock=clock),
                      Machine(3, 30), clock=clock, out=io.StringIO())
    try:
        with station:
            empty = station.step().copy()
            assert not station.analysis.people.found
            changed = []
            for _ in range(90):  # 3 s of an empty room
                clock.advance(1 / 30)
                camera.deliver()
                assert np.array_equal(station.step(), empty)
                changed.append(station.changed)
            assert not any(changed), "the same empty room is not drawn again"
            assert renders[0] == 1 and 6 <= model[0] <= 8  # 1 + one look every 0.5 s
            looks = model[0]
            camera.frames = webcam_frames("bgm_0001_img.png", 30, sigma=2.0, seed=2)
            clock.advance(1 / 30)
            camera.deliver()
            screen = station.step()
            assert model[0] == looks + 1 and station.analysis.drawable and renders[0] == 2
            assert np.abs(screen.astype(int) - empty.astype(int)).max() > 100
    finally:
        store.close()
