"""The station: an explicit state machine and the loop that drives camera, pipeline and screen.

attract -> countdown -> capture (flash) -> processing -> result (or failed) -> attract

The loop never waits on slow work: the full-resolution photo is made, saved and given its QR
code on a worker thread while the screen keeps running.
"""

from __future__ import annotations

import enum
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from booth.display import Display
from booth.errors import BoothError
from booth.photo import band_height, caption_band, encode_jpeg, thumbnail
from booth.pipeline import Analysis, Pipeline
from booth.qr import qr_image
from booth.screens import Screens, dim, flash
from booth.sources import FrameSource
from booth.store import Store


class State(enum.Enum):
    ATTRACT = "attract"
    COUNTDOWN = "countdown"
    CAPTURE = "capture"
    PROCESSING = "processing"
    RESULT = "result"
    FAILED = "failed"


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
        elif self.state in (State.RESULT, State.FAILED):
            self._go(State.ATTRACT, now)

    def cancel(self, now: float) -> None:
        """Back to attract, e.g. when the camera is gone at the moment of the shutter."""
        self._go(State.ATTRACT, now)

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
                self.state is State.FAILED and elapsed >= FAILED_SECONDS):
            self._go(State.ATTRACT, now)
        return False


@dataclass
class Outcome:
    ok: bool
    link: str = ""
    screen: np.ndarray | None = None
    error: str = ""
    seconds: float = 0.0


class PhotoMaker:
    """Capture to result screen: final composite, JPEG, store, link, QR code, screen."""

    def __init__(self, pipeline: Pipeline, screens: Screens, store: Store, base_url: str, *,
                 retention_hours: float, jpeg_quality: int = 90, keep_raw: bool = False) -> None:
        self.pipeline, self.screens, self.store = pipeline, screens, store
        self.base_url = base_url
        self.retention_hours = retention_hours
        self.jpeg_quality = jpeg_quality
        self.keep_raw = keep_raw
        self._band: tuple[object, np.ndarray] | None = None

    def band(self, when: datetime) -> np.ndarray:
        lang = self.screens.language  # the visitor's: it cannot change after the press
        if self._band is None or self._band[0] != (when.date(), lang.code):
            h, w = self.pipeline.plate.shape[:2]
            self._band = ((when.date(), lang.code),
                          caption_band(w, band_height(h), self.pipeline.scene, when, lang))
        return self._band[1]

    def make(self, frame: np.ndarray, analysis: Analysis) -> Outcome:
        start = time.perf_counter()
        try:
            photo = np.vstack([self.pipeline.final(frame, analysis), self.band(datetime.now())])
            raw = encode_jpeg(frame, self.jpeg_quality) if self.keep_raw else None
            capture = self.store.publish(encode_jpeg(photo, self.jpeg_quality),
                                         ttl_seconds=self.retention_hours * 3600, raw_jpeg=raw,
                                         thumb_jpeg=encode_jpeg(thumbnail(photo), 80))
            link = f"{self.base_url}/p/{capture.token}"
            screen = self.screens.result(photo, qr_image(link, 600), link,
                                         datetime.fromtimestamp(capture.expires_at),
                                         self.retention_hours)
            return Outcome(True, link, screen, seconds=time.perf_counter() - start)
        except BoothError as exc:
            return Outcome(False, error=str(exc), seconds=time.perf_counter() - start)


class Station:
    def __init__(self, source: FrameSource, pipeline: Pipeline, screens: Screens,
                 maker: PhotoMaker, display: Display, machine: Machine, *,
                 max_captures: int | None = None,
                 save_screens: Path | None = None, out: TextIO = sys.stdout,
                 report: Callable[[dict], None] | None = None,
                 log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source, self.pipeline, self.screens = source, pipeline, screens
        self.maker, self.display, self.machine = maker, display, machine
        self.max_captures = max_captures
        self.save_screens = save_screens
        self.out, self.log, self.clock = out, log, clock
        self.report = report  # where the station's status goes (the staff page reads it)
        self.captures = 0
        self.camera_ok = False
        self.fps = 0.0
        self._frozen: np.ndarray | None = None  # the preview at the shutter

    def _freeze(self, frame: np.ndarray, analysis: Analysis) -> None:
        self._frozen = self.screens.plate_small.copy()
        self.pipeline.render(self._frozen, frame, analysis)

    def run(self) -> int:
        """Run until Esc/q, a closed window, or max_captures results shown; returns 0."""
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photo")
        job: Future[Outcome] | None = None
        last_seq, last_frame_at = 0, self.clock()
        frame: np.ndarray | None = None
        analysis: Analysis | None = None
        result_screen: np.ndarray | None = None
        screen = self.screens.base.copy()
        shown_state: State | None = None
        saved = 0
        reported_at = -1e9
        self.machine.reset(self.clock())
        try:
            while True:
                now = self.clock()
                if datetime.now().date() != self.screens.date:
                    self.screens.set_date(self.screens.plate_small, datetime.now())
                latest, seq = self.source.latest()
                if seq != last_seq and latest is not None:
                    dt = now - last_frame_at
                    self.fps = 0.9 * self.fps + 0.1 / dt if dt > 0 else self.fps
                    last_seq, last_frame_at, frame = seq, now, latest
                    analysis = self.pipeline.analyse(frame, now)
                # Sources watch themselves (a camera's watchdog); a still image stays "ok".
                self.camera_ok = frame is not None and self.source.status() == "ok"
                if self.machine.tick(now):
                    if analysis is None or frame is None or not self.camera_ok:
                        self.machine.cancel(now)
                    else:
                        job = worker.submit(self.maker.make, frame.copy(), analysis)
                        self._freeze(frame, analysis)
                if job is not None and job.done():
                    outcome = job.result()
                    job = None
                    self.machine.finished(outcome.ok, now)
                    if outcome.ok:
                        result_screen = outcome.screen
                        self.captures += 1
                        print(outcome.link, file=self.out, flush=True)
                        self.log(f"photo saved in {outcome.seconds * 1000:.0f} ms")
                    else:
                        self.log(f"capture failed: {outcome.error}")
                if self.report is not None and now - reported_at >= 2.0:
                    reported_at = now
                    status = {"camera": "ok" if self.camera_ok else "reconnecting",
                              "fps": round(self.fps, 1), "updated_at": time.time()}
                    worker.submit(self.report, status)  # off the frame loop: it writes a DB
                state = self.machine.state
                if state is State.ATTRACT and shown_state is not State.ATTRACT:
                    self.screens.set_language(self.screens.languages.default.code)
                if state is State.RESULT and result_screen is not None:
                    screen = result_screen
                else:
                    if screen is result_screen:
                        screen = self.screens.base.copy()
                    self._render(screen, state, now, frame, analysis)
                if state is not shown_state:
                    shown_state = state
                    if self.save_screens is not None:
                        saved += 1
                        cv2.imwrite(str(self.save_screens / f"{saved:03d}-{state.value}.png"),
                                    screen)
                    if (state is State.RESULT and self.max_captures is not None
                            and self.captures >= self.max_captures):
                        return 0
                self.display.show(screen)
                for event in self.display.poll(5 if seq == last_seq else 1):
                    if event == "quit":
                        return 0
                    if (self.machine.state is State.ATTRACT
                            and self.screens.language_event(event)):
                        continue  # a language button, not the shutter
                    if event == "press" or event.startswith("tap "):
                        self.machine.press(self.clock())
        finally:
            worker.shutdown(wait=True)

    def _render(self, screen: np.ndarray, state: State, now: float,
                frame: np.ndarray | None, analysis: Analysis | None) -> None:
        self.compose_preview(screen, state, frame, analysis)
        self.draw_ui(screen, state, now, analysis)

    def compose_preview(self, screen: np.ndarray, state: State, frame: np.ndarray | None,
                        analysis: Analysis | None) -> None:
        """The photo area: live composite, or the frozen shot while the photo is made."""
        lay = self.screens.layout
        screen[:] = self.screens.base
        if state in (State.CAPTURE, State.PROCESSING) and self._frozen is not None:
            lay.plate_region(screen)[:] = self._frozen
        elif frame is not None and analysis is not None:
            self.pipeline.render(lay.plate_region(screen), frame, analysis)

    def draw_ui(self, screen: np.ndarray, state: State, now: float,
                analysis: Analysis | None) -> None:
        screens, lay = self.screens, self.screens.layout
        if state is State.ATTRACT:
            screens.draw(screen, screens.attract)
            if self.camera_ok and analysis is not None and not analysis.people.found:
                screens.step_in.draw(screen)
        elif state is State.COUNTDOWN:
            screens.draw(screen, screens.countdown_panel)
            left = 1.0 - (now - self.machine.since) / self.machine.countdown_seconds
            screens.draw_countdown(screen, self.machine.countdown_number(now), left)
        elif state is State.CAPTURE:
            flash(screen, max(0.0, 1.0 - (now - self.machine.since) / FLASH_SECONDS))
        elif state is State.PROCESSING:
            dim(lay.plate_region(screen))
            screens.draw(screen, screens.processing_panel)
        elif state is State.FAILED:
            screens.draw(screen, screens.failed_panel)
        if not self.camera_ok and state in (State.ATTRACT, State.COUNTDOWN):
            dim(lay.plate_region(screen))
            screens.camera_banner.draw(screen)
