"""Serve the web app with waitress (Windows and Linux alike), and purge expired photos."""

from __future__ import annotations

import sys
import threading

import waitress
from flask import Flask

from booth.errors import BoothError
from booth.store import Store

PURGE_INTERVAL = 60.0


class WebServer:
    """waitress on host:port; port 0 picks a free port (see .port)."""

    def __init__(self, app: Flask, host: str, port: int, threads: int = 8) -> None:
        try:
            self._server = waitress.create_server(app, host=host, port=port, threads=threads,
                                                  ident="selfie-booth")
        except OSError as exc:
            raise BoothError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); another "
                             "program may use that port: pass --port with another one") from None
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


class Janitor:
    """Deletes expired captures (file, thumbnail and row) every minute."""

    def __init__(self, store: Store, interval: float = PURGE_INTERVAL) -> None:
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="janitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                self.store.purge_expired()
            except Exception as exc:  # a locked or full disk must not stop the next round
                print(f"booth: warning: purging expired photos failed: {exc}", file=sys.stderr)
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
