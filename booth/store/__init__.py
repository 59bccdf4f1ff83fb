"""The photo store: JPEG files under data_dir/photos, one SQLite row per capture, staff
sessions, and the secrets that open photos in files of their own.

Photos of visitors are personal data, so the store keeps these promises:
- a row only ever points at a complete file (files are written and synced before the row
  is committed; a crash leaves at worst an unreferenced file, never a torn one);
- every file in photos/ is referenced by a row, so a purge of rows reaches every photo
  (the sweep deletes leftovers at start-up);
- only the SHA-256 of each download token and staff session id is stored, and the session
  key lives outside the database: the database alone cannot open a photo;
- the data folder, photos/ and secrets/ are 0700, the files in them 0600.

Modules: files (atomic private files), keys (secret files), schema (numbered migrations),
db (the connection), captures, settings, sessions, sweep. The public interface is Store,
Capture and TMP_PREFIX.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from booth.errors import BoothError
from booth.store.captures import Capture, CaptureRows
from booth.store.db import Database
from booth.store.files import TMP_PREFIX, make_private_dir, probe_writable, reason
from booth.store.keys import SecretFiles
from booth.store.schema import SCHEMA_VERSION
from booth.store.sessions import StaffSessions
from booth.store.settings import Settings
from booth.store.sweep import sweep

__all__ = ["SCHEMA_VERSION", "TMP_PREFIX", "Capture", "Store"]


class Store(CaptureRows, Settings, StaffSessions):
    """gentle=True for a process that runs beside a station (the web server alone): its
    start-up sweep leaves young files alone, since the station may be writing them."""

    def __init__(self, data_dir: Path, *, gentle: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.photos = self.data_dir / "photos"
        self.db_path = self.data_dir / "booth.sqlite3"
        self._leftovers: set[Path] = set()
        try:
            for folder in (self.data_dir, self.photos):
                make_private_dir(folder)
                # (The database and its WAL need the outer folder writable too.)
                probe_writable(folder)
            self.secrets = SecretFiles(self.data_dir / "secrets")
        except OSError as exc:
            raise BoothError(f"data dir {self.data_dir} is not writable ({reason(exc)}); "
                             "pass --data-dir with a folder you can write to") from None
        self.db = Database(self.db_path, self.secrets)
        try:
            self.sweep(gentle=gentle)
        except BaseException as exc:
            self.db.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise self.db.error(exc) from None
            raise

    def sweep(self, gentle: bool = False) -> int:
        """See booth.store.sweep; returns how many files and rows it removed."""
        return sweep(self.db, self.data_dir, self.photos, gentle)

    def close(self) -> None:
        self.db.close()
