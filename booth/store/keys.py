"""Secrets that open photos (the session signing key, the staff password's hash) live in
files only the booth's user can read: data_dir/secrets (0700), one 0600 file each. They
are kept out of the database, so a copy of the database cannot forge a staff session."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from booth.store.files import PRIVATE_FILE, TMP_PREFIX, fsync_dir, make_private_dir, remove
from booth.store.interface import Database


class SecretFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        make_private_dir(folder)
        for entry in folder.iterdir():  # files written by an older booth, or by hand
            with contextlib.suppress(OSError):
                os.chmod(entry, PRIVATE_FILE)

    def _path(self, name: str) -> Path:
        return self.folder / name

    def read(self, name: str) -> str | None:
        try:
            return self._path(name).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def _temp(self, value: str) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self.folder)  # mode 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(value)
            f.flush()
            os.fsync(f.fileno())
        return Path(tmp)

    def write(self, name: str, value: str) -> None:
        """Replace the secret whole, never half-written."""
        tmp = self._temp(value)
        try:
            os.replace(tmp, self._path(name))
        finally:
            remove(tmp)
        fsync_dir(self.folder)

    def delete(self, name: str) -> None:
        remove(self._path(name))

    def read_or_create(self, name: str, make: Callable[[], str]) -> str:
        """The stored secret, or make() stored: two processes starting at once agree on one
        (a hard link creates the name only if it does not exist yet)."""
        existing = self.read(name)
        if existing is not None:
            return existing
        tmp = self._temp(make())
        try:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self._path(name))
        finally:
            remove(tmp)
        fsync_dir(self.folder)
        return self.read(name) or ""


class SecretRows:
    """The shared store's secrets, as rows of its database: every server behind one public
    address must sign and check the same staff cookies and password. The database then
    holds them, so it is guarded like them (see the README's deployment section)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self, name: str) -> str | None:
        row = self.db.one("SELECT value FROM secrets WHERE name = ?", (name,))
        return row[0] if row and row[0] else None

    def write(self, name: str, value: str) -> None:
        self.db.execute("INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) "
                        "DO UPDATE SET value = excluded.value", (name, value))

    def delete(self, name: str) -> None:
        self.db.execute("DELETE FROM secrets WHERE name = ?", (name,))

    def read_or_create(self, name: str, make: Callable[[], str]) -> str:
        """Two processes starting at once agree on one: the first insert wins."""
        self.db.execute("INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) "
                        "DO NOTHING", (name, make()))
        return self.read(name) or ""
