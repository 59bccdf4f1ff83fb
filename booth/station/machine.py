"""The station's states and their timing: a pure state machine driven by the time the caller
passes in, so tests step it with exact times.

attract -> countdown -> capture (flash) -> processing -> result (or failed) -> attract
attract -> countdown -> nobody (no one clearly in front of the camera) -> attract

A boomerang (a press of Kind.CLIP) records instead of flashing:
attract -> countdown -> recording (RECORD_SECONDS) -> processing -> result (or failed, nobody)
"""

from __future__ import annotations

import enum

import numpy as np

from booth.station.outputs import Kind


class State(enum.Enum):
    ATTRACT = "attract"
    COUNTDOWN = "countdown"
    CAPTURE = "capture"
    PROCESSING = "processing"
    RESULT = "result"
    FAILED = "failed"
    NOBODY = "nobody"  # the shutter found no one to photograph: nothing saved
    RECORDING = "recording"  # a boomerang's frames are being recorded


FLASH_SECONDS = 0.35
FAILED_SECONDS = 6.0
RECORD_SECONDS = 2.5  # a boomerang's recording: 5 s of clip, played there and back


class Machine:
    """Pure state logic, driven by a clock the caller passes in (so tests can step it)."""

    def __init__(self, countdown_seconds: float, result_seconds: float,
                 auto_capture_seconds: float | None = None, now: float = 0.0, *,
                 auto_kind: Kind = Kind.PHOTO, record_seconds: float = RECORD_SECONDS) -> None:
        self.countdown_seconds = countdown_seconds
        self.result_seconds = result_seconds
        self.auto_capture_seconds = auto_capture_seconds
        self.auto_kind = auto_kind  # what an auto-capture takes
        self.record_seconds = record_seconds
        self.state, self.since = State.ATTRACT, now
        self.kind = Kind.PHOTO  # of the capture under way (or the last one)
        self._outcome: bool | None = None

    def reset(self, now: float) -> None:
        self._go(State.ATTRACT, now)
        self._outcome = None

    def _go(self, state: State, now: float) -> None:
        self.state, self.since = state, now

    def press(self, now: float, kind: Kind = Kind.PHOTO) -> None:
        if self.state is State.ATTRACT:
            self.kind = kind
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
        """The worker is done with the photo; shown once the flash is over. During a
        recording: it failed (the camera dropped out), shown at once."""
        self._outcome = ok
        if self.state in (State.PROCESSING, State.RECORDING):
            self._show_outcome(now)

    def _show_outcome(self, now: float) -> None:
        self._go(State.RESULT if self._outcome else State.FAILED, now)
        self._outcome = None

    def countdown_number(self, now: float) -> int:
        left = self.countdown_seconds - (now - self.since)
        return max(1, int(np.ceil(left)))

    def recorded(self, now: float) -> float:
        """The share of the recording done (0 to 1)."""
        return min(1.0, max(0.0, (now - self.since) / self.record_seconds))

    def tick(self, now: float) -> bool:
        """Advance by time; True exactly when the shutter fires (a boomerang: its recording
        starts; it ends when the state leaves RECORDING)."""
        elapsed = now - self.since
        if self.state is State.ATTRACT:
            if self.auto_capture_seconds is not None and elapsed >= self.auto_capture_seconds:
                self.kind = self.auto_kind
                self._go(State.COUNTDOWN, now)
        elif self.state is State.COUNTDOWN:
            if elapsed >= self.countdown_seconds:
                self._outcome = None
                self._go(State.RECORDING if self.kind is Kind.CLIP else State.CAPTURE, now)
                return True
        elif self.state is State.RECORDING:
            if elapsed >= self.record_seconds:
                self._go(State.PROCESSING, now)
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
