"""The start-up sweep: every file in photos/ is referenced by a row, so a purge of rows
reaches every photo (a crash can leave a temp file or a published file with no row). On the
shared store, the objects of deleted rows that wait for the bucket (DeletionQueue)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from booth.errors import StoreUnavailable
from booth.store.files import TMP_PREFIX, remove
from booth.store.interface import Database, PhotoFiles
from booth.store.photos import Photo

log = logging.getLogger(__name__)

# What a live system's sweep leaves alone: another process may be writing it right now.
_GENTLE_TMP_AGE = 600.0
_GENTLE_FILE_AGE = 120.0
# A start-up's own temp files live milliseconds; a full sweep leaves the last minute's alone.
_FRESH_TMP_AGE = {False: 60.0, True: _GENTLE_TMP_AGE}


def _young(entries: list[os.DirEntry], now: float) -> set[str]:
    young = set()
    for e in entries:
        limit = _GENTLE_TMP_AGE if e.name.startswith(TMP_PREFIX) else _GENTLE_FILE_AGE
        with contextlib.suppress(OSError):
            if now - e.stat().st_mtime < limit:
                young.add(e.name)
    return young


def sweep(db: Database, data_dir: Path, photos: Path, gentle: bool = False) -> int:
    """Delete temp files, files no row references and rows whose photo is missing.

    Returns how many files and rows it removed. Holds the database write lock throughout,
    so a publisher in another process cannot commit a row for a file being deleted.
    gentle: spare files young enough that another process may still be writing them.
    """
    removed = 0
    now = time.time()
    with db.write() as conn:
        rows = conn.execute(
            "SELECT id, filename, raw_filename, thumb_filename, poster_filename "
            "FROM captures").fetchall()
        entries = [e for e in os.scandir(photos) if not e.is_dir()]
        present = {e.name for e in entries}
        young = _young(entries, now) if gentle else set()
        referenced = set()
        for id_, filename, raw_name, thumb_name, poster_name in rows:
            if filename not in present:
                conn.execute("DELETE FROM captures WHERE id = ?", (id_,))
                removed += 1
                continue  # its other files are now unreferenced
            referenced.add(filename)
            for column, name in (("raw_filename", raw_name), ("thumb_filename", thumb_name),
                                 ("poster_filename", poster_name)):
                if name is None:
                    continue
                if name in present:
                    referenced.add(name)
                else:
                    conn.execute(f"UPDATE captures SET {column} = NULL WHERE id = ?", (id_,))
                    removed += 1
        for name in present - referenced - young:
            removed += remove(photos / name)
        # The writability probes and secret temp files of a start-up killed at that moment;
        # never a fresh one, even in a full sweep: another process opening this data dir at
        # the same instant is writing it (its probe or its session key would vanish).
        for probe in [*data_dir.glob(TMP_PREFIX + "*"),
                      *(data_dir / "secrets").glob(TMP_PREFIX + "*")]:
            with contextlib.suppress(OSError):  # gone already: another sweep
                if now - probe.stat().st_mtime >= _FRESH_TMP_AGE[gentle]:
                    removed += remove(probe)
    return removed


def sweep_bucket(db: Database, photo_files: PhotoFiles, now: float) -> int:
    """The shared store's sweep: rows whose photo is gone from the bucket, and objects no row
    names (a purge killed between the row and the object). The rows are read before the
    bucket is listed, and objects younger than _GENTLE_TMP_AGE are spared, so an upload in
    progress (its row registered first, then its files put) is never taken for either."""
    removed = 0
    rows = db.all("SELECT id, filename, raw_filename, thumb_filename, poster_filename, pending "
                  "FROM captures")
    listing = photo_files.listing()
    referenced = set()
    for id_, *names, pending in rows:
        if not pending and names[0] not in listing:
            removed += db.execute("DELETE FROM captures WHERE id = ? AND pending = 0",
                                  (id_,)).rowcount
            continue
        referenced.update(n for n in names if n)
    for name, modified in listing.items():
        if name not in referenced and now - modified >= _GENTLE_TMP_AGE:
            removed += photo_files.delete(name)
    return removed


class DeletionQueue:
    """The shared store's photo files (booth.store.interface.PhotoFiles), whose delete does
    not fail while the bucket is down: the rows are gone already (the link says "not found"
    and a visitor reads "deleted"), so a name the bucket does not take is queued in
    pending_deletes, and the janitors delete it once the bucket is back (drain, every few
    seconds), not at the next sweep, minutes later. The queue is in the database: it
    outlives a restart, and every server's janitor works it, each name claimed by one of
    them for CLAIM seconds (if that one dies, another takes it over then)."""

    RETRY = 5.0  # seconds after a failed delete during which deletes are queued untried
    CLAIM = 60.0
    BATCH = 100

    def __init__(self, bucket: PhotoFiles, db: Database) -> None:
        self.bucket, self.db = bucket, db
        self._untried_until = 0.0  # (monotonic) a delete would wait out its timeout in vain

    def put(self, name: str, data: bytes) -> None:
        self.bucket.put(name, data)

    def open(self, name: str) -> Photo | None:
        return self.bucket.open(name)

    def listing(self) -> dict[str, float]:
        return self.bucket.listing()

    def delete(self, name: str) -> bool:
        if time.monotonic() >= self._untried_until:
            try:
                return self.bucket.delete(name)
            except StoreUnavailable as exc:
                self._untried_until = time.monotonic() + self.RETRY
                log.warning("%s; deletes wait in the database until it is back", exc)
        self.db.execute("INSERT INTO pending_deletes (name, due_at) VALUES (?, ?) "
                        "ON CONFLICT (name) DO NOTHING", (name, time.time()))
        return True

    def drain(self) -> int:
        """Delete the queued objects; returns how many. Raises StoreUnavailable while the
        bucket is down (what it did not delete stays queued, due at once)."""
        deleted = 0
        while True:
            now = time.time()
            names = [row[0] for row in self.db.all(
                "UPDATE pending_deletes SET due_at = ? WHERE name IN (SELECT name FROM "
                "pending_deletes WHERE due_at <= ? ORDER BY due_at LIMIT ? "
                "FOR UPDATE SKIP LOCKED) RETURNING name", (now + self.CLAIM, now, self.BATCH))]
            done: list[str] = []
            try:
                for name in names:
                    self.bucket.delete(name)
                    done.append(name)
            finally:
                if done:
                    self.db.execute("DELETE FROM pending_deletes WHERE name = ANY(?)", (done,))
                if len(done) < len(names):
                    self.db.execute("UPDATE pending_deletes SET due_at = ? WHERE name = ANY(?)",
                                    (now, names[len(done):]))
            deleted += len(done)
            if len(names) < self.BATCH:
                return deleted
