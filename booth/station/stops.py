"""Clean stops for `booth run` and `booth serve`: SIGTERM (a service manager) and SIGINT
(Ctrl-C) at any moment end the process with status 0, every thread joined first.

Why the care: on Python before 3.14 a daemon thread that returns from native code (OpenCV,
MediaPipe, ONNX Runtime, PyAV) while the interpreter finalizes is ended by pthread_exit,
whose unwinding through the library's C++ frames calls std::terminate: "terminate called
without an active exception", status -6 (issue 23: the screens' warm-up thread, inside
cv2.resize, at a SIGTERM just after start-up). So no thread may outlive the command.

A signal does not raise wherever the main thread happens to be. It is recorded, and
`check()` raises Stopped at the points the station passes often (between the start-up's
steps, once a loop pass), so a stop never cuts a step in half; inside `anywhere()` (a wait
with nothing half-done, like the web server's loop) it raises at once. Stopped is a
SystemExit with status 0: the finally blocks and exit stacks close what is open, in
reverse order. A second signal while stopping is logged and otherwise ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

# Not logging, nor anything else slow to import: `python -m booth` installs the handlers
# before it imports the rest of the booth, so the window in which a signal still kills the
# process outright is Python's own start (about 10 ms).

LAST_THREADS_SECONDS = 10.0  # for threads still ending once the command has returned


class Stopped(SystemExit):
    """Raised in the main thread for a stop signal; exits with status 0."""

    def __init__(self, name: str) -> None:
        super().__init__(0)
        self.name = name


class StopSignals:
    """SIGTERM and SIGINT, recorded; `check()` and `anywhere()` turn them into Stopped."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: str | None = None  # the first signal's name
        self._raised = False
        self._anywhere = 0  # depth of anywhere() blocks

    def install(self) -> None:
        for signum in self.SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        # It logs nothing before the stop is taken: at start-up it may run in the middle of
        # an import (of logging itself: a half-made module, an AttributeError, a traceback).
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
            if self._anywhere:
                self.check()
        elif self._raised:
            _log().info("%s while stopping: already stopping", name)

    def check(self) -> None:
        """Raise Stopped if a signal came (once: the stop's own clean-up goes on)."""
        if self.received is not None and not self._raised:
            self._raised = True
            _log().info("%s: stopping", self.received)
            raise Stopped(self.received)

    @contextlib.contextmanager
    def anywhere(self) -> Iterator[None]:
        """A block a signal may interrupt at any point."""
        self.check()
        self._anywhere += 1
        try:
            yield
        finally:
            self._anywhere -= 1


# The process's, installed by `python -m booth` and booth.cli.main; until then (tests,
# scripts) no signal reaches it and its checks never raise.
STOPS = StopSignals()
NEVER = StopSignals()  # never installed: for the station loop of `booth bench` and scripts


def _log():
    import logging

    return logging.getLogger(__name__)


def leave(status: int, seconds: float = LAST_THREADS_SECONDS) -> int:
    """The command's status, once the threads still ending have ended. Threads that only
    wait in the threading module (an Event or a Condition: the store's socket watchdog) are
    not waited for: they hold nothing and run no native code. A thread that does not end
    within `seconds` (a camera driver stuck in a read) would abort the interpreter's
    finalization (see above): then the process ends here, after flushing, without it."""
    # From here on the process only ends: a signal now would find Python's default handlers
    # (its finalization puts them back) and kill it with the signal's status instead of 0.
    # Ignored handlers it leaves alone.
    for signum in StopSignals.SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    deadline = time.monotonic() + seconds
    while (busy := _busy()) and time.monotonic() < deadline:
        busy[0].join(min(0.05, max(0.0, deadline - time.monotonic())))
    if not busy:
        return status
    import logging

    _log().warning("thread(s) %s did not end within %g s; leaving without Python's "
                   "finalization", ", ".join(thread.name for thread in busy), seconds)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _busy() -> list[threading.Thread]:
    """The other threads but those waiting in the threading module. (A thread started
    outside Python, a _DummyThread, cannot be joined, nor does it end with us.)"""
    dummy = getattr(threading, "_DummyThread", ())
    frames = sys._current_frames()
    busy = []
    for thread in threading.enumerate():
        if thread is threading.current_thread() or isinstance(thread, dummy):
            continue
        frame = frames.get(thread.ident)
        waiting = (frame is not None and frame.f_code.co_name == "wait"
                   and frame.f_code.co_filename == threading.__file__)
        if thread.is_alive() and not waiting:
            busy.append(thread)
    return busy
