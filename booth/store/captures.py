"""Captures: one row per photo, pointing at its files; tokens stored as SHA-256 only."""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from booth.errors import BoothError
from booth.store.db import Database
from booth.store.files import fsync_dir, reason, remove, write_file

# token_urlsafe(16) gives 22 characters; accept a little more so longer tokens stay valid if
# the size is ever raised, and refuse anything else before hashing it.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
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


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class CaptureRows:
    """Mixed into Store: needs self.db (Database), self.photos and self._leftovers."""

    db: Database
    photos: Path
    _leftovers: set[Path]

    def _write_file(self, data: bytes, name: str, written: list[Path]) -> Path:
        return write_file(self.photos, name, data, written)

    def publish(self, jpeg: bytes, *, ttl_seconds: float, raw_jpeg: bytes | None = None,
                thumb_jpeg: bytes | None = None, now: float | None = None) -> Capture:
        """Store a photo (optionally its raw frame and its thumbnail); return it with its
        plain token. Files are written and synced before the row is committed: a row only
        ever points at a complete file."""
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
            fsync_dir(self.photos)
            with self.db.write() as db:
                # A sweep in another process holds the write lock while it deletes, so if
                # the files are still here now, they stay once the row is committed.
                if not all(p.exists() for p in files):
                    raise OSError("the file vanished before it was recorded (another booth "
                                  "process swept the photos folder?)")
                names = {k: p.name for k, p in extra.items()}
                # Never reuse an id: SQLite gives a deleted newest row's id to the next row,
                # and a staff gallery still showing the deleted photo would then show, or
                # delete, another visitor's photo under that id.
                new_id = db.execute(
                    "SELECT MAX(COALESCE((SELECT MAX(id) FROM captures), 0), COALESCE("
                    "(SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?), 0)) + 1",
                    (_LAST_ID,)).fetchone()[0]
                db.execute(
                    "INSERT INTO captures (id, token_hash, filename, raw_filename,"
                    " thumb_filename, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (new_id, token_hash(token), files[0].name, names.get("raw"),
                     names.get("thumb"), now, now + ttl_seconds))
                db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) "
                           "DO UPDATE SET value = excluded.value", (_LAST_ID, str(new_id)))
        except BaseException as exc:
            for path in written:
                if not remove(path) and path.exists():
                    self._leftovers.add(path)
            if isinstance(exc, OSError):
                raise BoothError(f"could not save the photo: {reason(exc)}") from exc
            if isinstance(exc, sqlite3.OperationalError):  # disk full, database locked
                raise BoothError(f"could not save the photo: {exc}") from exc
            raise
        return Capture(new_id, token, files[0].name, files[0], now, now + ttl_seconds, 0,
                       extra.get("thumb"))

    def _remove_leftovers(self) -> None:
        """Files a failed publish could not remove (its folder had turned read-only): removed
        at the next publish or purge, not only at the next start-up."""
        for path in list(self._leftovers):
            if remove(path) or not path.exists():
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
        row = self.db.one(f"SELECT {_COLUMNS} FROM captures WHERE token_hash = ? AND "
                          "expires_at > ?", (token_hash(token), now))
        return None if row is None else self._capture(row)

    def get(self, capture_id: int) -> Capture | None:
        row = self.db.one(f"SELECT {_COLUMNS} FROM captures WHERE id = ?", (capture_id,))
        return None if row is None else self._capture(row)

    def captures(self, limit: int = 500) -> list[Capture]:
        """Newest first."""
        rows = self.db.all(f"SELECT {_COLUMNS} FROM captures ORDER BY created_at DESC, "
                           "id DESC LIMIT ?", (limit,))
        return [self._capture(r) for r in rows]

    def count(self) -> int:
        return self.db.one("SELECT COUNT(*) FROM captures")[0]

    def count_since(self, since: float) -> int:
        return self.db.one("SELECT COUNT(*) FROM captures WHERE created_at >= ?", (since,))[0]

    def record_download(self, capture_id: int) -> None:
        self.db.execute("UPDATE captures SET downloads = downloads + 1 WHERE id = ?",
                        (capture_id,))

    def _delete_where(self, where: str, args: tuple) -> int:
        """Delete matching rows, then their files. Row first: once the row is gone no link
        opens the photo, and a file that cannot be removed now (open on Windows) is
        unreferenced, so the next sweep takes it."""
        with self.db.write() as db:
            rows = db.execute(f"SELECT filename, raw_filename, thumb_filename FROM captures "
                              f"WHERE {where}", args).fetchall()
            db.execute(f"DELETE FROM captures WHERE {where}", args)
        for names in rows:
            for name in names:
                if name:
                    remove(self.photos / name)
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
