"""The station: the loop that drives camera, pipeline, state machine and screen.

The loop never waits on slow work: the full-resolution photo is made, saved and given its QR
code on a worker thread while the screen keeps running. Nor does it work without cause: it
sleeps on the camera until a frame arrives (waking every POLL_SECONDS for keys, touches and
the countdown), analyses each frame once and draws only a screen that changed.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import cv2
import numpy as np

from booth.camera.sources import FrameSource, StillSource
from booth.clock import SYSTEM, Clock
from booth.errors import BoothError
from booth.station.boomerang import Loop, Recording
from booth.station.display import Display
from booth.station.events import Boomerang, Event, Press, PrintPhoto, Quit, Tap
from booth.station.machine import Machine, State
from booth.station.outputs import Kind, Output, Product
from booth.station.photo import band_height, caption_band, encode_jpeg, thumbnail
from booth.station.qr import qr_matrix
from booth.station.renderer import Renderer, View
from booth.station.screens import Screens
from booth.station.stops import NEVER, StopSignals
from booth.store.metrics import Metrics
from booth.store.status import StationStatus
from booth.vision.pipeline import Analysis, Pipeline

if TYPE_CHECKING:
    from booth.station.printpanel import PrintPanel

POLL_SECONDS = 0.010  # keys and touches are answered within this, plus one step
# OpenCV's own thread pool while the station runs. Its workers spin between the many small
# calls of a frame: at 30 fps they cost about 0.05 of a core more than they save. The second
# core has work of its own: the camera's reader thread, the model's threads, the photo.
OPENCV_THREADS = 1
REFRESH_SECONDS = 0.2  # an unchanged screen is shown again this often: the window stays live

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    ok: bool
    link: str = ""
    screen: np.ndarray | None = None
    error: str = ""
    seconds: float = 0.0
    made_from: str = "the preview"  # or the still, and why not when there was none
    capture: str = ""  # its short id, for the log
    nobody: str = ""  # why nobody is in the picture it was made from: nothing saved
    frames: list[np.ndarray] | None = None  # a clip's, for its loop on the result screen
    fps: float = 0.0  # the clip's


class PhotoMaker:
    """Capture to result screen: the final composite and its files (a Product), the outputs
    (booth.station.outputs: the store and its link today), then the result screen with the
    link's QR code."""

    def __init__(self, pipeline: Pipeline, screens: Screens, outputs: Sequence[Output], *,
                 retention_hours: float, jpeg_quality: int = 90, keep_raw: bool = False,
                 clock: Clock = SYSTEM) -> None:
        self.pipeline, self.screens, self.outputs = pipeline, screens, list(outputs)
        self.clock = clock
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

    def take(self, frame: np.ndarray, analysis: Analysis,
             capture_still: Callable[[], np.ndarray | None] | None = None) -> Outcome:
        """The photo at the shutter: from a still taken now (`capture_still`: the source's,
        see booth.camera.sources.StillSource) where one comes and fits, else from the preview
        frame and its analysis."""
        start = time.perf_counter()
        made_from = "the preview"
        if capture_still is not None:
            try:
                still = capture_still()
            except Exception as exc:  # a back-end's failure costs the still, never the photo
                still, made_from = None, f"the preview (the still failed: {exc})"
            if still is not None:
                frame, analysis, made_from = self._from_still(frame, analysis, still)
        outcome = self.make(frame, analysis)
        outcome.made_from, outcome.seconds = made_from, time.perf_counter() - start
        return outcome

    def _from_still(self, frame: np.ndarray, analysis: Analysis,
                    still: np.ndarray) -> tuple[np.ndarray, Analysis, str]:
        (h, w), (sh, sw) = frame.shape[:2], still.shape[:2]
        size = f"{sw}x{sh}"
        if abs(sw * h - sh * w) > 0.01 * w * sh:  # another framing: the placement would not fit
            return frame, analysis, f"the preview (the {size} still has not its shape)"
        still_analysis = self.pipeline.still_analysis(still, analysis)
        if still_analysis is None:
            return frame, analysis, f"the preview (nobody found in the {size} still)"
        return still, still_analysis, f"a {size} still"

    def photo(self, frame: np.ndarray, final: np.ndarray, when: datetime) -> Product:
        """The photo as every output takes it: the final composite above its caption band,
        as a JPEG, its thumbnail and (keep_raw) the camera's frame."""
        picture = np.vstack([final, self.band(when)])
        raw = encode_jpeg(frame, self.jpeg_quality) if self.keep_raw else None
        return Product(Kind.PHOTO, encode_jpeg(picture, self.jpeg_quality),
                       encode_jpeg(thumbnail(picture), 80), picture, when,
                       self.retention_hours, raw)

    def make(self, frame: np.ndarray, analysis: Analysis) -> Outcome:
        start = time.perf_counter()
        try:
            analysis = self.pipeline.confirm(frame, analysis)
            final = self.pipeline.shown_final(frame, analysis) if analysis.drawable else None
            if final is None:
                why = ("no body in it" if not analysis.drawable
                       else "the person would hardly show in the photo")
                return Outcome(False, nobody=why, seconds=time.perf_counter() - start)
            return self._deliver(self.photo(frame, final, self.clock.now()), start)
        except BoothError as exc:
            return Outcome(False, error=str(exc), seconds=time.perf_counter() - start)

    def clip(self, recording: Recording) -> Outcome:
        """A boomerang once recorded: the clip (the rest of its encoding), its product (the
        MP4, its poster, a thumbnail; the poster's frame on the result screen), the outputs;
        the outcome keeps the frames for the result screen's loop."""
        start = time.perf_counter()
        try:
            clip = recording.recorder.finish()
            picture = recording.frames[0]
            product = Product(Kind.CLIP, clip.mp4, encode_jpeg(thumbnail(picture), 80),
                              picture, recording.taken_at, self.retention_hours,
                              poster=clip.poster)
            outcome = self._deliver(product, start)
            outcome.frames, outcome.fps = recording.frames, float(clip.fps)
            return outcome
        except BoothError as exc:
            return Outcome(False, error=str(exc), seconds=time.perf_counter() - start)

    def _deliver(self, product: Product, start: float) -> Outcome:
        # The link the QR code opens: the first output's that gives one (the store's).
        shown = [d for d in (output.deliver(product) for output in self.outputs) if d]
        if not shown:
            raise BoothError(f"no output gave the {product.kind.value} a link for its QR code "
                             f"(the station has no store output)")
        link, expires = shown[0].link, shown[0].expires
        screen = self.screens.result(product.picture, qr_matrix(link), link, expires,
                                     self.retention_hours, product.kind)
        return Outcome(True, link, screen, seconds=time.perf_counter() - start,
                       capture=shown[0].capture_id)


class Station:
    """The station loop, one step at a time: `step()` takes the newest frame, advances the
    state machine, collects a finished photo and draws the screen; `run()` shows what each
    step drew and passes the display's presses in. `booth bench` and scripts/soak.py call
    step() themselves."""

    def __init__(self, source: FrameSource, renderer: Renderer, maker: PhotoMaker,
                 machine: Machine, *, clock: Clock = SYSTEM, out: TextIO = sys.stdout,
                 report: Callable[[StationStatus], None] | None = None,
                 printing: PrintPanel | None = None,
                 metrics: Metrics | None = None) -> None:
        self.source, self.renderer, self.maker, self.machine = source, renderer, maker, machine
        self.printing = printing  # the result screen's Print button and line, with a printer
        self.pipeline, self.screens = renderer.pipeline, renderer.screens
        self.out, self.clock = out, clock
        self.report = report  # where the station's status goes (the staff page reads it)
        self.metrics = metrics or Metrics()  # what /metrics and the statistics count
        self.captures = 0
        self.camera_ok = False
        self.fps = 0.0
        self.frame: np.ndarray | None = None
        self.analysis: Analysis | None = None
        self.new_frame = False  # the last step analysed a frame it had not seen before
        self.changed = True  # the last step's screen differs from the one before
        self.timings = {"read": 0.0, "analyse": 0.0}  # seconds, of the last step
        self.frame_seq, self._seen_seq = 0, 0  # the frame analysed; the newest one read
        self._frame_at = clock.monotonic()
        self._said_down = False
        self.outcome: Outcome | None = None  # of the newest photo
        self._result_screen: np.ndarray | None = None
        self._recording: Recording | None = None  # a boomerang's, while it records
        self._loop: Loop | None = None  # a boomerang's on the result screen
        self._worker: ThreadPoolExecutor | None = None
        self._job: Future[Outcome] | None = None
        self._reporter: ThreadPoolExecutor | None = None
        self._report_job: Future[None] | None = None
        self._reported_at = -1e9
        self._last_state: State | None = None

    def __enter__(self) -> Station:
        self._opencv_threads = cv2.getNumThreads()
        cv2.setNumThreads(OPENCV_THREADS)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="photo")
        # Its own thread: a status report neither waits behind a photo being made nor holds
        # one up while the database is slow.
        self._reporter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report")
        self.machine.reset(self.clock.monotonic())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._worker is not None:
            if self._recording is not None:  # a boomerang cut short: nothing is saved
                self._recording.close()
                self._recording = None
            self._worker.shutdown(wait=True)  # a photo being made is saved, row and file
            self._reporter.shutdown(wait=True)
            self._worker = self._reporter = None
            self.metrics.station_stopped(self.clock.now().timestamp())
            cv2.setNumThreads(self._opencv_threads)

    @property
    def boomerang(self) -> bool:
        """Whether the attract screen offers a boomerang."""
        return bool(self.screens.kind_buttons)

    def press(self, kind: Kind = Kind.PHOTO) -> None:
        if kind is Kind.CLIP and not self.boomerang:
            return
        self.machine.press(self.clock.monotonic(), kind)

    def print_photo(self) -> None:
        """The Print button or P on the result screen (the print itself runs elsewhere)."""
        if self.printing is not None and self.machine.state is State.RESULT:
            self.printing.press()

    def choose_language(self, event: Event) -> bool:
        """A language button or key on the attract screen (True: it chose one, so it is no
        shutter press); counted for the staff's statistics."""
        if self.machine.state is not State.ATTRACT or not self.screens.language_event(event):
            return False
        self.metrics.language(self.screens.language.code, self.clock.now().timestamp())
        return True

    def step(self) -> np.ndarray:
        """One pass of the loop; returns the screen to show (valid until the next step)."""
        assert self._worker is not None, "use the station as a context manager"
        now = self.clock.monotonic()
        today = self.clock.now()
        if today.date() != self.screens.date:
            self.screens.set_date(self.screens.plate_small, today)
        t0 = time.perf_counter()
        latest, seq = self.source.latest()
        t1 = time.perf_counter()
        self._seen_seq = seq
        # While a photo is made the screen shows the shutter's frame: the cores go to the photo.
        self.new_frame = seq != self.frame_seq and latest is not None and self._job is None
        if self.new_frame:
            dt = now - self._frame_at
            self.fps = 0.9 * self.fps + 0.1 / dt if dt > 0 else self.fps
            self.frame_seq, self._frame_at, self.frame = seq, now, latest
            self.analysis = self.pipeline.preview_analysis(latest, now)
        self.timings["read"], self.timings["analyse"] = t1 - t0, time.perf_counter() - t1
        if self.new_frame:
            self.metrics.frame(self.timings["analyse"])
        self._watch_camera()
        if self.machine.tick(now):
            self._shutter(now)
        if self._recording is not None:
            self._record(now)
        self._collect(now)
        self._report(now)
        state = self.machine.state
        if state is State.ATTRACT and self._last_state is not State.ATTRACT:
            self.screens.set_language(self.screens.languages.default.code)  # the next visitor's
        self._last_state = state
        if state is State.RESULT and self._result_screen is not None:
            self.changed = self.renderer.forget()
            if self.printing is not None:
                self.changed = self.printing.draw(self._result_screen) or self.changed
            if self._loop is not None:
                self.changed = self._loop.draw(self._result_screen, now) or self.changed
            return self._result_screen
        self._loop = None
        since = now - self.machine.since
        ring = {State.COUNTDOWN: 1.0 - since / self.machine.countdown_seconds,
                State.RECORDING: self.machine.recorded(now)}.get(state, 0.0)
        screen = self.renderer.draw(View(
            state, self.frame, self.analysis, self.camera_ok,
            countdown=self.machine.countdown_number(now) if state is State.COUNTDOWN else 0,
            countdown_left=ring, since=since if state is State.CAPTURE else 0.0,
            clip=self.machine.kind is Kind.CLIP))
        self.changed = self.renderer.changed
        return screen

    def _watch_camera(self) -> None:
        # Sources watch themselves (a camera's watchdog); a still image stays "ok".
        self.camera_ok = self.frame is not None and self.source.status() == "ok"
        self.metrics.camera(self.camera_ok, self.clock.now().timestamp())
        if not self.camera_ok and not self._said_down:
            self._said_down = True
            log.warning("Camera unavailable, reconnecting: %s",
                        self.source.problem or "waiting for its first frame")
        elif self.camera_ok and self._said_down:
            self._said_down = False
            log.info("camera back: %s", self.source.name)

    def _shutter(self, now: float) -> None:
        if self.analysis is None or self.frame is None or not self.camera_ok:
            self.machine.cancel(now)
            return
        if self.machine.state is State.RECORDING:  # a boomerang: nobody is seen at its end
            try:
                self._recording = Recording(self.pipeline, self.maker.band(self.clock.now()),
                                            round(self.fps), self.clock.now())
            except BoothError as exc:  # a camera too slow for a clip
                self.machine.finished(False, now)
                log.warning("boomerang failed: %s", exc)
            return
        if not self.analysis.people.confident:  # an empty room, a blurred hand: no photo
            self.machine.nobody(now)
            self.metrics.nobody()
            log.info("shutter: nobody clearly in front of the camera; no photo taken")
            return
        # A still (a camera's mode switch) may take seconds: it is taken on the worker.
        still = self.source.capture_still if isinstance(self.source, StillSource) else None
        self._job = self._worker.submit(self.maker.take, self.frame.copy(), self.analysis, still)
        self.renderer.freeze(self.frame, self.analysis)

    def _record(self, now: float) -> None:
        """A boomerang's step: each new frame into the clip while recording; at its end, the
        clip made on the worker (or, with nobody in any frame, nothing)."""
        recording = self._recording
        if self.machine.state is State.RECORDING:
            if not self.camera_ok:  # mid-recording: nothing is saved
                recording.cancel()
                self._recording = None
                self.machine.finished(False, now)
                log.warning("boomerang failed: the camera dropped out while recording; "
                            "nothing saved")
            elif self.new_frame:
                recording.add(self.frame, self.analysis)
            return
        self._recording = None
        if not recording.someone:
            recording.cancel()
            self.machine.nobody(now)
            self.metrics.nobody()
            log.info("boomerang: nobody clearly in front of the camera; no clip made")
            return
        log.info("boomerang recorded: %d frames, composited in %.1f ms a frame (median)",
                 len(recording.frames), 1000 * float(np.median(recording.seconds)))
        self._job = self._worker.submit(self.maker.clip, recording)
        self.renderer.freeze(self.frame, self.analysis)

    def _collect(self, now: float) -> None:
        if self._job is None or not self._job.done():
            return
        self.outcome = outcome = self._job.result()
        self._job = None
        if outcome.nobody:  # the second look at the picture found no one: say so
            self.machine.nobody(now)
            self.metrics.nobody()
            log.info("shutter: nobody in %s (%s); no photo taken", outcome.made_from,
                     outcome.nobody)
            return
        self.machine.finished(outcome.ok, now)
        if outcome.ok:
            self._result_screen = outcome.screen
            if outcome.frames:
                self._loop = Loop(outcome.frames, outcome.fps, self.screens.layout, now)
                outcome.frames = None  # the loop's alone: let go with it
            self.captures += 1
            self.metrics.captured("clip" if self._loop is not None else "photo",
                                  outcome.seconds)
            print(outcome.link, file=self.out, flush=True)
            if self._loop is not None:
                log.info("boomerang saved in %.0f ms after its recording, capture %s",
                         outcome.seconds * 1000, outcome.capture)
            else:
                log.info("photo saved in %.0f ms, capture %s, made from %s",
                         outcome.seconds * 1000, outcome.capture, outcome.made_from)
        else:
            self.metrics.error("station")
            log.warning("capture failed: %s", outcome.error)

    def _report(self, now: float) -> None:
        if self.report is None or now - self._reported_at < 2.0:
            return
        if self._report_job is not None and not self._report_job.done():
            return  # the last one still waits on the database: no queue of stale reports
        self._reported_at = now
        status = StationStatus(camera="ok" if self.camera_ok else "reconnecting",
                               fps=round(self.fps, 1), updated_at=time.time())
        self._report_job = self._reporter.submit(self.report, status)  # it writes a database

    def run(self, display: Display, *, max_captures: int | None = None,
            save_screens: Path | None = None, stops: StopSignals = NEVER) -> int:
        """Until Esc/q, a closed window, or max_captures results shown; returns 0. A stop
        signal (`stops`) raises Stopped between two passes, never inside one."""
        shown_state: State | None = None
        saved = 0
        shown_at = -1e9
        with self:
            while True:
                stops.check()
                screen = self.step()
                now = self.clock.monotonic()
                state = self.machine.state
                if state is not shown_state:
                    shown_state = state
                    if save_screens is not None:
                        saved += 1
                        cv2.imwrite(str(save_screens / f"{saved:03d}-{state.value}.png"),
                                    screen)
                    if (state is State.RESULT and max_captures is not None
                            and self.captures >= max_captures):
                        return 0
                if self.changed or now - shown_at >= REFRESH_SECONDS:
                    display.show(screen)
                    shown_at = now
                for event in display.poll(1):
                    match event:
                        case Quit():
                            return 0
                        case _ if self.choose_language(event):
                            pass  # a language button, not the shutter
                        case Boomerang():
                            self.press(Kind.CLIP)
                        case PrintPhoto():
                            self.print_photo()
                        case Tap(x, y) if (self.printing is not None and self.machine.state
                                           is State.RESULT and self.printing.at(x, y)):
                            self.print_photo()
                        case Tap(x, y) if self.screens.kind_at(x, y) is not None:
                            self.press(self.screens.kind_at(x, y))
                        case Press() | Tap():
                            self.press()
                # The newest frame read, not analysed (none is, during a photo): no spinning.
                self.source.wait(self._seen_seq, POLL_SECONDS)
