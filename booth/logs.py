"""The booth's log: one line per event on stderr, readable in a terminal and in systemd's
journal, with the chatter of libraries and the warnings clients can cause kept in bounds.
booth.cli.main calls setup_logging once; every module logs to `logging.getLogger(__name__)`."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

# Libraries whose INFO and DEBUG lines are chatter at a museum (a line per request or retry),
# at this level unless --verbose. psycopg's pool warns at every failed reconnection (dozens a
# minute while the server is down): the uploader and the web app say once, in their own
# words, that the database is out of reach.
_NOISY = {"waitress": logging.WARNING, "urllib3": logging.WARNING, "psycopg": logging.WARNING,
          "psycopg.pool": logging.ERROR, "botocore": logging.WARNING, "boto3": logging.WARNING,
          "s3transfer": logging.WARNING}
# Even with --verbose: botocore's DEBUG dumps every request, body (a whole JPEG) and all.
_VERBOSE_CAP = {"botocore": logging.INFO, "boto3": logging.INFO, "s3transfer": logging.INFO}
# journald's priorities (sd-daemon(3)): a "<N>" prefix sets the line's level in the journal.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class _OneLineFormatter(logging.Formatter):
    """One event, one line: a line break inside a message (a library logging a client's path
    as it came, as waitress does) is written escaped, so no client writes a line of its own.
    A traceback that follows the message keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).replace("\r", "\\r").replace("\n", "\\n")


class _JournalFormatter(_OneLineFormatter):
    """Under systemd: no time stamp (the journal adds its own), the level as a priority."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


class ClientLineBound(logging.Filter):
    """Warnings a client can cause (the web app's: a refused request, a wrong password, a page
    while the store is out of reach; waitress's: a deep queue) are written at most LIMIT per
    WINDOW seconds. Past that they are counted, and the next one written is preceded by one
    line saying how many were left out. With each client's string cut to 200 characters
    (booth.webapp.security.quoted), a flood of bad requests adds at most LIMIT + 1 lines
    (about 10 kB) a minute to the log, however fast it comes."""

    LIMIT, WINDOW = 30, 60  # lines, seconds
    LOGGERS = ("booth.webapp", "waitress")

    def __init__(self, handler: logging.Handler, clock=time.monotonic) -> None:
        super().__init__()
        self.handler, self.clock = handler, clock
        self._lock = threading.Lock()
        self._window_start, self._written, self._left_out = -self.WINDOW, 0, 0

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.levelno < logging.WARNING or not record.name.startswith(self.LOGGERS)
                or getattr(record, "left_out", False)):
            return True
        with self._lock:
            now = self.clock()
            if now - self._window_start >= self.WINDOW:
                self._window_start, self._written = now, 0
            if self._written >= self.LIMIT:
                self._left_out += 1
                return False
            self._written += 1
            left_out, self._left_out = self._left_out, 0
        if left_out:
            self.handler.handle(logging.makeLogRecord({
                "name": "booth.webapp", "levelno": logging.WARNING, "levelname": "WARNING",
                "msg": "left out %d warning(s) caused by clients (at most %d per %d s are "
                       "logged)", "args": (left_out, self.LIMIT, self.WINDOW),
                "left_out": True}))
        return True


def setup_logging(level: int) -> None:
    """Every module logs to its own logger (`logging.getLogger(__name__)`); here, once, the
    lines go to stderr: one line per event, readable in a terminal and in the journal."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):  # set by systemd for a service's stdout/stderr
        handler.setFormatter(_JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_OneLineFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(ClientLineBound(handler))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    verbose = level <= logging.DEBUG
    for name, quiet in _NOISY.items():
        logging.getLogger(name).setLevel(_VERBOSE_CAP.get(name, logging.NOTSET) if verbose
                                         else quiet)
