"""The station's states and their timing: a pure state machine driven by the time the caller
passes in, so tests step it with exact times.

attract -> countdown -> capture (flash) -> processing -> result (or failed) -> attract
attract -> countdown -> nobody (no one clearly in front of the camera) -> attract
"""

from __future__ import annotations

import enum

import numpy as np


class State(enum.Enum):
    ATTRACT = "attract"
    COUNTDOWN = "countdown"
    CAPTURE = "capture"
    PROCESSING = "processing"
    RESULT = "result"
    FAILED = "failed"
    NOBODY = "nobody"  # the shutter found no one to photograph: nothing saved


FLASH_SECONDS = 0.35
FAILED_SECONDS = 6.0


class Machine:
    """Pure state logic, driven by a clock the caller passes in (so tests can step it)."""

    def __init__(self, countdown_seconds: float, result_seconds: float,
                 auto_capture_seconds: float | None = None, now: float = 0.0) -> None:
        self.countdown_seconds = countdown_seconds
        self.result_seconds = result_seconds
        self.auto_capture_seconds = auto_capture_seconds
        self.state, self.since = State.ATTRACT, now
        self._outcome: bool | None = None

    def reset(self, now: float) -> None:
        self._go(State.ATTRACT, now)
        self._outcome = None

    def _go(self, state: State, now: float) -> None:
        self.state, self.since = state, now

    def press(self, now: float) -> None:
        if self.state is State.ATTRACT:
            self._go(State.COUNTDOWN, now)
        elif self.state in (State.RESULT, State.FAILED, State.NOBODY):
            self._go(State.ATTRACT, now)

    def cancel(self, now: float) -> None:
        """Back to attract, e.g. when the camera is gone at the moment of the shutter."""
        self._go(State.ATTRACT, now)

    def nobody(self, now: float) -> None:
        """The shutter found no one clearly in front of the camera: say so, take nothing."""
        self._go(State.NOBODY, now)

    def finished(self, ok: bool, now: float) -> None:
        """The worker is done with the photo; shown once the flash is over."""
        self._outcome = ok
        if self.state is State.PROCESSING:
            self._show_outcome(now)

    def _show_outcome(self, now: float) -> None:
        self._go(State.RESULT if self._outcome else State.FAILED, now)
        self._outcome = None

    def countdown_number(self, now: float) -> int:
        left = self.countdown_seconds - (now - self.since)
        return max(1, int(np.ceil(left)))

    def tick(self, now: float) -> bool:
        """Advance by time; True exactly when the shutter fires."""
        elapsed = now - self.since
        if self.state is State.ATTRACT:
            if self.auto_capture_seconds is not None and elapsed >= self.auto_capture_seconds:
                self._go(State.COUNTDOWN, now)
        elif self.state is State.COUNTDOWN:
            if elapsed >= self.countdown_seconds:
                self._outcome = None
                self._go(State.CAPTURE, now)
                return True
        elif self.state is State.CAPTURE:
            if elapsed >= FLASH_SECONDS:
                if self._outcome is None:
                    self._go(State.PROCESSING, now)
                else:
                    self._show_outcome(now)
        elif (self.state is State.RESULT and elapsed >= self.result_seconds) or (
                self.state in (State.FAILED, State.NOBODY) and elapsed >= FAILED_SECONDS):
            self._go(State.ATTRACT, now)
        return False
