"""Photo files on disk: written whole or not at all, private to the booth's user."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TMP_PREFIX = ".tmp-"
PRIVATE_DIR = 0o700  # photos, the database and the secrets: the booth's user only
PRIVATE_FILE = 0o600


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def make_private_dir(path: Path) -> None:
    """Create path (and parents) and make it 0700. On Windows chmod only sets read-only;
    the user's profile folders are private there already."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    with contextlib.suppress(PermissionError):  # not ours: the writability probe decides
        os.chmod(path, PRIVATE_DIR)


def probe_writable(folder: Path) -> None:
    """mkdir succeeds on an existing read-only folder: find out now, not at the first
    visitor's photo. Raises OSError."""
    fd, probe = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
    os.close(fd)
    # Gone already: another process's start-up sweep took it (the folder is writable).
    with contextlib.suppress(FileNotFoundError):
        os.unlink(probe)


def fsync_dir(path: Path) -> None:
    # Makes a rename durable. Windows cannot open a directory for fsync (and NTFS journals
    # the rename itself).
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(folder: Path, name: str, data: bytes, written: list[Path]) -> Path:
    """Write data as folder/name (0600, synced, renamed into place); every path it creates
    goes into `written`, so a failure can clean up. The caller syncs the folder."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".jpg", dir=folder)  # mode 0600
    written.append(Path(tmp))
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    path = folder / name
    os.replace(tmp, path)
    written.append(path)
    return path


def write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write the whole file or nothing: a temp file beside it (0600, else `mode`), then a
    rename. For the booth's outputs (a composed photo, a screen, a unit file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:  # already gone, or open in another process on Windows: sweep retries
        return False
