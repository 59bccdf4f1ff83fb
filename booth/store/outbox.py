"""A station's outbox for the shared store: every capture is kept on the station's own disk
until the database and the bucket have it, so a network that is not there loses nothing.

A capture (a photo or a clip) is a few files (its JPEG or MP4, then a thumbnail, a raw frame,
a clip's poster) and a record, `<stem>.json`, written
last: an entry exists once its record does. The uploader takes entries oldest first:
1. it registers the capture's row as pending (the photo's link then says "on its way");
2. it puts the files in the bucket (the same names again after a crash: no duplicate);
3. it marks the row uploaded, and only then removes the entry.
A SIGKILL at any point leaves the entry, and the next start carries on from it. A row that
is gone at step 3 was deleted while on its way (a staff purge): its files leave the bucket.
So does a photo whose step 1 is refused: registered before a SIGKILL, then deleted (its
tombstone), it must not come back at the next start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from booth.errors import BoothError, StoreUnavailable
from booth.store.captures import PHOTO, short_id
from booth.store.files import TMP_PREFIX, fsync_dir, make_private_dir, remove, write_file

# Seconds between tries while a service is down. Short, so that every link works within
# seconds of the service's return (`scripts/load.py shared outage`: up to ~5 s with 8 s here).
MAX_BACKOFF = 2.0

log = logging.getLogger(__name__)


@dataclass
class Entry:
    record: Path
    token_hash: str
    created_at: float
    expires_at: float
    files: dict[str, str]  # what ("photo": the main file, "raw", "thumb", "poster") -> name
    registered: bool
    kind: str = PHOTO  # the capture's: a record without one is from before clips

    def data(self) -> dict:
        return {"token_hash": self.token_hash, "created_at": self.created_at,
                "expires_at": self.expires_at, "files": self.files,
                "registered": self.registered, "kind": self.kind}


def _mb(size: float) -> str:
    return f"{round(size / 1e6, 1):g}"


class OutboxFull(BoothError):
    """The outbox holds its limit: the capture is refused before anything is written."""


class Outbox:
    """limit: bytes the outbox may hold ([store] outbox_limit_mb): a disk filled by a long
    outage would stop more than the booth (the logs, the system)."""

    def __init__(self, folder: Path, limit: float = float("inf")) -> None:
        self.folder, self.limit = folder, limit
        make_private_dir(folder)
        self._clean()

    def size(self) -> int:
        """Bytes held now (counted, not tracked: the uploader removes while the station adds)."""
        return sum(e.stat().st_size for e in os.scandir(self.folder) if e.is_file())

    def _clean(self) -> None:
        """Files of a capture whose record was never written (killed while saving it)."""
        wanted = {name for e in self.entries() for name in e.files.values()}
        for path in self.folder.iterdir():
            if path.name.startswith(TMP_PREFIX) or (
                    path.suffix != ".json" and path.name not in wanted):
                remove(path)

    def add(self, files: dict[str, tuple[str, bytes]], *, token_hash: str,
            created_at: float, expires_at: float, kind: str = PHOTO) -> Entry:
        """files: what -> (name, bytes). Written and synced, then the record: all or none.
        OutboxFull, and nothing written, if they would take it past its limit."""
        held, adding = self.size(), sum(len(data) for _, data in files.values())
        if held + adding > self.limit:
            raise OutboxFull(
                f"the outbox is full ({_mb(held)} MB held, {_mb(self.limit)} MB allowed, "
                f"{len(self.entries())} capture(s) waiting for the shared store); no "
                "capture is kept until they go up: bring the network back, or raise [store] "
                "outbox_limit_mb")
        written: list[Path] = []
        stem = Path(files["photo"][0]).stem
        entry = Entry(self.folder / f"{stem}.json", token_hash, created_at, expires_at,
                      {what: name for what, (name, _) in files.items()}, False, kind)
        try:
            for name, data in files.values():
                write_file(self.folder, name, data, written)
            fsync_dir(self.folder)
            self._write_record(entry, written)
        except BaseException:
            for path in written:
                remove(path)
            raise
        return entry

    def _write_record(self, entry: Entry, written: list[Path] | None = None) -> None:
        write_file(self.folder, entry.record.name, json.dumps(entry.data()).encode(),
                   [] if written is None else written)
        fsync_dir(self.folder)

    def mark_registered(self, entry: Entry) -> None:
        entry.registered = True
        self._write_record(entry)

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def entries(self) -> list[Entry]:
        """Oldest first. A record that cannot be read is skipped (and left for a person)."""
        found = []
        for record in self.folder.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                d = json.loads(record.read_text(encoding="utf-8"))
                found.append(Entry(record, str(d["token_hash"]), float(d["created_at"]),
                                   float(d["expires_at"]), dict(d["files"]),
                                   bool(d["registered"]), str(d.get("kind", PHOTO))))
        return sorted(found, key=lambda e: e.created_at)

    def remove(self, entry: Entry) -> None:
        """The record first: a crash in between leaves files that _clean removes."""
        remove(entry.record)
        for name in entry.files.values():
            remove(self.folder / name)
        fsync_dir(self.folder)


class Uploader:
    """Moves a station's outbox into the shared store on a thread of its own, with retry
    and backoff while the database or the bucket cannot be reached."""

    def __init__(self, store, outbox: Outbox, *, clock=time.time) -> None:
        self.store, self.outbox, self.clock = store, outbox, clock
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="uploader", daemon=True)
        self.failing = ""  # why the last try failed ("" once it works again)
        self.failures = 0  # tries that failed (booth.store.metrics)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """A new entry: upload it now."""
        self._wake.set()

    def pending(self) -> int:
        return len(self.outbox.entries())

    def register(self, entry: Entry) -> bool:
        """Step 1: the link finds the photo (and says it is on its way). False, and the
        entry is gone, if the photo was deleted after an earlier start registered it."""
        if not entry.registered:
            if not self.store.register_pending(entry.token_hash, entry.files,
                                               entry.created_at, entry.expires_at, entry.kind):
                self._discard(entry)
                return False
            self.outbox.mark_registered(entry)
        return True

    def _discard(self, entry: Entry) -> None:
        """A photo deleted while on its way: its objects (any that went up) leave the bucket,
        its files the outbox."""
        for name in entry.files.values():
            self.store.photo_files.delete(name)
        self.outbox.remove(entry)
        log.info("capture %s was deleted while on its way; its files are gone",
                 short_id(entry.files["photo"]))

    def upload(self, entry: Entry) -> None:
        """Steps 2 and 3: the files into the bucket, then the row marked uploaded."""
        store, names = self.store, entry.files.values()
        for name in names:
            store.photo_files.put(name, self.outbox.read(name))
        if not store.mark_uploaded(entry.token_hash):
            self._discard(entry)
            return
        log.info("upload done: capture %s", short_id(entry.files["photo"]))
        self.outbox.remove(entry)

    def upload_all(self) -> int:
        """Every entry now, oldest first: all links registered first (the database may be
        up while the bucket is down), then the files. Raises StoreUnavailable at the first
        failure; returns how many photos went up."""
        entries = []
        for entry in self.outbox.entries():
            if entry.expires_at <= self.clock():
                self.outbox.remove(entry)  # its link has expired: nobody may see it any more
                log.warning("capture %s expired in the outbox before it went up; deleted",
                            short_id(entry.files["photo"]))
            else:
                entries.append(entry)
        entries = [entry for entry in entries if self.register(entry)]
        for entry in entries:
            self.upload(entry)
        return len(entries)

    def _run(self) -> None:
        delay = 0.0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.upload_all()
                if self.failing:
                    log.info("the shared store is back; the photos are uploading again")
                self.failing, delay = "", 0.0
            except StoreUnavailable as exc:
                if not self.failing:
                    log.warning("%s; the photos wait in the outbox and go up when it is back",
                                exc)
                self.failing, delay = str(exc), min(max(1.0, 2 * delay), MAX_BACKOFF)
                self.failures += 1
            except Exception as exc:  # a full disk, a broken record: try again later
                log.warning("uploading a photo failed: %s", exc)
                self.failing, delay = str(exc), MAX_BACKOFF
                self.failures += 1
            self._wake.wait(delay if self.failing else None)

    def stop(self, timeout: float) -> int:
        """Finish the pending uploads, waiting at most `timeout` seconds; returns how many
        entries are left for the next start (an upload cut short is simply done again)."""
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and self.pending() and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.1)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=1.0)
        return self.pending()
