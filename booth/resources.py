"""Find the data folders that travel with the package (scene definitions, web files).

In a wheel they sit inside the package (booth/overlays, booth/web); in a source checkout
they are the top-level folders beside it.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"package data folder {name!r} is missing; reinstall selfie-booth")
