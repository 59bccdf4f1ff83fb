"""`booth bench`, short: the real command on the shared clip, its JSON report's fields; and a
custom segmentation model given by path, as an operator would configure one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.vision.segmentation import Segmenter, model_path
from tests.conftest import MODNET, ROOT, asset


@pytest.mark.slow
def test_bench_smoke_run_reports_every_field(tmp_path: Path):
    """20 frames (a smoke run: the figures in the README come from 300 and more)."""
    proc = subprocess.run(
        [sys.executable, "-m", "booth", "bench", "--source",
         str(asset("video/intel_asl_book.mp4")), "--frames", "20", "--json"],
        capture_output=True, text=True, timeout=240,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["frames"] == 20 and report["input"] == "1280x720"
    assert report["display"] == "1280x720" and report["model"] == "landscape"
    # The capture times include the saved photo's matting model when it is installed.
    assert report["matting_model"] == ("MODNet" if MODNET.is_file() else "none")
    assert set(report["stages"]) == {"read", "segment", "place", "composite", "ui", "display"}
    for stage in report["stages"].values():
        assert 0 <= stage["median_ms"] <= stage["p95_ms"]
    assert report["frame_ms_median"] > 0 and report["fps"] > 0
    assert report["frame_cpu_ms_median"] > 0  # the work of a frame, on all threads
    assert report["frame_ms_median"] >= report["stages"]["segment"]["median_ms"]
    assert report["capture_to_qr_ms"] > 0 and report["reader_thread_ms"] > 0
    assert {"temporal", "colour", "light_wrap", "shadow", "edge_colours",
            "refine (per capture)"} <= set(report["effect_cost_ms"])
    assert 100 < report["peak_rss_mb"] < 2000
    assert "cores" in report["machine"]


def test_custom_tflite_model_path_is_loaded_and_segments(tmp_path: Path):
    """The shipped landscape model copied to a path of the operator's: loaded from there, it
    finds the person as the built-in name does."""
    custom = tmp_path / "models" / "my selfie model.tflite"
    custom.parent.mkdir()
    shutil.copy(model_path("landscape"), custom)
    assert model_path(str(custom)) == custom
    photo = cv2.imread(str(asset("people/rembg_girl-2.jpg")))
    small = cv2.resize(photo, (256, 144), interpolation=cv2.INTER_AREA)
    mask = Segmenter(str(custom)).segment(small)
    builtin = Segmenter("landscape").segment(small)
    assert mask.shape == (144, 256) and mask.dtype == np.float32
    assert np.abs(mask - builtin).max() < 1e-4
    reference = cv2.imread(str(asset("people/reference_alpha/rembg_girl-2.png")),
                           cv2.IMREAD_GRAYSCALE)
    reference = cv2.resize(reference, (256, 144), interpolation=cv2.INTER_AREA) > 127
    person = mask > 0.5
    assert (person & reference).sum() / (person | reference).sum() > 0.8  # IoU
