"""The printer output: photos printed through a CUPS queue ([printer]), on a thread of its own.

deliver() never prints on the photo worker and never fails the capture: it keeps the photo for
the result screen's Print button (or, with auto_print, sends it at once) and returns None.
Every print runs on the output's own thread: the queue's state first (a paused, missing or
blocked queue is not sent a job the visitor would wait for in vain), then one claim on the
day's count in the store (the daily limit holds across processes: staff reprints count in
the same row), then the page (booth.station.outputs.page) handed to `lp` with a timeout. What
happened is the shown photo's PrintState, which the result screen shows in one line; a fault
is logged as one WARNING and kept as the last error for staff.

A watcher thread asks CUPS for the queue's state every few seconds, writes it with the last
error and today's count into the store (booth.store.status.PrinterStatus: the staff page's
printer panel) and prints what staff asked for from the gallery (booth.store.prints).
Clips are not printed (their poster could be: see docs/printing.md).
"""

from __future__ import annotations

import enum
import io
import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from booth.clock import SYSTEM, Clock
from booth.config import PrinterConfig
from booth.errors import BoothError
from booth.station.graphics import to_pil
from booth.station.outputs import Kind, Product
from booth.station.outputs.cups import TIMEOUT, PrintFailed, QueueState, media, queue_state, submit
from booth.station.outputs.page import PAPERS, page_pdf
from booth.store import Store
from booth.store.status import PrinterStatus

log = logging.getLogger(__name__)
WATCH_SECONDS = 2.0  # how often the queue's state is asked and staff's requests taken
TITLE = "selfie-booth photo"  # the job's name in CUPS: never the photo's link or token


class PrintState(enum.Enum):
    """What the result screen says about printing the photo it shows."""

    OFFER = "offer"  # the Print button
    PRINTING = "printing"  # on its way to CUPS
    PRINTED = "printed"  # CUPS took the job
    UNAVAILABLE = "unavailable"  # "printing is unavailable, your photo is on your phone"
    USED_UP = "used up"  # the daily limit is reached
    NONE = "none"  # nothing to say (a clip)


@dataclass
class Shown:
    """The photo on the result screen, as far as printing goes."""

    picture: np.ndarray  # BGR, with its caption band
    state: PrintState = PrintState.OFFER
    asked: int = 0  # copies the visitor asked for
    seq: int = 0  # bumped at each change: the screen redraws


class PrinterOutput:
    def __init__(self, cfg: PrinterConfig, store: Store, *, clock: Clock = SYSTEM,
                 timeout: float = TIMEOUT, watch_seconds: float = WATCH_SECONDS) -> None:
        self.queue, self.store, self.clock, self.timeout = cfg.name, store, clock, timeout
        self.paper = PAPERS.get(cfg.paper)  # None: the queue's default
        self.copies, self.limit, self.auto = cfg.copies_per_photo, cfg.daily_limit, cfg.auto_print
        self.last_error = ""
        self.state = QueueState("unknown")
        self._media: tuple[str | None] | None = None  # asked of the queue once it answers
        self._lock = threading.Lock()
        self._shown: Shown | None = None
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="print")
        self._closed = threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(watch_seconds,),
                                         name="printer", daemon=True)
        self._watcher.start()

    # --- the station's side ---------------------------------------------------------------

    def deliver(self, product: Product) -> None:
        shown = Shown(product.picture) if product.kind is Kind.PHOTO else None
        with self._lock:
            self._shown = shown
        if shown is not None and self.auto:
            self.press(self.copies)
        return None

    def press(self, copies: int = 1) -> bool:
        """The Print button (touch or P): print the shown photo, at most copies_per_photo
        times in all; False when there is nothing to print. Returns at once."""
        with self._lock:
            shown = self._shown
            if (shown is None or shown.state in (PrintState.PRINTING, PrintState.USED_UP)
                    or shown.asked + copies > self.copies):
                return False
            shown.asked += copies
            self._set(shown, PrintState.PRINTING)
        self._jobs.submit(self._print, shown.picture, copies, "visitor", shown)
        return True

    def shown(self) -> tuple[PrintState, int, bool]:
        """For the result screen: what to say, a number that changes with it, and whether
        the Print button is there (another copy may be asked for)."""
        with self._lock:
            shown = self._shown
            if shown is None:
                return PrintState.NONE, 0, False
            more = (not self.auto and shown.asked < self.copies
                    and shown.state in (PrintState.OFFER, PrintState.PRINTED))
            return shown.state, shown.seq, more

    def _set(self, shown: Shown, state: PrintState) -> None:
        shown.state, shown.seq = state, shown.seq + 1

    # --- the printing thread --------------------------------------------------------------

    def _print(self, picture: np.ndarray | Image.Image, copies: int, who: str,
               shown: Shown | None = None) -> PrintState:
        start = time.perf_counter()
        try:
            state = self._sent(picture, copies, who, start)
        except Exception as exc:  # a printer's failure never reaches the visitor's photo
            log.exception("printing failed unexpectedly")
            self.last_error = self._when(f"{who} print: {exc}")
            state = PrintState.UNAVAILABLE
        if shown is not None:
            with self._lock:
                self._set(shown, state)
        return state

    def _sent(self, picture: np.ndarray | Image.Image, copies: int, who: str,
              start: float) -> PrintState:
        day = self.clock.now().date().isoformat()
        try:
            self.state = state = queue_state(self.queue, self.timeout)
            if not state.usable:
                raise PrintFailed(f"queue {self.queue!r}: {state.state}"
                                  + (f" ({state.message})" if state.message else ""))
            if not self.store.claim_prints(self.queue, day, copies, self.limit):
                log.info("print refused: the daily limit of %d prints is reached", self.limit)
                self.last_error = self._when(f"{who} print refused: the daily limit of "
                                             f"{self.limit} prints is reached")
                return PrintState.USED_UP
        except (PrintFailed, BoothError, sqlite3.Error) as exc:
            return self._failed(who, exc)
        try:
            if self._media is None:
                self._media = (media(self.queue, self.paper, self.timeout),)
            image = to_pil(picture) if isinstance(picture, np.ndarray) else picture
            job = submit(self.queue, page_pdf(image, self.paper or PAPERS["4x6in"]),
                         copies=copies, media_option=self._media[0], title=TITLE,
                         timeout=self.timeout)
        except PrintFailed as exc:
            self._give_back(day, copies)
            return self._failed(who, exc)
        log.info("print job %s accepted in %.0f ms (%s, %d cop%s)", job,
                 (time.perf_counter() - start) * 1000, who, copies, "y" if copies == 1 else "ies")
        return PrintState.PRINTED

    def _give_back(self, day: str, copies: int) -> None:
        try:
            self.store.give_back_prints(self.queue, day, copies)
        except (BoothError, sqlite3.Error) as exc:
            log.warning("printing: the day's count keeps %d print(s) not made: %s", copies, exc)

    def _failed(self, who: str, exc: Exception) -> PrintState:
        log.warning("printing unavailable (%s print): %s", who, exc)
        self.last_error = self._when(f"{who} print: {exc}")
        return PrintState.UNAVAILABLE

    def _when(self, text: str) -> str:
        return f"{self.clock.now():%Y-%m-%d %H:%M:%S} {text}"

    # --- the watcher: the queue's state for staff, and staff's prints ---------------------

    def _watch(self, every: float) -> None:
        while not self._closed.wait(every):
            try:
                self.watch_once()
            except Exception:  # the next round tries again
                log.exception("printer watcher")

    def watch_once(self) -> None:
        """One round: staff's requests sent to the printing thread, the status written."""
        try:
            requests = self.store.take_print_requests()
        except (BoothError, sqlite3.Error) as exc:
            log.warning("printing: staff's requests cannot be read: %s", exc)
            requests = []
        for capture_id in requests:
            self._staff_print(capture_id)
        if not requests:  # (a print asks the queue itself)
            self.state = queue_state(self.queue, self.timeout)
        day = self.clock.now().date().isoformat()
        try:
            PrinterStatus(self.queue, self.state.state, self.state.message, self.last_error,
                          self.store.prints_on(self.queue, day), self.limit,
                          time.time()).save(self.store)
        except (BoothError, sqlite3.Error) as exc:
            log.warning("printing: the printer's status cannot be written: %s", exc)

    def _staff_print(self, capture_id: int) -> None:
        capture = self.store.get(capture_id)
        opened = self.store.open_photo(capture) if capture and capture.kind == "photo" else None
        if opened is None:
            log.info("staff print: capture %d is gone or not a photo; nothing printed",
                     capture_id)
            return
        with opened.stream as stream:
            image = Image.open(io.BytesIO(stream.read()))
            image.load()
        self._jobs.submit(self._print, image, 1, "staff").result()

    def close(self) -> None:
        self._closed.set()
        self._jobs.shutdown(wait=True)
