"""`booth screens`: every station screen in every language as PNG files, run as a museum runs
it (a real `python -m booth screens` process), and its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.station.showcase import NAMES
from tests.conftest import PLATE, ROOT, asset

WIFI = '[server]\nwifi_ssid = "Mars Museum Guests"\nwifi_password = "perseverance46"\n'


def screens(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "booth", "screens", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))


def pngs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: cv2.imread(str(p), cv2.IMREAD_COLOR) for p in sorted(folder.glob("*.png"))}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict[str, np.ndarray]]:
    """Every screen in every language, a person standing in for the camera, with Wi-Fi."""
    tmp = tmp_path_factory.mktemp("screens")
    # A module's fixture runs before BOOTH_PLATE is set for each test: the file names the plate.
    (tmp / "booth.toml").write_text(f'{WIFI}[scene]\nplate = "{asset(PLATE)}"\n')
    proc = screens("--out", str(tmp / "out"), "--config", str(tmp / "booth.toml"),
                   "--photo", str(asset("people/rembg_girl-2.jpg")))
    assert proc.returncode == 0, proc.stderr
    return proc, pngs(tmp / "out")


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_every_screen_in_every_language_is_a_full_size_picture(drawn, plate_path):
    proc, images = drawn
    codes = {name.rsplit("-", 1)[1][:-4] for name in images}
    assert codes >= {"en", "de", "es", "fr"}
    assert set(images) == {f"station-{n}-{c}.png" for n in NAMES for c in codes}
    assert sorted(Path(line).name for line in proc.stdout.splitlines()) == sorted(images)
    for name, image in images.items():
        assert image.shape == (720, 1280, 3), name  # the station's default display
        assert image.std() > 20, f"{name} is blank"
    for name in NAMES:  # each language's words, not one screen four times
        assert not np.array_equal(images[f"station-{name}-en.png"],
                                  images[f"station-{name}-de.png"]), name


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_the_result_screen_shows_the_wifi_code_only_when_configured(drawn, tmp_path,
                                                                    plate_path):
    _, images = drawn
    proc = screens("--out", str(tmp_path), "--language", "en")
    assert proc.returncode == 0, proc.stderr
    plain = pngs(tmp_path)
    assert set(plain) == {f"station-{n}-en.png" for n in NAMES}
    with_wifi, without = images["station-result-en.png"], plain["station-result-en.png"]
    assert not np.array_equal(with_wifi, without)
    # Without a photo nobody is in view: the attract screen is the empty scene.
    assert not np.array_equal(images["station-attract-en.png"], plain["station-attract-en.png"])


@pytest.mark.slow
@pytest.mark.parametrize("bad", ["config", "out", "language", "photo"])
def test_bad_input_is_one_line_and_a_failure(bad, tmp_path, plate_path):
    args = {"config": ["--config", str(tmp_path / "broken.toml")],
            "out": ["--out", str(tmp_path / "a-file" / "screens")],
            "language": ["--language", "xx"],
            "photo": ["--photo", str(tmp_path / "a-file")]}[bad]
    (tmp_path / "broken.toml").write_text("[server\nport = 80\n")
    (tmp_path / "a-file").write_text("not a folder, not a photo")
    proc = screens(*(["--out", str(tmp_path / "out")] if bad != "out" else []), *args)
    assert proc.returncode != 0
    assert proc.stderr.startswith("booth: error: ") and proc.stderr.count("\n") == 1, \
        proc.stderr
    assert not list(tmp_path.glob("out/*.png"))
