"""Captures: one row per photo or clip, pointing at its files; tokens stored as SHA-256 only.

A photo's file is its JPEG; a clip's (a boomerang) is an MP4, with a poster JPEG (its first
frame) that stands for it wherever a picture is shown: the gallery, the video's poster.
Either may have a thumbnail (and a photo its raw frame); a delete removes them all.

The rows are in SQLite or PostgreSQL (self.db), the files in the data dir or a bucket
(self.photo_files). A station on the shared store publishes into its outbox
(booth.store.outbox); its uploader then calls register_pending and mark_uploaded."""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from booth.errors import BoothError
from booth.store import counts
from booth.store.files import fsync_dir, reason, remove, write_file

if TYPE_CHECKING:
    from booth.store.interface import Database, PhotoFiles
    from booth.store.outbox import Outbox, Uploader
    from booth.store.photos import Photo

# token_urlsafe(16) gives 22 characters; accept a little more so longer tokens stay valid if
# the size is ever raised, and refuse anything else before hashing it.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_COLUMNS = ("id, filename, thumb_filename, created_at, expires_at, downloads, pending, kind, "
            "poster_filename")
PHOTO, CLIP = "photo", "clip"  # a capture's kind (booth.station.outputs.Kind's values)
_SUFFIX = {PHOTO: ".jpg", CLIP: ".mp4"}
# A capture's files, by what they are: the main one ("photo", whatever its kind, as in the
# outbox's records), then the others, each a column and a name ending.
_EXTRA = (("raw", "raw_filename"), ("thumb", "thumb_filename"),
          ("poster", "poster_filename"))
_LAST_ID = "last_capture_id"  # settings key: the highest capture id ever given


@dataclass(frozen=True)
class Capture:
    id: int
    token: str | None  # the plain token, only in publish()'s result; never stored
    filename: str
    path: Path | None
    created_at: float
    expires_at: float
    downloads: int
    thumb_path: Path | None = None  # path and thumb_path: in the data dir, else None
    thumb_filename: str | None = None
    pending: bool = False  # still on its way from the station to the shared store
    kind: str = PHOTO  # or CLIP: filename is an MP4, poster_filename its poster JPEG
    poster_filename: str | None = None

    @property
    def short_id(self) -> str:
        """What the log calls it (never its token): its files' name, shortened."""
        return short_id(self.filename)


def short_id(filename: str) -> str:
    """A capture's files are "<uuid>.jpg", "<uuid>-thumb.jpg", ...: the uuid's first 8."""
    return filename[:8]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def _names(files: dict[str, str]) -> tuple[str | None, ...]:
    """A capture's file names (what -> name) in the column order filename, then _EXTRA's."""
    return (files["photo"], *(files.get(what) for what, _ in _EXTRA))


class CaptureRows:
    """Mixed into Store: needs self.db, self.photo_files (see booth.store.interface),
    self.photos (the data dir's photos folder, None for a bucket), self.outbox (None but on
    a shared store's station), self.uploader and self._leftovers."""

    db: Database
    photo_files: PhotoFiles
    photos: Path | None
    outbox: Outbox | None
    uploader: Uploader | None
    _leftovers: set[Path]
    counted: Callable[[str, int], None]  # booth.store.counts.Counts

    def _write_file(self, data: bytes, name: str, written: list[Path]) -> Path:
        return write_file(self.photos, name, data, written)

    def publish(self, data: bytes, *, ttl_seconds: float, raw_jpeg: bytes | None = None,
                thumb_jpeg: bytes | None = None, kind: str = PHOTO,
                poster_jpeg: bytes | None = None, now: float | None = None) -> Capture:
        """Store a capture: a photo (data: its JPEG), or a clip (data: its MP4, poster_jpeg
        its first frame), optionally with its thumbnail (and a photo its raw frame); return
        it with its plain token. Files are written and synced before the row is committed: a
        row only ever points at a complete file."""
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")
        if kind not in _SUFFIX or (kind == CLIP) != (poster_jpeg is not None):
            raise ValueError(f"kind {kind!r} with{'' if poster_jpeg else 'out'} a poster: a "
                             "clip needs its poster, a photo has none")
        now = time.time() if now is None else now
        token = secrets.token_urlsafe(16)  # 128 bits
        # A new name every time: replacing an existing file fails on Windows while a
        # download holds it open, and a name is never reused for another visitor.
        stem = uuid.uuid4().hex
        given = {"raw": raw_jpeg, "thumb": thumb_jpeg, "poster": poster_jpeg}
        files = {"photo": (f"{stem}{_SUFFIX[kind]}", data)} | {
            what: (f"{stem}-{what}.jpg", jpeg) for what, jpeg in given.items() if jpeg is not None}
        if self.outbox is not None:
            return self._publish_to_outbox(token, kind, now, ttl_seconds, files)
        self._remove_leftovers()
        written: list[Path] = []
        try:
            paths = {what: self._write_file(content, name, written)
                     for what, (name, content) in files.items()}
            fsync_dir(self.photos)
            with self.db.write() as db:
                # A sweep in another process holds the write lock while it deletes, so if
                # the files are still here now, they stay once the row is committed.
                if not all(p.exists() for p in paths.values()):
                    raise OSError("the file vanished before it was recorded (another booth "
                                  "process swept the photos folder?)")
                # Never reuse an id: SQLite gives a deleted newest row's id to the next row,
                # and a staff gallery still showing the deleted photo would then show, or
                # delete, another visitor's photo under that id.
                new_id = db.execute(
                    "SELECT MAX(COALESCE((SELECT MAX(id) FROM captures), 0), COALESCE("
                    "(SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?), 0)) + 1",
                    (_LAST_ID,)).fetchone()[0]
                db.execute(
                    "INSERT INTO captures (id, token_hash, filename, raw_filename,"
                    " thumb_filename, poster_filename, kind, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (new_id, token_hash(token), *_names({k: p.name for k, p in paths.items()}),
                     kind, now, now + ttl_seconds))
                db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) "
                           "DO UPDATE SET value = excluded.value", (_LAST_ID, str(new_id)))
                counts.add(db, counts.CAPTURE + kind, 1, now)
        except BaseException as exc:
            for path in written:
                if not remove(path) and path.exists():
                    self._leftovers.add(path)
            if isinstance(exc, OSError):
                raise BoothError(f"could not save the {kind}: {reason(exc)}") from exc
            if isinstance(exc, sqlite3.OperationalError):  # disk full, database locked
                raise BoothError(f"could not save the {kind}: {exc}") from exc
            raise
        self.counted(counts.CAPTURE + kind, 1)
        return Capture(new_id, token, paths["photo"].name, paths["photo"], now,
                       now + ttl_seconds, 0, paths.get("thumb"), files.get("thumb", (None,))[0],
                       kind=kind, poster_filename=files.get("poster", (None,))[0])

    def _publish_to_outbox(self, token: str, kind: str, now: float, ttl_seconds: float,
                           files: dict[str, tuple[str, bytes]]) -> Capture:
        """The shared store: the capture waits on this disk until the uploader has put it in
        the database and the bucket; its link works at once (it says "on its way")."""
        try:
            self.outbox.add(files, token_hash=token_hash(token), created_at=now,
                            expires_at=now + ttl_seconds, kind=kind)
        except OSError as exc:
            raise BoothError(f"could not save the {kind}: {reason(exc)}") from exc
        if self.uploader is not None:
            self.uploader.notify()
        return Capture(0, token, files["photo"][0], None, now, now + ttl_seconds, 0, None,
                       files.get("thumb", (None,))[0], pending=True, kind=kind,
                       poster_filename=files.get("poster", (None,))[0])

    def register_pending(self, hashed_token: str, files: dict[str, str], created_at: float,
                         expires_at: float, kind: str = PHOTO) -> bool:
        """A station's capture is on its way: its link finds it (and says so) from now on.
        Done again after a crash, it changes nothing. False if it was deleted meanwhile
        (registered before a crash, then deleted by staff: its tombstone): it stays deleted.
        The capture is counted (booth.store.counts) with its row, once."""
        with self.db.write() as db:
            new = db.execute(
                "INSERT INTO captures (token_hash, filename, raw_filename, thumb_filename,"
                " poster_filename, kind, created_at, expires_at, pending)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (token_hash) DO NOTHING",
                (hashed_token, *_names(files), kind, created_at, expires_at)).rowcount > 0
            if new and db.execute("SELECT 1 FROM tombstones WHERE token_hash = ?",
                                  (hashed_token,)).fetchone() is None:
                counts.add(db, counts.CAPTURE + kind, 1, created_at)
        # Looked for after the insert: a delete of the old row commits its tombstone before
        # an insert waiting on that row goes on, so it is seen here; a delete still to come
        # finds the row, and the upload then finds it gone (mark_uploaded).
        if self.db.one("SELECT 1 FROM tombstones WHERE token_hash = ?",
                       (hashed_token,)) is None:
            return True
        self.db.execute("DELETE FROM captures WHERE token_hash = ?", (hashed_token,))
        return False

    def mark_uploaded(self, hashed_token: str) -> bool:
        """The photo's files are in the bucket: serve it. False if its row is gone (deleted
        while on its way)."""
        return self.db.execute("UPDATE captures SET pending = 0 WHERE token_hash = ?",
                               (hashed_token,)).rowcount > 0

    def _remove_leftovers(self) -> None:
        """Files a failed publish could not remove (its folder had turned read-only): removed
        at the next publish or purge, not only at the next start-up."""
        for path in list(self._leftovers):
            if remove(path) or not path.exists():
                self._leftovers.discard(path)

    def _capture(self, row: tuple) -> Capture:
        id_, filename, thumb, created_at, expires_at, downloads, pending, kind, poster = row
        local = self.photos
        return Capture(id_, None, filename, local / filename if local else None, created_at,
                       expires_at, downloads, local / thumb if local and thumb else None,
                       thumb, bool(pending), kind, poster)

    def open_photo(self, capture: Capture, *, thumb: bool = False) -> Photo | None:
        """The capture's picture as a JPEG (a photo's own, a clip's poster; or its thumbnail,
        falling back to that), opened for reading; None if it is gone. Opened now, so a
        delete from here on cannot cut a download short (POSIX keeps an open file
        readable; a bucket's stream is open)."""
        picture = capture.poster_filename if capture.kind == CLIP else capture.filename
        return self._open(capture, capture.thumb_filename if thumb else None, picture)

    def open_file(self, capture: Capture) -> Photo | None:
        """What the visitor downloads (a photo's JPEG, a clip's MP4), opened as open_photo's."""
        return self._open(capture, capture.filename)

    def _open(self, capture: Capture, *names: str | None) -> Photo | None:
        """The first of the capture's files named that is there."""
        if capture.pending:
            return None
        for name in names:
            if name:
                opened = self.photo_files.open(name)
                if opened is not None:
                    return opened
        return None

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

    def count_by_kind(self) -> dict[str, int]:
        """How many photos and clips there are (every kind, 0 for none)."""
        counts = dict.fromkeys(_SUFFIX, 0)
        counts.update(self.db.all("SELECT kind, COUNT(*) FROM captures GROUP BY kind"))
        return counts

    def count_since(self, since: float) -> int:
        return self.db.one("SELECT COUNT(*) FROM captures WHERE created_at >= ?", (since,))[0]

    def record_download(self, capture_id: int, now: float | None = None) -> None:
        with self.db.write() as db:
            found = db.execute("UPDATE captures SET downloads = downloads + 1 WHERE id = ?",
                               (capture_id,)).rowcount
            counts.add(db, counts.DOWNLOAD, found, now)
        if found:
            self.counted(counts.DOWNLOAD, 1)

    def _delete_where(self, where: str, args: tuple, event: str,
                      now: float | None = None) -> int:
        """Delete matching rows, then their files, and count them as `event` (a delete or a
        purge) at `now`. Row first: once the row is gone no link opens the photo, and a file
        that cannot be removed now (open on Windows) is unreferenced, so the next sweep
        takes it."""
        with self.db.write() as db:
            rows = db.execute(f"DELETE FROM captures WHERE {where} RETURNING filename, "
                              f"{', '.join(c for _, c in _EXTRA)}, token_hash, expires_at",
                              args).fetchall()
            if self.photos is None:  # the shared store: see waiting()
                for *_, hashed, expires_at in rows:
                    db.execute("INSERT INTO tombstones (token_hash, expires_at) VALUES (?, ?) "
                               "ON CONFLICT (token_hash) DO NOTHING", (hashed, expires_at))
            counts.add(db, event, len(rows), now)
        if rows:
            self.counted(event, len(rows))
        for *names, _, _ in rows:
            for name in names:
                if name:
                    self.photo_files.delete(name)
        return len(rows)

    def waiting(self, token: str, until: float, now: float | None = None) -> bool:
        """Whether an unknown link may be a photo still on its way from a station that cannot
        reach the shared store: its link says when it expires (`until`), and it was not
        deleted. Made-up links get the same answer; they open nothing."""
        now = time.time() if now is None else now
        if self.photos is not None or not now < until or not _TOKEN_RE.fullmatch(token):
            return False
        return self.db.one("SELECT 1 FROM tombstones WHERE token_hash = ?",
                           (token_hash(token),)) is None

    def delete(self, capture_ids: list[int], now: float | None = None) -> int:
        """A visitor's or the staff's delete (counted as one; a purge is counted apart)."""
        ids = [int(i) for i in capture_ids]
        if not ids:
            return 0
        return self._delete_where(f"id IN ({','.join('?' * len(ids))})", tuple(ids),
                                  counts.DELETE, now)

    def purge_expired(self, now: float | None = None) -> int:
        self._remove_leftovers()  # the janitor calls this every minute
        now = time.time() if now is None else now
        if self.photos is None:
            self.db.execute("DELETE FROM tombstones WHERE expires_at <= ?", (now,))
        return self._delete_where("expires_at <= ?", (now,), counts.PURGE, now)

    def purge_older_than(self, seconds: float, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return self._delete_where("created_at <= ?", (now - seconds,), counts.PURGE, now)

    def purge_all(self) -> int:
        return self._delete_where("1 = 1", (), counts.PURGE)
