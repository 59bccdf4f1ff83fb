"""The installed package works from any folder: scene files and assets travel in the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from tests.conftest import ROOT, asset

pytestmark = pytest.mark.slow  # the installed `booth` in fresh processes, a model run in one


def _installed_booth() -> str:
    script = shutil.which("booth", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the booth command is not installed in this environment (pip install .)")
    return script


def test_booth_compose_runs_from_another_folder(tmp_path: Path):
    booth = _installed_booth()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([sys.executable, "-c", "import booth; print(booth.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    installed_at = Path(where.stdout.strip()).resolve()
    if installed_at.parent == ROOT / "booth":
        pytest.skip("booth is installed in editable mode; CI installs it with pip install .")
    out = tmp_path / "mars.jpg"
    proc = subprocess.run([booth, "compose", str(asset("people/rembg_girl-1.jpg")), "-o",
                           str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(out)).shape[1] == 1920


def test_installed_web_app_speaks_every_language_from_another_folder(tmp_path: Path):
    """The catalogues travel in the wheel and are compiled at start-up: no build step."""
    _installed_booth()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    script = (
        "import sys, booth\n"
        "from pathlib import Path\n"
        "from booth.config import Config\n"
        "from booth.store import Store\n"
        "from booth.webapp import create_app\n"
        "store = Store(Path(sys.argv[1]))\n"
        "client = create_app(Config(), store, testing=True).test_client()\n"
        "for lang in ('de', 'es', 'fr'):\n"
        "    print(client.get('/', headers={'Accept-Language': lang}).text)\n"
        "print(booth.__file__)\n"
        "store.close()\n")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "data")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    if Path(proc.stdout.splitlines()[-1]).resolve().parent == ROOT / "booth":
        pytest.skip("booth is installed in editable mode; CI installs it with pip install .")
    for words in ('<html lang="de">', "Steh auf dem Mars", '<html lang="es">', "Ponte en Marte",
                  '<html lang="fr">', "Marchez sur Mars"):
        assert words in proc.stdout


def test_installed_booth_writes_its_service_units_from_another_folder(tmp_path: Path):
    """The unit files travel in the wheel (booth/systemd) and name the installed booth."""
    booth = _installed_booth()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([sys.executable, "-c", "import booth; print(booth.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    package = Path(where.stdout.strip()).parent
    if (package.parent / "pyproject.toml").exists():
        pytest.skip("booth is installed in editable mode; CI installs it with pip install .")
    if '"service"' not in (package / "cli.py").read_text(encoding="utf-8"):
        pytest.skip("the installed booth predates `booth service`; pip install . again")
    for scope in ("--user", "--system"):
        proc = subprocess.run([booth, "service", "install", scope, "--dry-run"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"ExecStart={booth} " in proc.stdout and "[Install]" in proc.stdout
