"""The cut-out on real media: the evaluation set's held-out part, the shared photos, the
preview's flicker, and the transparent PNG (devtools/quality.py does the measuring, as for
scripts/mask_quality.py)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from booth.config import load_config
from booth.wiring import load_pipeline
from devtools.quality import flicker, measure, summary
from tests.conftest import ASSETS, ROOT, asset


@pytest.fixture(scope="module")
def quality():
    for name in ("people/reference_alpha/rembg_girl-1.png", "people/bgm_0001_back_plate.png",
                 "video/intel_asl_book.mp4", "video/intel_asl_again.mp4"):
        asset(name)
    rows = measure(ASSETS)
    return rows, summary(rows)


@pytest.mark.slow
def test_held_out_people_are_cut_out_closely_in_every_room(quality):
    rows, sets = quality
    held = [r for r in rows if r["set"] == "held-out"]
    assert {r["room"] for r in held} == {"wall", "backplate", "office-book", "office-again",
                                         "dim"}
    # Measured 0.976 / 0.959 / 0.070 / 4.96 (README); the raw model: 0.924 / 0.850 /
    # 0.148 / 9.41; the cut before this change: 0.973 / 0.928 / 0.079 / 5.95.
    assert sets["held-out"]["iou"] >= 0.95
    assert sets["held-out"]["worst_iou"] >= 0.90
    assert sets["held-out"]["boundary"] <= 0.10
    assert sets["held-out"]["rim"] <= 5.0


@pytest.mark.slow
def test_shared_photos_keep_their_cut_out_and_lose_the_rim(quality):
    rows, sets = quality
    assert len([r for r in rows if r["set"] == "shared"]) == 5
    # Before this change: IoU 0.968, boundary 0.079, rim 7.00 (README).
    assert sets["shared"]["iou"] >= 0.97
    assert sets["shared"]["boundary"] <= 0.08
    assert sets["shared"]["rim"] <= 5.5


def test_the_preview_edge_shimmers_at_most_half_as_much_as_the_raw_model(plate_path):
    pipeline = load_pipeline(load_config(None), mirror=False)
    raw, preview = flicker(pipeline, asset("video/intel_asl_again.mp4"))
    assert raw > 0 and preview <= 0.5 * raw


def test_cutout_png_is_the_person_with_their_own_colours(tmp_path, plate_path):
    photo = asset("people/rembg_girl-2.jpg")
    cut, mask = tmp_path / "cut.png", tmp_path / "mask.png"
    proc = subprocess.run([sys.executable, "-m", "booth", "compose", str(photo), "-o",
                           str(tmp_path / "out.jpg"), "--cutout-out", str(cut), "--mask-out",
                           str(mask)], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    rgba = cv2.imread(str(cut), cv2.IMREAD_UNCHANGED)
    frame = cv2.imread(str(photo))
    assert rgba.shape == (*frame.shape[:2], 4)
    alpha = rgba[:, :, 3]
    assert alpha.min() == 0 and alpha.max() == 255
    assert np.array_equal(alpha, cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE))
    assert 0.05 < (alpha > 127).mean() < 0.6  # a person, not the frame nor a speck
    solid = alpha == 255  # straight alpha: where the person is solid, their pixels as shot
    assert np.abs(rgba[:, :, :3][solid].astype(int) - frame[solid]).max() <= 1
    soft = (alpha > 20) & (alpha < 235)
    assert soft.sum() > 200
    # At the soft edge the colours are the person's, not the pale sky behind her: darker.
    assert rgba[:, :, :3][soft].mean() < frame[soft].mean() - 5
