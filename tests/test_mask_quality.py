"""The saved photo's cut-out against the reference mattes (scripts/mask_quality.py)."""

from __future__ import annotations

import importlib.util

import numpy as np

from tests.conftest import ASSETS, ROOT, asset


def _script():
    spec = importlib.util.spec_from_file_location("mask_quality",
                                                  ROOT / "scripts" / "mask_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_refined_cut_out_beats_the_raw_model_on_every_photo():
    asset("people/reference_alpha/rembg_girl-1.png")
    rows = _script().measure(ASSETS)
    assert len(rows) == 5
    assert np.mean([r["iou"] for r in rows]) >= 0.96
    assert np.mean([r["boundary"] for r in rows]) <= 0.10
    for r in rows:
        assert r["iou"] >= r["raw_iou"], r
        assert r["boundary"] <= r["raw_boundary"], r
