"""Obtain a scene's plate image: a configured path, the cache, or a verified download.

The plate is never shipped with the project; NASA serves it, and a kiosk that is offline can
be given a copy with BOOTH_PLATE or [scene] plate in the config (booth.config reads both).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TextIO

from booth.errors import BoothError
from booth.scene.definition import Scene

_CHUNK = 64 * 1024
log = logging.getLogger(__name__)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _how_to_provide(scene: Scene) -> str:
    return (f"download {scene.plate.url} on another machine, copy it here and set "
            f"BOOTH_PLATE=/path/to/{scene.plate.file} (or [scene] plate in the config)")


def _check(path: Path, scene: Scene, origin: str) -> Path:
    if not path.is_file():
        raise BoothError(f"plate {path} (from {origin}) does not exist; fix the path or "
                         f"unset it to download the plate")
    try:
        actual = sha256_of(path)
    except OSError as exc:
        raise BoothError(f"plate {path} cannot be read: {exc.strerror or exc}") from None
    if actual != scene.plate.sha256:
        raise BoothError(f"plate {path} (from {origin}) is not {scene.plate.file}: its SHA-256 "
                         f"is {actual[:12]}..., expected {scene.plate.sha256[:12]}...; "
                         + _how_to_provide(scene))
    return path


def _progress(out: TextIO | None, what: str, done: int, total: int | None) -> None:
    if out is None:
        return
    if total:
        width = 30
        filled = width * done // total
        out.write(f"\rdownloading {what} [{'#' * filled}{'.' * (width - filled)}] "
                  f"{done * 100 // total:3d}% {done // 1024} of {total // 1024} kB")
    else:
        out.write(f"\rdownloading {what}: {done // 1024} kB")
    out.flush()


def _terminal() -> TextIO | None:
    """Where a progress bar goes: stderr when a person watches it, never into a log."""
    return sys.stderr if sys.stderr is not None and sys.stderr.isatty() else None


def download(url: str, dest: Path, expected_sha256: str | None, *, out: TextIO | None = None,
             timeout: float = 20.0, what: str = "plate") -> Path:
    """Fetch url into dest atomically, verifying the checksum before it is published
    (None: the caller verifies what it takes out of the file, e.g. one member of a wheel).
    out: where the progress bar goes (default: stderr if it is a terminal, else none);
    what: the thing downloaded, in the progress bar and messages."""
    out = _terminal() if out is None else out
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise BoothError(f"{what} URL {url!r} must start with http:// or https://")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
    except OSError as exc:
        raise BoothError(f"cannot write to the plate cache {dest.parent} "
                         f"({exc.strerror or exc}); set BOOTH_CACHE_DIR (or cache_dir in the "
                         "config) to a writable folder") from None
    tmp = Path(tmp_name)
    done = 0
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while chunk := resp.read(_CHUNK):
                f.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                _progress(out, what, done, total)
            f.flush()
            os.fsync(f.fileno())
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise BoothError(f"the file downloaded from {url} does not match the expected "
                             f"SHA-256 (got {digest.hexdigest()[:12]}...); nothing was saved")
        os.replace(tmp, dest)
        if expected_sha256 is None:  # the caller says what it made of the file
            log.debug("%s downloaded from %s into %s (%d kB)", what, url, dest, done // 1024)
        else:
            log.info("%s downloaded from %s into %s (%d kB, checksum verified)", what, url,
                     dest, done // 1024)
        return dest
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        reason = " ".join(str(reason).split())[:200]  # a server's garbage stays on one line
        raise BoothError(f"cannot download the {what} from {url} ({reason})") from None
    finally:
        if done and out is not None:  # end the progress line: what follows has its own
            out.write("\n")
            out.flush()
        tmp.unlink(missing_ok=True)


def obtain_plate(scene: Scene, *, configured: str = "",
                 origin: str = "the config's [scene] plate", url: str = "", cache_dir: Path,
                 out: TextIO | None = None) -> Path:
    """Path to a verified copy of the scene's plate, downloading it once if needed.
    configured: a path given by the operator (origin says where: the config, BOOTH_PLATE)."""
    if configured:
        return _check(Path(configured), scene, origin)
    cached = cache_dir / "plates" / scene.plate.file
    if cached.is_file() and sha256_of(cached) == scene.plate.sha256:
        return cached
    log.info("downloading the plate %s (not in the cache %s)", scene.plate.file, cached.parent)
    try:
        return download(url or scene.plate.url, cached, scene.plate.sha256, out=out)
    except BoothError as exc:
        raise BoothError(f"{exc}; {_how_to_provide(scene)}") from None
