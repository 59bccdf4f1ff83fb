"""The one clock the station and its sources read: monotonic seconds, the local date and time,
and timed waits.

Everything that keeps time takes a Clock, so a test can drive the real code with ManualClock,
advancing time in exact steps instead of sleeping and asserting on the wall clock.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes back."""
        ...

    def now(self) -> datetime:
        """Local date and time (the caption band's date, the date on screen)."""
        ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait until `event` is set (True) or `seconds` have passed (False)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(0.0, seconds))


SYSTEM = SystemClock()


class ManualClock:
    """Time that moves only when advance() is called; waits in other threads end when it
    has moved far enough (or their event is set)."""

    def __init__(self, start: float = 1000.0,
                 wall: datetime = datetime(2026, 12, 1, 14, 32)) -> None:
        self._t, self._start, self._wall = start, start, wall
        self._moved = threading.Condition()

    def monotonic(self) -> float:
        with self._moved:
            return self._t

    def now(self) -> datetime:
        with self._moved:
            return self._wall + timedelta(seconds=self._t - self._start)

    def advance(self, seconds: float) -> None:
        with self._moved:
            self._t += seconds
            self._moved.notify_all()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        with self._moved:
            deadline = self._t + seconds - 1e-9  # a wait of exactly one advance() ends there
            while not event.is_set() and self._t < deadline:
                # Setting an Event does not notify this condition: look again now and then.
                self._moved.wait(0.005)
            return event.is_set()
