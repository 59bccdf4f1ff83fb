"""A cap on how many threads of one kind, the web server's, may wait on the store at once.

waitress serves every page from a few threads (8). While the database or the bucket hangs,
each call waits out its deadline (booth.store.pg, booth.store.bucket); with no cap every
thread would soon be waiting, and the pages that need no store (`/`, the static files, the
language switch) would queue behind them. With the cap, at most LIMIT threads wait on each
service (the database; the photo files), so a hung bucket holds neither `/` nor the pages
that need only the database; a thread that finds them all taken gives up within WAIT (at
once while that service is known to fail) with StoreUnavailable, which a photo page answers
with 503 and Retry-After.

The web app caps its request threads (Gate.cap, from booth.webapp.create_app); the station,
the uploader and the janitor are never capped. Every call of the store's database and photo
files passes the gate (GatedDatabase, GatedFiles), so no call site has to remember it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from booth.errors import BoothError, StoreUnavailable

LIMIT = 3  # per service, of waitress's 8 threads: with both hung, 2 still serve the rest
WAIT = 0.25  # seconds a capped thread waits for its turn while the service works
# Seconds after a failed call during which a thread does not wait for a turn at all. (A
# thread turned away is no sign: under a crowd of healthy calls turns are often all taken.)
KNOWN_DOWN = 2.0


class _Service:
    """The turns at one service (the database, or the photo files)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.turns = threading.BoundedSemaphore(LIMIT)
        self.inside = threading.local()  # a call within a call takes no second turn
        self.failed_at = -KNOWN_DOWN


class Gate:
    def __init__(self) -> None:
        self._applies: Callable[[], bool] = lambda: False
        self.database, self.files = _Service("database"), _Service("photo storage")

    def cap(self, applies: Callable[[], bool]) -> None:
        """From now on, threads for which applies() is true wait on each service LIMIT at a
        time."""
        self._applies = applies

    @contextlib.contextmanager
    def passage(self, service: _Service) -> Iterator[None]:
        if getattr(service.inside, "yes", False) or not self._applies():
            yield
            return
        known_down = time.monotonic() - service.failed_at < KNOWN_DOWN
        if not service.turns.acquire(timeout=0 if known_down else WAIT):
            raise StoreUnavailable(f"{service.name}: {LIMIT} requests wait on it already")
        service.inside.yes = True
        try:
            yield
        except StoreUnavailable:
            service.failed_at = time.monotonic()
            raise
        finally:
            service.inside.yes = False
            service.turns.release()


class GatedDatabase:
    """booth.store.interface.Database (and SharedDatabase) through a Gate."""

    def __init__(self, db, gate: Gate) -> None:
        self.db, self.gate = db, gate

    def __getattr__(self, name: str):  # the back-end's own members (tests, tools)
        return getattr(self.db, name)

    def execute(self, sql: str, args: tuple = ()):
        with self.gate.passage(self.gate.database):
            return self.db.execute(sql, args)

    def one(self, sql: str, args: tuple = ()) -> tuple | None:
        with self.gate.passage(self.gate.database):
            return self.db.one(sql, args)

    def all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.gate.passage(self.gate.database):
            return self.db.all(sql, args)

    @contextlib.contextmanager
    def write(self):
        with self.gate.passage(self.gate.database), self.db.write() as transaction:
            yield transaction

    @contextlib.contextmanager
    def exclusive(self, name: str):
        with self.gate.passage(self.gate.database), self.db.exclusive(name) as mine:
            yield mine

    def error(self, exc: Exception) -> BoothError:
        return self.db.error(exc)

    def close(self) -> None:
        self.db.close()


class GatedFiles:
    """booth.store.interface.PhotoFiles through a Gate."""

    def __init__(self, files, gate: Gate) -> None:
        self.files, self.gate = files, gate

    def __getattr__(self, name: str):
        return getattr(self.files, name)

    def put(self, name: str, data: bytes) -> None:
        with self.gate.passage(self.gate.files):
            self.files.put(name, data)

    def open(self, name: str):
        with self.gate.passage(self.gate.files):
            return self.files.open(name)

    def delete(self, name: str) -> bool:
        with self.gate.passage(self.gate.files):
            return self.files.delete(name)

    def listing(self) -> dict[str, float]:
        with self.gate.passage(self.gate.files):
            return self.files.listing()
