"""The cut-out on real media: the evaluation set's held-out part, the shared photos, the
preview's flicker, the transparent PNG, and how the DAVIS set is cropped and split
(devtools/quality.py does the measuring, as for scripts/mask_quality.py)."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from booth.config import load_config
from booth.wiring import load_pipeline
from devtools.quality import (
    DAVIS,
    DAVIS_HELD_OUT,
    DAVIS_TUNE,
    WEBCAM,
    body_box,
    davis_crop,
    davis_frames,
    davis_view,
    flicker,
    interior_opacity,
    measure,
    summary,
)
from tests.conftest import ASSETS, ROOT, asset


@pytest.fixture(scope="module")
def quality():
    for name in ("people/reference_alpha/rembg_girl-1.png", "people/bgm_0001_back_plate.png",
                 "video/intel_asl_book.mp4", "video/intel_asl_again.mp4"):
        asset(name)
    rows = measure(ASSETS, sets=("issue8",))
    return rows, {name: s["booth"] for name, s in summary(rows).items()}


@pytest.mark.slow
def test_held_out_people_are_cut_out_closely_in_every_room(quality):
    rows, sets = quality
    held = [r for r in rows if r["set"] == "held-out"]
    assert all(r["booth"]["opaque"] > 0 for r in held)
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


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
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


def test_davis_split_is_fixed_disjoint_and_covers_every_sequence():
    assert DAVIS_TUNE == ("hike", "lucia", "rollerblade", "stroller", "swing", "tennis")
    assert DAVIS_HELD_OUT == ("breakdance-flare", "dance-jump", "dance-twirl", "hockey",
                              "kite-walk", "paragliding-launch")
    assert not set(DAVIS_TUNE) & set(DAVIS_HELD_OUT)
    asset(f"{DAVIS}/lucia/00000.jpg")
    on_disk = {p.name for p in (ASSETS / DAVIS).iterdir() if p.is_dir()}
    assert set(DAVIS_TUNE) | set(DAVIS_HELD_OUT) == on_disk
    # The complete sequences are measured every 5th frame, like the others as shared.
    assert [p.stem for p in davis_frames(ASSETS, "lucia")][:3] == ["00000", "00005", "00010"]
    assert len(davis_frames(ASSETS, "dance-twirl")) == 18
    assert len(davis_frames(ASSETS, "tennis")) == 14


def test_davis_crop_is_the_padded_person_at_16_9_inside_the_frame():
    # 200 px tall: 15 % more above and below, 260 x 462 px, centred on the box.
    assert davis_crop(854, 480, (400, 100, 460, 300)) == (199, 70, 661, 330)
    # A wide box sets the height by its width (400 x 1.3 wide, 292 tall); at the frame's
    # edge the crop moves inside.
    assert davis_crop(854, 480, (0, 200, 400, 300)) == (0, 104, 519, 396)
    # Never more than the whole frame.
    assert davis_crop(854, 480, (0, 0, 854, 480)) == (0, 0, 853, 480)


def test_davis_view_is_the_webcam_view_of_the_annotated_person():
    jpg = asset(f"{DAVIS}/kite-walk/00000.jpg")
    image = cv2.imread(str(jpg))
    truth = cv2.imread(str(jpg.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
    ys = np.nonzero(truth.any(axis=1))[0]
    x0, y0, x1, y1 = body_box(truth)
    assert y1 - y0 < 0.8 * (ys[-1] + 1 - ys[0])  # the kite's lines do not count as the body
    frame, view = davis_view(image, truth)
    assert frame.shape == (WEBCAM[1], WEBCAM[0], 3) and view.shape == frame.shape[:2]
    assert set(np.unique(view)) == {0.0, 1.0}
    cx0, cy0, cx1, cy1 = davis_crop(854, 480, (x0, y0, x1, y1))
    assert (cx1 - cx0) * 9 == pytest.approx((cy1 - cy0) * 16, abs=16)
    # The crop is that part of the frame, scaled; the person's box is 1/1.3 of its height.
    expected = cv2.resize(image[cy0:cy1, cx0:cx1], WEBCAM, interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(frame, expected)
    assert (y1 - y0) / (cy1 - cy0) == pytest.approx(1 / 1.3, abs=0.01)
    assert view.sum() == pytest.approx((truth[cy0:cy1, cx0:cx1] > 127).sum() * (
        WEBCAM[1] / (cy1 - cy0)) ** 2, rel=0.05)


def test_interior_opacity_counts_only_the_eroded_inside():
    truth = np.zeros((200, 100), np.float32)
    truth[50:150, 20:80] = 1  # 100 px tall: eroded by 2 px
    alpha = truth.copy()
    alpha[50:52, 20:80] = 0.5  # soft at the edge: allowed
    assert interior_opacity(alpha, truth) == 1.0
    alpha[100, 50] = 0.9
    assert interior_opacity(alpha, truth) == pytest.approx(1 - 1 / (96 * 56))
