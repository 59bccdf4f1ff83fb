"""The photo store. By default, the station's own: JPEG files under data_dir/photos, one
SQLite row per capture, staff sessions, and the secrets that open photos in files of their
own. Configured with [store] database_url and photos_url, the shared store: rows (and the
secrets) in PostgreSQL, photos in an S3-compatible bucket, and on each station an outbox
that holds its photos until they are up (see booth.store.outbox).

Photos of visitors are personal data, so the store keeps these promises:
- a row only ever points at a complete file (files are written and synced before the row
  is committed; a crash leaves at worst an unreferenced file, never a torn one);
- every file in photos/ is referenced by a row, so a purge of rows reaches every photo
  (the sweep deletes leftovers at start-up);
- only the SHA-256 of each download token and staff session id is stored, and the session
  key lives outside the database: the database alone cannot open a photo;
- the data folder, photos/ and secrets/ are 0700, the files in them 0600.
On the shared store the same hold with "object" for "file", except the secrets: every server
must check the same staff cookies, so they are rows in the database, which is then guarded
like them.

Modules: interface (what the two back-ends share: Database, SharedDatabase, PhotoFiles),
files (atomic private files), photos (the data dir's photos), bucket (S3), keys (secret files
and rows), schema (numbered migrations for both databases), db (the SQLite connection), pg
(the PostgreSQL pool), captures, counts (the statistics' counts per hour), settings,
sessions, prints (printing's daily counts and staff's print requests), sweep, outbox (a
station's photos on their way, and the uploader), status (the station's health, which it
writes and the staff page reads), metrics (the process's Prometheus metrics), gate (how many
web threads may wait on the store at once). The
public interface is Store, open_store, Shared, Capture, Photo and TMP_PREFIX.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from booth.errors import BoothError, StoreUnavailable
from booth.store.captures import Capture, CaptureRows
from booth.store.counts import Counts
from booth.store.db import SqliteDatabase
from booth.store.files import TMP_PREFIX, make_private_dir, probe_writable, reason
from booth.store.gate import Gate, GatedDatabase, GatedFiles
from booth.store.interface import Database, PhotoFiles, SharedDatabase
from booth.store.keys import SecretFiles, SecretRows
from booth.store.photos import Photo, PhotoDir
from booth.store.prints import PrintRows
from booth.store.ratelimits import RateCounts
from booth.store.schema import SCHEMA_VERSION
from booth.store.sessions import StaffSessions
from booth.store.settings import Settings
from booth.store.sweep import DeletionQueue, sweep, sweep_bucket

__all__ = ["SCHEMA_VERSION", "TMP_PREFIX", "Capture", "Photo", "Shared", "Store",
           "StoreUnavailable", "open_store"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shared:
    """Where the shared store is: [store] database_url, photos_url, s3_endpoint_url."""

    database_url: str
    photos_url: str
    s3_endpoint_url: str = ""


class Store(CaptureRows, Counts, Settings, StaffSessions, PrintRows):
    """The data dir's store (SQLite and files), or with `shared` the shared one (PostgreSQL
    and a bucket). gentle=True for a process that runs beside a station (the web server
    alone): its start-up sweep leaves young files alone, since the station may be writing
    them. outbox=True for a station on the shared store: its photos wait in data_dir/outbox
    until the uploader (start_uploader) has put them in the shared store, outbox_limit bytes
    at most (past it a capture raises OutboxFull). rate_counts: the
    web app's rate limits in the shared database (None on the data dir's store, whose web
    app counts in memory). gate: every database and photo-file call passes it (the web app
    caps its threads there, booth.store.gate)."""

    def __init__(self, data_dir: Path | None, *, gentle: bool = False,
                 shared: Shared | None = None, outbox: bool = False,
                 outbox_limit: float = float("inf")) -> None:
        self.data_dir = None if data_dir is None else Path(data_dir)
        self._leftovers: set[Path] = set()
        self.outbox = self.uploader = self.rate_counts = self.deletions = None
        self.offline = ""  # the shared store: why it was out of reach at start
        self.listeners = []  # told of every count (booth.store.counts): the metrics
        self._bucket = None
        self._down: set[str] = set()  # what unreachable() found down last time
        self.gate = Gate()
        if shared is not None:
            self._open_shared(shared, outbox, outbox_limit)
            return
        self.photos = self.data_dir / "photos"
        self.db_path = self.data_dir / "booth.sqlite3"
        try:
            for folder in (self.data_dir, self.photos):
                make_private_dir(folder)
                # (The database and its WAL need the outer folder writable too.)
                probe_writable(folder)
            self.secrets = SecretFiles(self.data_dir / "secrets")
        except OSError as exc:
            raise _not_writable(self.data_dir, exc) from None
        self.photo_files: PhotoFiles = GatedFiles(PhotoDir(self.photos), self.gate)
        self.db: Database = GatedDatabase(SqliteDatabase(self.db_path, self.secrets), self.gate)
        try:
            self.sweep(gentle=gentle)
        except BaseException as exc:
            self.db.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise self.db.error(exc) from None
            raise

    def _open_shared(self, shared: Shared, outbox: bool, outbox_limit: float) -> None:
        # Imported here: a booth on its own data dir never loads psycopg or boto3.
        from booth.store.bucket import Bucket
        from booth.store.outbox import Outbox
        from booth.store.pg import PgDatabase

        self.photos = None
        if outbox:
            try:
                self.outbox = Outbox(self.data_dir / "outbox", outbox_limit)
            except OSError as exc:
                raise _not_writable(self.data_dir, exc) from None
        bucket = self._bucket = Bucket(shared.photos_url, shared.s3_endpoint_url)
        self.db = GatedDatabase(PgDatabase(shared.database_url), self.gate)
        # The queue outside the gate: a delete turned away by it is queued too, never lost.
        self.deletions = DeletionQueue(GatedFiles(bucket, self.gate), self.db)
        self.photo_files = self.deletions
        self.secrets = SecretRows(self.db)
        self.rate_counts = RateCounts(self.db)
        # Out of reach is not misconfigured: a station boots while the network is down and
        # takes photos into its outbox; `booth serve` answers 503 until the store is back.
        self.offline = "; ".join(part.offline for part in (self.db, bucket) if part.offline)
        if self.offline:
            log.warning("the shared store is offline: %s; %s", self.offline,
                        "the station keeps its photos and uploads them when it is back"
                        if outbox else "pages answer 503 until it is back")

    @property
    def shared(self) -> bool:
        return self.photos is None

    def start_uploader(self):
        """A station on the shared store: move its outbox up in the background."""
        from booth.store.outbox import Uploader

        self.uploader = Uploader(self, self.outbox)
        self.uploader.failing = self.offline  # said at start already: not again
        self.uploader.start()
        return self.uploader

    def sweep(self, gentle: bool = False) -> int:
        """See booth.store.sweep; returns how many files and rows it removed. On the shared
        store one process at a time sweeps (the others skip)."""
        if not self.shared:
            removed = sweep(self.db, self.data_dir, self.photos, gentle)
        else:
            db = self.db
            assert isinstance(db, SharedDatabase)  # the shared store's is PostgreSQL
            with db.exclusive("sweep") as mine:
                removed = sweep_bucket(db, self.photo_files, time.time()) if mine else 0
        if removed:
            log.info("sweep: removed %d leftover file(s) and row(s)", removed)
        return removed

    def delete_queued(self) -> int:
        """The shared store: delete the objects that waited for the bucket (see
        booth.store.sweep.DeletionQueue); returns how many."""
        return self.deletions.drain() if self.deletions is not None else 0

    def unreachable(self) -> list[str]:
        """The parts that do not answer now ("database", "bucket"), for /readyz; why is
        logged once each time a part goes down."""
        probes = [("database", lambda: self.db.one("SELECT 1 FROM settings LIMIT 1"))]
        if self._bucket is not None:
            probes.append(("bucket", self._bucket.check))
        down = []
        for part, probe in probes:
            try:
                probe()
            except Exception as exc:  # whatever it is, the part cannot serve
                down.append(part)
                if part not in self._down:
                    log.warning("readiness: the %s does not answer (%s)", part, exc)
        self._down = set(down)
        return down

    def close(self) -> None:
        if self.uploader is not None:
            self.uploader.stop(0)
        self.stop_owed_logouts()
        self.db.close()


def _not_writable(data_dir: Path, exc: OSError) -> BoothError:
    return BoothError(f"data dir {data_dir} is not writable ({reason(exc)}); "
                      "pass --data-dir with a folder you can write to")


def open_store(cfg, *, gentle: bool = False, station: bool = False) -> Store:
    """The store [store] configures: the shared one when database_url and photos_url are
    set, else the data dir's. station=True: a station, which keeps an outbox."""
    s = cfg.store
    if s.database_url or s.photos_url:
        shared = Shared(s.database_url, s.photos_url, s.s3_endpoint_url)
        return Store(cfg.data_path() if station else None, shared=shared, outbox=station,
                     outbox_limit=s.outbox_limit_mb * 1e6)
    return Store(cfg.data_path(), gentle=gentle)
