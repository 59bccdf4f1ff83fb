"""The photo store: JPEG files under data_dir/photos, one SQLite row per capture.

Photos of visitors are personal data, so the store keeps two promises:
- a row only ever points at a complete file (files are written and synced before the row
  is committed; a crash leaves at worst an unreferenced file, never a torn one);
- every file in photos/ is referenced by a row, so a purge of rows reaches every photo
  (sweep() deletes leftovers at start-up).
Only the SHA-256 of each download token is stored: the database alone cannot open a photo.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import sqlite3
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from booth.errors import BoothError

SCHEMA_VERSION = 1
TMP_PREFIX = ".tmp-"

# token_urlsafe(16) gives 22 characters; accept a little more so longer tokens stay valid if
# the size is ever raised, and refuse anything else before hashing it.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS captures (
    id INTEGER PRIMARY KEY,
    token_hash TEXT UNIQUE NOT NULL,
    filename TEXT NOT NULL,
    raw_filename TEXT,
    thumb_filename TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    downloads INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS captures_created ON captures (created_at);
CREATE INDEX IF NOT EXISTS captures_expires ON captures (expires_at);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# What a live system's sweep leaves alone: another process may be writing it right now.
_GENTLE_TMP_AGE = 600.0
_GENTLE_FILE_AGE = 120.0
_COLUMNS = "id, filename, thumb_filename, created_at, expires_at, downloads"
_LAST_ID = "last_capture_id"  # settings key: the highest capture id ever given

@dataclass(frozen=True)
class Capture:
    id: int
    token: str | None  # the plain token, only in publish()'s result; never stored
    filename: str
    path: Path
    created_at: float
    expires_at: float
    downloads: int
    thumb_path: Path | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _fsync_dir(path: Path) -> None:
    # Makes the rename durable. Windows cannot open a directory for fsync (and NTFS journals
    # the rename itself).
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except OSError:  # already gone, or open in another process on Windows: sweep retries
        return False


class Store:
    """gentle=True for a process that runs beside a station (the web server alone): its
    start-up sweep leaves young files alone, since the station may be writing them."""

    def __init__(self, data_dir: Path, *, gentle: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.photos = self.data_dir / "photos"
        self.db_path = self.data_dir / "booth.sqlite3"
        try:
            self.photos.mkdir(parents=True, exist_ok=True)
            # mkdir succeeds on an existing read-only folder; find out now, not at the first
            # visitor's photo. (The database and its WAL need the outer folder writable too.)
            for folder in (self.data_dir, self.photos):
                fd, probe = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
                os.close(fd)
                os.unlink(probe)
        except OSError as exc:
            raise BoothError(f"data dir {self.data_dir} is not writable ({_reason(exc)}); "
                             "pass --data-dir with a folder you can write to") from None
        # One connection shared by the station thread and the web threads; the lock
        # serialises its use (a sqlite3 connection must not run two calls at once).
        self._lock = threading.Lock()
        # Files a failed publish could not remove (its folder had turned read-only): removed
        # at the next publish or purge, not only at the next start-up.
        self._leftovers: set[Path] = set()
        try:
            self._db = sqlite3.connect(self.db_path, check_same_thread=False,
                                       isolation_level=None)  # we issue BEGIN ourselves
        except sqlite3.Error as exc:
            raise self._db_error(exc) from None
        try:
            self._open_schema()
            self.sweep(gentle=gentle)
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise self._db_error(exc) from None
            raise

    def _db_error(self, exc: sqlite3.Error) -> BoothError:
        if isinstance(exc, sqlite3.OperationalError):  # cannot open, read-only, locked
            return BoothError(f"database {self.db_path} cannot be used ({exc}); check that it "
                              "is writable and no other program holds it, or pass --data-dir "
                              "with another folder")
        return BoothError(f"database {self.db_path} is not a booth database or is corrupt "
                          f"({exc}); move it aside (its photos are then swept at the next "
                          "start) or pass --data-dir with another folder")

    def _open_schema(self) -> None:
        db = self._db
        db.execute("PRAGMA busy_timeout = 5000")
        # A damaged page (in an index, or the settings table) would otherwise pass the
        # start-up sweep and fail later: every photo link, or the web app's start, with a
        # traceback. The check reads every page once: milliseconds for a day of photos.
        problems = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            lines = [line for p in problems for line in p.splitlines()
                     if line.strip() and not line.startswith("***")]
            raise sqlite3.DatabaseError("database disk image is malformed: "
                                        + (lines[0][:200] if lines else "quick_check failed"))
        # WAL: web threads and other processes can read while the station writes.
        db.execute("PRAGMA journal_mode = WAL")
        # A committed row must survive a power cut, or its visitor's link would break.
        db.execute("PRAGMA synchronous = FULL")
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise BoothError(f"database {self.db_path} is from a newer selfie-booth "
                                 f"(schema {version}); upgrade, or pass --data-dir with "
                                 "another folder")
            if version < 1:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _write_file(self, data: bytes, name: str, written: list[Path]) -> Path:
        """Write data as photos/name; every path it creates goes into `written` for cleanup."""
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=".jpg", dir=self.photos)
        written.append(Path(tmp))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        path = self.photos / name
        os.replace(tmp, path)
        written.append(path)
        return path

    def publish(self, jpeg: bytes, *, ttl_seconds: float, raw_jpeg: bytes | None = None,
                thumb_jpeg: bytes | None = None, now: float | None = None) -> Capture:
        """Store a photo (optionally its raw frame and its thumbnail); return it with its
        plain token."""
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")
        now = time.time() if now is None else now
        self._remove_leftovers()
        token = secrets.token_urlsafe(16)  # 128 bits
        # A new name every time: replacing an existing file fails on Windows while a
        # download holds it open, and a name is never reused for another visitor.
        stem = uuid.uuid4().hex
        written: list[Path] = []
        try:
            files = [self._write_file(jpeg, f"{stem}.jpg", written)]
            extra = {}
            for kind, data in (("raw", raw_jpeg), ("thumb", thumb_jpeg)):
                if data is not None:
                    extra[kind] = self._write_file(data, f"{stem}-{kind}.jpg", written)
                    files.append(extra[kind])
            _fsync_dir(self.photos)
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    # A sweep in another process holds the write lock while it deletes, so
                    # if the files are still here now, they stay once the row is committed.
                    if not all(p.exists() for p in files):
                        raise OSError("the file vanished before it was recorded (another "
                                      "booth process swept the photos folder?)")
                    names = {k: p.name for k, p in extra.items()}
                    # Never reuse an id: SQLite gives a deleted newest row's id to the next
                    # row, and a staff gallery still showing the deleted photo would then
                    # show, or delete, another visitor's photo under that id.
                    new_id = self._db.execute(
                        "SELECT MAX(COALESCE((SELECT MAX(id) FROM captures), 0), COALESCE("
                        "(SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?), 0)) + 1",
                        (_LAST_ID,)).fetchone()[0]
                    cur = self._db.execute(
                        "INSERT INTO captures (id, token_hash, filename, raw_filename,"
                        " thumb_filename, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (new_id, _hash(token), files[0].name, names.get("raw"),
                         names.get("thumb"), now, now + ttl_seconds))
                    self._db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON "
                                     "CONFLICT(key) DO UPDATE SET value = excluded.value",
                                     (_LAST_ID, str(new_id)))
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
        except BaseException as exc:
            for path in written:
                if not _remove(path) and path.exists():
                    self._leftovers.add(path)
            if isinstance(exc, OSError):
                raise BoothError(f"could not save the photo: {_reason(exc)}") from exc
            if isinstance(exc, sqlite3.OperationalError):  # disk full, database locked
                raise BoothError(f"could not save the photo: {exc}") from exc
            raise
        return Capture(cur.lastrowid, token, files[0].name, files[0], now, now + ttl_seconds, 0,
                       extra.get("thumb"))

    def _remove_leftovers(self) -> None:
        for path in list(self._leftovers):
            if _remove(path) or not path.exists():
                self._leftovers.discard(path)

    def _capture(self, row: tuple) -> Capture:
        id_, filename, thumb, created_at, expires_at, downloads = row
        return Capture(id_, None, filename, self.photos / filename, created_at, expires_at,
                       downloads, self.photos / thumb if thumb else None)

    def resolve(self, token: str, now: float | None = None) -> Capture | None:
        """The live capture for a download token, or None (unknown, malformed or expired)."""
        if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
            return None
        now = time.time() if now is None else now
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM captures WHERE token_hash = ? AND expires_at > ?",
                (_hash(token), now)).fetchone()
        return None if row is None else self._capture(row)

    def get(self, capture_id: int) -> Capture | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM captures WHERE id = ?",
                                   (capture_id,)).fetchone()
        return None if row is None else self._capture(row)

    def captures(self, limit: int = 500) -> list[Capture]:
        """Newest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM captures ORDER BY created_at DESC, id DESC LIMIT ?",
                (limit,)).fetchall()
        return [self._capture(r) for r in rows]

    def count_since(self, since: float) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM captures WHERE created_at >= ?",
                                    (since,)).fetchone()[0]

    def record_download(self, capture_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE captures SET downloads = downloads + 1 WHERE id = ?",
                             (capture_id,))

    def _delete_where(self, where: str, args: tuple) -> int:
        """Delete matching rows, then their files. Row first: once the row is gone no link
        opens the photo, and a file that cannot be removed now (open on Windows) is
        unreferenced, so the next sweep takes it."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = db.execute(
                    f"SELECT filename, raw_filename, thumb_filename FROM captures WHERE {where}",
                    args).fetchall()
                db.execute(f"DELETE FROM captures WHERE {where}", args)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        for names in rows:
            for name in names:
                if name:
                    _remove(self.photos / name)
        return len(rows)

    def delete(self, capture_ids: list[int]) -> int:
        ids = [int(i) for i in capture_ids]
        if not ids:
            return 0
        return self._delete_where(f"id IN ({','.join('?' * len(ids))})", tuple(ids))

    def purge_expired(self, now: float | None = None) -> int:
        self._remove_leftovers()  # the janitor calls this every minute
        return self._delete_where("expires_at <= ?", (time.time() if now is None else now,))

    def purge_older_than(self, seconds: float, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return self._delete_where("created_at <= ?", (now - seconds,))

    def purge_all(self) -> int:
        return self._delete_where("1 = 1", ())

    def get_setting(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?",
                                   (key,)).fetchone()
        return None if row is None else row[0]

    def set_setting(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key)"
                             " DO UPDATE SET value = excluded.value", (key, value))

    def setting_or_create(self, key: str, make) -> str:
        """The stored value, or make() stored atomically: two processes agree on one."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)",
                             (key, make()))
            return self._db.execute("SELECT value FROM settings WHERE key = ?",
                                    (key,)).fetchone()[0]

    def sweep(self, gentle: bool = False) -> int:
        """Delete temp files, files no row references and rows whose photo is missing.

        Returns how many files and rows it removed. Holds the database write lock throughout,
        so a publisher in another process cannot commit a row for a file being deleted.
        gentle: spare files young enough that another process may still be writing them.
        """
        removed = 0
        now = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                rows = db.execute(
                    "SELECT id, filename, raw_filename, thumb_filename FROM captures").fetchall()
                entries = [e for e in os.scandir(self.photos) if not e.is_dir()]
                present = {e.name for e in entries}
                young = set()
                if gentle:
                    for e in entries:
                        limit = _GENTLE_TMP_AGE if e.name.startswith(TMP_PREFIX) else \
                            _GENTLE_FILE_AGE
                        with contextlib.suppress(OSError):
                            if now - e.stat().st_mtime < limit:
                                young.add(e.name)
                referenced = set()
                for id_, filename, raw_name, thumb_name in rows:
                    if filename not in present:
                        db.execute("DELETE FROM captures WHERE id = ?", (id_,))
                        removed += 1
                        continue  # its raw and thumbnail files are now unreferenced
                    referenced.add(filename)
                    for column, name in (("raw_filename", raw_name),
                                         ("thumb_filename", thumb_name)):
                        if name is None:
                            continue
                        if name in present:
                            referenced.add(name)
                        else:
                            db.execute(f"UPDATE captures SET {column} = NULL WHERE id = ?",
                                       (id_,))
                            removed += 1
                for name in present - referenced - young:
                    removed += _remove(self.photos / name)
                # The writability probe of a start-up killed at that very moment.
                for probe in self.data_dir.glob(TMP_PREFIX + "*"):
                    with contextlib.suppress(OSError):  # gone already: another sweep
                        if not gentle or now - probe.stat().st_mtime >= _GENTLE_TMP_AGE:
                            removed += _remove(probe)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return removed

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM captures").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
