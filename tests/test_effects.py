"""The effects that make a visitor look like they stand on Mars, one by one, on real media."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.errors import BoothError
from booth.scene.definition import Effects, load_scene
from booth.station.photo import band_height, caption_band
from booth.vision.compositing import blend, split
from booth.vision.effects import (
    colour_lut,
    colour_stats,
    contact_shadow,
    light_reach,
    motion,
    recolour,
    smooth_mask,
    wrap_amount,
)
from booth.wiring import load_pipeline
from tests.conftest import asset, plate_config


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(plate_config(), mirror=False)


def square_frames(x: int) -> tuple[np.ndarray, np.ndarray]:
    """A grey frame and its person mask, with a bright square at column x."""
    frame = np.full((144, 256), 40, np.uint8)
    frame[40:100, x:x + 40] = 200
    mask = np.zeros((144, 256), np.float32)
    mask[40:100, x:x + 40] = 1.0
    return frame, mask


def test_temporal_smoothing_steadies_still_edges_and_leaves_no_trail():
    # A visitor jumps 60 px between frames: where they were must clear at once.
    f0, m0 = square_frames(40)
    f1, m1 = square_frames(100)
    smoothed = smooth_mask(m0, m1, motion(f0, f1), weight=0.6)
    assert smoothed[50:90, 45:75].max() < 0.05  # old place: no ghost
    assert smoothed[50:90, 105:135].min() > 0.95  # new place: fully there
    # Standing still with a flickering mask: the flicker is damped.
    still, _ = square_frames(100)
    flicker = m1.copy()
    flicker[40:100, 138:140] = 0.0  # the model drops a sliver of the edge for one frame
    steady = smooth_mask(m1, flicker, motion(still, still), weight=0.6)
    assert steady[60, 138] == pytest.approx(0.6)
    assert smooth_mask(None, flicker, None, 0.6) is flicker  # first frame: as it is


def test_colour_moves_part_of_the_way_to_the_plate_and_skin_stays_skin(pipeline):
    photo = cv2.imread(str(asset("people/skimage_astronaut.png")))
    face = photo[70:140, 195:250]  # her face
    lut = colour_lut(colour_stats(face), pipeline.scene_colour, 0.35)
    shifted = recolour(face, lut)  # a view into the photo, as the placement passes it
    assert np.array_equal(shifted, cv2.LUT(face, lut))  # plane by plane, the same lookup
    before, after = face.reshape(-1, 3).mean(0), shifted.reshape(-1, 3).mean(0)
    scene_mean = pipeline.scene_colour[0]
    # Each channel's mean moved toward the plate's, but well short of it.
    for c in range(3):
        if abs(scene_mean[c] - before[c]) > 5:
            moved = (after[c] - before[c]) / (scene_mean[c] - before[c])
            assert 0.05 < moved < 0.6, (c, moved)
    # Skin stays in the skin-tone region of YCrCb, pixel for pixel (almost).
    ycrcb = cv2.cvtColor(shifted, cv2.COLOR_BGR2YCrCb).reshape(-1, 3)
    skin = (ycrcb[:, 1] >= 133) & (ycrcb[:, 1] <= 180) & (ycrcb[:, 2] >= 77) & (ycrcb[:, 2] <= 135)
    assert skin.mean() > 0.9
    assert colour_lut(colour_stats(face), pipeline.scene_colour, 0.0) is None


def test_light_wrap_touches_only_the_edge():
    fg = np.full((100, 100, 3), 30, np.uint8)
    glow = np.full((100, 100, 3), 220, np.uint8)
    alpha = np.zeros((100, 100), np.float32)
    alpha[:, 50:] = 1.0
    out = np.zeros_like(fg)
    reach = light_reach(alpha, 6)
    blend(out, fg, alpha, *split(alpha, reach), (glow, reach, 0.5))
    assert out[50, 51, 0] > 60  # just inside the edge: lit by the plate
    assert out[50, 90, 0] == 30  # deep inside: untouched
    assert out[50, 40, 0] == 0  # outside: the background


def test_blend_of_only_the_mixing_pixels_is_the_blend_of_the_whole_region():
    """One pass over the pixels that mix (edge and light wrap) gives what two whole-region
    blends give (the light wrap into fg, then fg over bg), within one level of rounding."""
    photo = cv2.imread(str(asset("people/rembg_girl-1.jpg")))
    h, w = photo.shape[:2]
    fg, glow = photo[:, : w // 2].copy(), cv2.blur(photo[:, w // 2: 2 * (w // 2)], (15, 15))
    bg = np.ascontiguousarray(photo[:, w // 2: 2 * (w // 2)][::-1])
    yy, xx = np.mgrid[0:h, 0:w // 2]
    alpha = np.clip(1.0 - np.hypot(yy - h / 2, xx - w / 4) / (0.3 * h), 0, 0.05) / 0.05
    alpha = alpha.astype(np.float32)
    reach = light_reach(alpha, 8)
    wrap = wrap_amount(alpha, reach, 0.35)
    lit = cv2.blendLinear(glow, fg, wrap, 1.0 - wrap)
    expected = cv2.blendLinear(lit, bg, alpha, 1.0 - alpha)
    canvas = np.zeros((h, w // 2 + 10, 3), np.uint8)
    canvas[:, 10:] = bg
    glows = np.zeros_like(canvas)
    glows[:, 10:] = glow
    # Into a view, as into the canvas, and with the glow a view of a larger picture too.
    blend(canvas[:, 10:], fg, alpha, *split(alpha, reach), (glows[:, 10:], reach, 0.35))
    diff = np.abs(canvas[:, 10:].astype(int) - expected)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    assert (alpha == 1).mean() > 0.2 and (alpha == 0).mean() > 0.2  # all three kinds there
    mixing = ((alpha > 0) & ((alpha < 1) | (wrap > 0))).mean()
    assert 0.01 < mixing < 0.12  # few enough to be gathered, as in the live preview


def test_contact_shadow_darkens_the_ground_under_the_feet_inside_the_stage():
    canvas = np.full((400, 600, 3), 200, np.uint8)
    contact_shadow(canvas, 100, 200, ground_y=300, height=20, darkness=0.45,
                   clip=(0, 0, 250, 400))
    assert canvas[300, 150, 0] < 200 * 0.8  # right under the feet
    assert canvas[300, 240, 0] == 200 or canvas[300, 240, 0] > 190  # fades out sideways
    assert (canvas[:, 250:] == 200).all()  # nothing outside the stage
    assert (canvas[:200] == 200).all()  # nothing above the ground


def test_shadow_only_where_the_camera_sees_feet(pipeline):
    sitting = cv2.imread(str(asset("people/p3m_p_a09f6d7a.jpg")))  # on the ground, feet in view
    close = cv2.imread(str(asset("people/rembg_girl-3.jpg")))  # cut off by the frame
    effects = pipeline.effects
    for frame, expect in ((sitting, True), (close, False)):
        analysis = pipeline.photo_analysis(frame)
        assert analysis.people.feet_visible is expect
        matte = pipeline.photo_matte(frame, analysis)
        with_shadow = pipeline.final(frame, analysis, matte)
        pipeline.effects = dataclasses.replace(effects, shadow=0.0)
        try:
            without = pipeline.final(frame, analysis, matte)
        finally:
            pipeline.effects = effects
        darker = (with_shadow.astype(int) < without.astype(int) - 10).any(axis=2)
        if expect:
            rows = np.flatnonzero(darker.any(axis=1))
            ground = pipeline.scene.stage.ground * pipeline.plate.shape[0]
            assert darker.sum() > 500 and abs(rows.mean() - ground) < 40  # on the ground line
        else:
            assert darker.sum() == 0


def test_every_effect_switches_off_in_the_scene_file(tmp_path: Path, pipeline):
    source = (Path(__file__).resolve().parents[1] / "overlays/sol46/scene.toml").read_text()
    off = source.split("[effects]")[0] + (
        "[effects]\nrefine = false\nedge_colours = 0\ntemporal = 0\ncolour = 0\nlight_wrap = 0\n"
        "shadow = 0\n")
    path = tmp_path / "scene.toml"
    path.write_text(off)
    cfg = plate_config()
    cfg.scene.name = str(path)
    plain = load_pipeline(cfg, mirror=False)
    assert plain.effects == Effects(refine=False, edge_colours=0, temporal=0, colour=0,
                                    light_wrap=0, shadow=0)
    assert plain.refiner is None
    frame = cv2.imread(str(asset("people/rembg_girl-2.jpg")))
    analysis = plain.photo_analysis(frame)
    assert analysis.colour is None
    # With every effect off, a pixel deep inside the person is the warped frame's pixel.
    final = plain.final(frame, analysis)
    styled = pipeline.final(frame, pipeline.photo_analysis(frame))
    assert not np.array_equal(final, styled)


def test_bad_effect_settings_are_refused(tmp_path: Path):
    source = (Path(__file__).resolve().parents[1] / "overlays/sol46/scene.toml").read_text()
    for old, bad, message in (("colour = 0.35", "colour = 2", "effects.colour"),
                              ("colour = 0.35", "sparkle = 1", "unknown effect"),
                              ("refine = true", 'refine = "yes"', "effects.refine")):
        path = tmp_path / "scene.toml"
        path.write_text(source.replace(old, bad))
        with pytest.raises(BoothError, match=message):
            load_scene(str(path))


@pytest.mark.parametrize("plate_height", [400, 1412, 2824])
def test_caption_band_scales_with_the_plate(plate_height):
    scene = load_scene("sol46")
    width = round(plate_height * 1920 / 1412)
    band = caption_band(width, band_height(plate_height), scene, __import__("datetime")
                        .datetime(2026, 11, 25))
    assert band.shape[:2] == (band_height(plate_height), width)
    rule = max(1, round(band.shape[0] * 0.045))  # the accent line along the top
    text = band[rule + 1:].max(axis=2) > 200  # light text on the dark band
    rows = np.flatnonzero(text.any(axis=1))
    # The lettering spans the same share of the band's height at every size.
    assert 0.35 < (rows[-1] - rows[0]) / band.shape[0] < 0.8
    accent = band[0, width // 2]
    assert accent[2] > 180 and accent[0] < 120  # the butterscotch rule along the top


def test_effects_are_dataclass_defaults_of_the_scene():
    scene = load_scene("sol46")
    assert dataclasses.asdict(scene.effects)["colour"] == pytest.approx(0.35)
