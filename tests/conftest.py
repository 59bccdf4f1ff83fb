"""Shared test set-up: where the real media live, and a plate for every test that needs one.

The media folder comes from BOOTH_ASSETS (default: ../shared/assets beside the checkout).
Tests that need a missing file or tool skip with the reason on a developer's machine; under CI
(`CI` set) they fail instead, so CI can never pass by skipping the real-media tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("BOOTH_ASSETS") or ROOT.parent / "shared" / "assets")
PLATE = "scenes/sol46/PIA24542_large.jpg"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable(reason: str):
    """A test cannot run here: skip it, but fail under CI, which must run every test."""
    if under_ci():
        pytest.fail(f"{reason} (CI runs every test; scripts/setup-tests installs what they need)")
    pytest.skip(reason)


def asset(relative: str) -> Path:
    path = ASSETS / relative
    if not path.is_file():
        unavailable(f"test media {path} is missing; set BOOTH_ASSETS to the shared assets folder")
    return path


@pytest.fixture
def plate_path() -> Path:
    return asset(PLATE)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Every test gets its own plate cache, and BOOTH_PLATE points at the shared plate."""
    monkeypatch.setenv("BOOTH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    plate = ASSETS / PLATE
    if plate.is_file():
        monkeypatch.setenv("BOOTH_PLATE", str(plate))
    else:
        monkeypatch.delenv("BOOTH_PLATE", raising=False)


def plate_config():
    """Default settings with the shared plate configured (for module-scoped fixtures, which
    run before the per-test environment is set)."""
    from booth.config import Config

    cfg = Config()
    cfg.scene.plate = str(asset(PLATE))
    return cfg
