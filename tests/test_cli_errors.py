"""The `booth` command as an operator meets it: real subprocesses of `python -m booth`.

Every mistake must end with a non-zero exit and exactly one line on stderr that starts with
"booth: error:", says what is wrong and how to fix it; no traceback, no stray library noise,
and no output file left behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import PLATE, ROOT, asset

ASTRONAUT = "people/skimage_astronaut.png"


def booth(*args: str | Path, cwd: Path, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    """Run `python -m booth` with the test's environment (BOOTH_PLATE, BOOTH_CACHE_DIR)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "booth", *map(str, args)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=120)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line, after checking the failure has the promised shape."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    line = lines[0]
    assert line.startswith("booth: error: ") and len(line) > len("booth: error: "), line
    assert result.stdout == ""
    return line


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty folder for -o; failures must leave it empty (no output, no temp file)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def compose_fails(photo: Path, out_dir: Path, cwd: Path,
                  env: dict[str, str] | None = None) -> str:
    result = booth("compose", photo, "-o", out_dir / "out.jpg", "--mask-out",
                   out_dir / "mask.png", cwd=cwd, env=env)
    line = error_line(result)
    assert list(out_dir.iterdir()) == []
    return line


# --- compose -------------------------------------------------------------------------------

def test_compose_a_missing_photo(tmp_path, out_dir):
    line = compose_fails(tmp_path / "nope.jpg", out_dir, tmp_path)
    assert line == (f"booth: error: cannot read {tmp_path / 'nope.jpg'}: it does not exist; "
                    "give a JPEG or PNG photo")


def test_compose_a_corrupt_image(tmp_path, out_dir):
    photo = tmp_path / "x.jpg"
    photo.write_bytes(np.random.default_rng(7).bytes(20_000))
    line = compose_fails(photo, out_dir, tmp_path)
    assert line == (f"booth: error: cannot read {photo}: it is not an image; give a JPEG or "
                    "PNG photo")


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_compose_a_photo_without_a_person(tmp_path, out_dir, plate_path):
    plate = cv2.imread(str(plate_path))
    sky = tmp_path / "sky.jpg"
    assert cv2.imwrite(str(sky), plate[:300, :500])  # the sky and rim of Jezero, nobody in it
    line = compose_fails(sky, out_dir, tmp_path)
    assert line == (f"booth: error: no person found in {sky}; use a photo in which someone is "
                    "clearly visible")


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
@pytest.mark.parametrize("relative", ["people/bgm_0001_back_plate.png", PLATE])
def test_compose_of_an_empty_room_or_of_the_plate_itself(tmp_path, out_dir, relative):
    """Nobody in them (the plate once made a photo of a piece of the rover): one line, as
    for any photo without a person; a broken file says "cannot read" instead (above)."""
    photo = asset(relative)
    line = compose_fails(photo, out_dir, tmp_path)
    assert line == (f"booth: error: no person found in {photo}; use a photo in which someone "
                    "is clearly visible")


def test_compose_with_a_corrupt_plate(tmp_path, out_dir):
    bad_plate = tmp_path / "PIA24542_large.jpg"
    bad_plate.write_bytes(np.random.default_rng(8).bytes(30_000))
    line = compose_fails(asset(ASTRONAUT), out_dir, tmp_path, env={"BOOTH_PLATE": str(bad_plate)})
    assert line.startswith(f"booth: error: plate {bad_plate} (from BOOTH_PLATE) is not "
                           "PIA24542_large.jpg: its SHA-256 is ")
    assert line.endswith("set BOOTH_PLATE=/path/to/PIA24542_large.jpg (or [scene] plate in "
                         "the config)")


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_compose_to_an_unwritable_place(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = booth("compose", asset(ASTRONAUT), "-o", blocker / "out.jpg", cwd=tmp_path)
    line = error_line(result)
    assert line == (f"booth: error: cannot write {blocker / 'out.jpg'}: {blocker} is a file, "
                    "not a folder; give -o (and --mask-out, --cutout-out) a path in a folder you "
                    "can write to")
    assert blocker.read_text() == "not a folder"


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_compose_keeps_no_output_when_the_mask_cannot_be_written(tmp_path):
    (tmp_path / "taken.png").mkdir()  # a folder where the mask should go
    out = tmp_path / "out.jpg"
    result = booth("compose", asset(ASTRONAUT), "-o", out, "--mask-out", tmp_path / "taken.png",
                   cwd=tmp_path)
    line = error_line(result)
    assert line == (f"booth: error: cannot write {tmp_path / 'taken.png'}: Is a directory; "
                    "give -o (and --mask-out, --cutout-out) a path in a folder you can write to")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.png"]  # no out.jpg, no temp
    assert list((tmp_path / "taken.png").iterdir()) == []


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_compose_the_astronaut(tmp_path):
    photo = asset(ASTRONAUT)
    out, mask_out = tmp_path / "out.jpg", tmp_path / "mask.png"
    result = booth("compose", photo, "-o", out, "--mask-out", mask_out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not even MediaPipe's or libpng's start-up chatter
    assert result.stdout == f"{out}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "out.jpg"]

    data = out.read_bytes()
    assert data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9"
    composite = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    height, width = composite.shape[:2]
    assert width == 1920
    assert height > 1412  # the plate plus the caption band

    assert mask_out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mask = cv2.imread(str(mask_out), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (512, 512) and mask.dtype == np.uint8  # the photo's size
    # Her face spans about x 0.36..0.53, y 0.15..0.34 of the photo.
    face = mask[int(0.20 * 512):int(0.30 * 512), int(0.38 * 512):int(0.50 * 512)]
    assert face.min() > 127
    # The room behind her is clear; her suit and helmet run off the bottom edge.
    for corner in (mask[:32, :32], mask[:32, -32:]):
        assert corner.max() < 25


# --- run -----------------------------------------------------------------------------------

@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_run_an_unreadable_video(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(np.random.default_rng(9).bytes(50_000))
    result = booth("run", "--headless", "--source", video, "--data-dir", tmp_path / "data",
                   cwd=tmp_path)
    line = error_line(result)
    assert line == "booth: error: cannot read video clip.mp4: not a video OpenCV can decode"


def test_run_with_an_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = blocker / "data"
    result = booth("run", "--headless", "--source", asset(ASTRONAUT), "--data-dir", data,
                   "--max-captures", "1", cwd=tmp_path)
    line = error_line(result)
    assert line == (f"booth: error: data dir {data} is not writable (Not a directory); "
                    "pass --data-dir with a folder you can write to")
    assert blocker.read_text() == "not a folder"


def test_run_with_a_bad_config_value(tmp_path):
    config = tmp_path / "booth.toml"
    config.write_text("[camera]\nfps = 0\n")
    result = booth("run", "--headless", "--config", config, "--source", asset(ASTRONAUT),
                   "--data-dir", tmp_path / "data", cwd=tmp_path)
    line = error_line(result)
    assert line == "booth: error: config: camera.fps = 0 is out of range; use 1 to 120"
    assert not (tmp_path / "data").exists()


def test_run_with_a_negative_auto_capture(tmp_path):
    result = booth("run", "--headless", "--auto-capture", "-1", "--source", asset(ASTRONAUT),
                   "--data-dir", tmp_path / "data", cwd=tmp_path)
    line = error_line(result)
    assert line == "booth: error: --auto-capture must be greater than 0, got -1"
    assert not (tmp_path / "data").exists()
