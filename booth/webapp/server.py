"""Serve the web app with waitress (Windows and Linux alike), and purge expired photos.

waitress's defaults are made for a trusted network; the booth's phones are strangers on a
venue's Wi-Fi, so the limits are tightened here (see the README's security section):
- idle connections: waitress caps connections across all clients (not per client), so the
  cap is raised well above what a crowd of phones needs and a connection that sends and
  receives nothing is closed after CHANNEL_TIMEOUT; public deployments go behind a reverse
  proxy that caps connections per client;
- bodies: a declared body over MAX_BODY is refused with 413 as soon as its headers are
  read, and accepted bodies stay in memory (never spooled to a temp file on the photos'
  disk);
- no Server header, and waitress's own error pages (400, 413, 431, ...) carry the same
  security headers as the app's pages.
"""

from __future__ import annotations

import logging
import select
import threading
import time

import waitress
from flask import Flask
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask

from booth.errors import BoothError
from booth.store import Store
from booth.webapp import MAX_BODY
from booth.webapp.security import HEADERS

log = logging.getLogger(__name__)

PURGE_INTERVAL = 60.0
CHANNEL_TIMEOUT = 10  # seconds a connection may stay silent
SETTINGS = dict(
    ident=None,  # no Server header
    # Across all clients. select() cannot watch more than 512 sockets on Windows (1024 on
    # Linux, where poll() is used instead).
    connection_limit=500,
    asyncore_use_poll=hasattr(select, "poll"),
    channel_timeout=CHANNEL_TIMEOUT,
    cleanup_interval=2,  # how often silent connections are looked for
    max_request_body_size=MAX_BODY,
    # A body is counted against max_request_body_size after each read is buffered, so the
    # buffer must hold the largest body accepted plus one read (and a chunked body's chunk
    # headers) without spilling to a temp file; twice the limit leaves room for that.
    recv_bytes=8192,
    inbuf_overflow=2 * MAX_BODY,
    max_request_header_size=32 * 1024,
)


class _ErrorTask(ErrorTask):
    """waitress answers a request it cannot parse (400, 413, 431, ...) itself, outside the
    WSGI app: its page gets the app's security headers here."""

    def execute(self) -> None:
        self.response_headers.extend([*HEADERS.items(), ("Cache-Control", "no-store")])
        super().execute()


class _Channel(HTTPChannel):
    error_task_class = _ErrorTask


class WebServer:
    """waitress on host:port; port 0 picks a free port (see .port). `settings` override
    SETTINGS (tests use a short channel_timeout)."""

    def __init__(self, app: Flask, host: str, port: int, threads: int = 8,
                 **settings) -> None:
        # Behind a configured reverse proxy the app's ProxyFix reads X-Forwarded-*; without
        # one, waitress drops them before the app sees them.
        behind_proxy = bool(app.extensions["booth.config"].server.trusted_proxies)
        settings = {**SETTINGS, "clear_untrusted_proxy_headers": not behind_proxy, **settings}
        try:
            self._server = waitress.create_server(app, host=host, port=port, threads=threads,
                                                  **settings)
        except OSError as exc:
            raise BoothError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); another "
                             "program may use that port: pass --port with another one") from None
        self._server.channel_class = _Channel  # waitress makes one per accepted connection
        self.host = host
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.effective_port

    def serve_forever(self) -> None:
        self._server.run()

    def start(self) -> None:
        """Serve from a background thread (beside the station's window)."""
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.close()
        self._server.task_dispatcher.shutdown(timeout=2)


SWEEP_EVERY = 10  # rounds: the shared store's sweep lists the whole bucket
DELETE_INTERVAL = 5.0  # seconds between looks at the objects waiting to be deleted


class Janitor:
    """Deletes expired captures (file, thumbnail and row) every minute. On the shared store
    every process runs one: each expired row is deleted by exactly one of them (and its
    objects with it), ended rate-limit windows go too, every tenth round one of them (an
    advisory lock) sweeps the bucket for objects no row names, and every DELETE_INTERVAL
    they delete the objects of deleted photos that waited for the bucket to be back
    (booth.store.sweep.DeletionQueue)."""

    def __init__(self, store: Store, interval: float = PURGE_INTERVAL) -> None:
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="janitor", daemon=True)
        self._deletes_failing = False

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        rounds = 0
        due = time.monotonic()
        while True:
            if time.monotonic() >= due:
                self._purge(rounds)
                rounds += 1
                due = time.monotonic() + self.interval
            wait = due - time.monotonic()
            if self.store.shared:
                self._delete_queued()
                wait = min(wait, DELETE_INTERVAL)
            if self._stop.wait(max(wait, 0.0)):
                return

    def _purge(self, rounds: int) -> None:
        try:
            if self.store.shared:  # first: a purge of photos fails while the bucket is down
                self.store.rate_counts.purge(time.time())
            if purged := self.store.purge_expired():
                log.info("deleted %d expired photo(s)", purged)
            if self.store.shared and rounds % SWEEP_EVERY == 0:
                self.store.sweep()
        except Exception as exc:  # a locked or full disk must not stop the next round
            log.warning("purging expired photos failed: %s", exc)

    def _delete_queued(self) -> None:
        try:
            if deleted := self.store.delete_queued():
                log.info("deleted %d object(s) of deleted photos that waited for the bucket",
                         deleted)
            self._deletes_failing = False
        except Exception as exc:  # the bucket still down: once per outage in the log
            if not self._deletes_failing:
                log.warning("deleting objects that wait for the bucket failed: %s", exc)
            self._deletes_failing = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
