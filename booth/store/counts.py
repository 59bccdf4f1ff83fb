"""Counts for the staff's statistics: how many captures, downloads, deletes, purges, language
choices and camera drop-outs there were in each hour, and how long the camera was away.

Counts only, never who: a row is (hour, event, number), with no token, address or capture id,
so nothing in it identifies a visitor, and a purge of the photos leaves it as it is. Each
count is written where its event happens, in the same transaction as the event's own rows
where there is one (a saved capture, a download, a delete), so the two never disagree.

The station's own events (the camera away and back, a language picked on its screen) come
from its loop, which must never wait on a database: a CountRecorder keeps them in memory and
writes them on a thread of its own, again after an outage (they are kept until written).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from booth.errors import BoothError

if TYPE_CHECKING:
    from booth.store.interface import Database, Transaction

log = logging.getLogger(__name__)

HOUR = 3600
# The events counted (a language's is LANGUAGE + its code, a capture's CAPTURE + its kind).
CAPTURE, DOWNLOAD, DELETE, PURGE = "capture:", "download", "delete", "purge"
LANGUAGE, CAMERA_DROP, CAMERA_DOWN_SECONDS = "language:", "camera_drop", "camera_down_seconds"
_UPSERT = ("INSERT INTO counts (hour, event, n) VALUES (?, ?, ?) ON CONFLICT (hour, event) "
           "DO UPDATE SET n = counts.n + excluded.n")


def hour_of(when: float) -> int:
    """The hour a moment falls in, as the Unix time of its start (hours are UTC's, so a
    local day is whole hours wherever its offset is whole hours)."""
    return int(when // HOUR) * HOUR


def add(db: Database | Transaction, event: str, n: int = 1, when: float | None = None) -> None:
    """Count n events at `when` (now by default), in db's transaction if it is one."""
    if n:
        db.execute(_UPSERT, (hour_of(time.time() if when is None else when), event, int(n)))


def span(start: float, end: float) -> dict[int, int]:
    """Seconds from start to end in each hour they cover (what camera downtime counts)."""
    seconds: dict[int, int] = {}
    while start < end:
        hour = hour_of(start)
        upto = min(end, hour + HOUR)
        seconds[hour] = seconds.get(hour, 0) + round(upto - start)
        start = upto
    return {hour: n for hour, n in seconds.items() if n}


@dataclass(frozen=True)
class HourCount:
    hour: int  # Unix time of the hour's start
    event: str
    n: int


class Counts:
    """Mixed into Store: needs self.db, and self.listeners (called with (event, n) after each
    count is committed: the process's Prometheus metrics)."""

    db: Database
    listeners: list[Callable[[str, int], None]]

    def counted(self, event: str, n: int) -> None:
        """Tell the listeners about a count just committed."""
        for listener in self.listeners:
            listener(event, n)

    def count_event(self, event: str, n: int = 1, when: float | None = None) -> None:
        """One event of its own (a language switched to on a phone)."""
        add(self.db, event, n, when)
        self.counted(event, n)

    def add_counts(self, counts: dict[tuple[int, str], int]) -> None:
        """Several counts, (hour, event) -> n, in one transaction (a CountRecorder's)."""
        with self.db.write() as db:
            for (hour, event), n in counts.items():
                add(db, event, n, hour)

    def hour_counts(self, since: float, until: float) -> list[HourCount]:
        """Every count from the hour of `since` to before `until`, oldest first."""
        rows = self.db.all("SELECT hour, event, n FROM counts WHERE hour >= ? AND hour < ? "
                           "ORDER BY hour, event", (hour_of(since), until))
        return [HourCount(int(hour), event, int(n)) for hour, event, n in rows]


class CountRecorder:
    """The station's counts, written on a thread of its own (see the module's docstring):
    `record` returns at once; a failed write keeps them for the next try, 5 s later."""

    RETRY_SECONDS = 5.0

    def __init__(self, store) -> None:
        self.store = store
        self._waiting: Counter[tuple[int, str]] = Counter()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="counts", daemon=True)
        self._thread.start()

    def record(self, event: str, n: int = 1, when: float | None = None) -> None:
        with self._cond:
            self._waiting[(hour_of(time.time() if when is None else when), event)] += n
            self._cond.notify()

    def record_span(self, event: str, start: float, end: float) -> None:
        """The seconds from start to end, each in its own hour."""
        with self._cond:
            for hour, seconds in span(start, end).items():
                self._waiting[(hour, event)] += seconds
            self._cond.notify()

    def _write(self) -> bool:
        with self._cond:
            batch, self._waiting = self._waiting, Counter()
        if not batch:
            return True
        try:
            self.store.add_counts(dict(batch))
        except (sqlite3.Error, BoothError) as exc:  # busy, full or out of reach: later
            with self._cond:
                self._waiting.update(batch)
            log.debug("counts not written yet: %s", exc)
            return False
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
            if not self._write():
                with self._cond:
                    self._cond.wait_for(lambda: self._closed, self.RETRY_SECONDS)

    def close(self) -> None:
        """Stop the thread and write what is left (once: a store out of reach loses it)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5.0)
        with contextlib.suppress(Exception):
            self._write()
