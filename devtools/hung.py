"""Services that hang rather than refuse, and a crowd of phones that meets them (for
tests/test_store_hung.py and scripts/hung_store.py).

    with hung(pg_processes(pg_server)):    # PostgreSQL stopped by SIGSTOP: its sockets
        ...                                # accept and acknowledge, nothing answers
    with Crowd(port, token) as crowd:      # 10 phones on a photo, one more on `/`
        ...                                # crowd.photos, crowd.homes: what they got
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
import time
from collections.abc import Iterator


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
    return found


def pg_processes(pg_server) -> list[int]:
    """The postmaster and its backends (each connection's own process)."""
    postmaster = int((pg_server.data / "postmaster.pid").read_text().split()[0])
    return [postmaster, *_children(postmaster)]


def _continue(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def hung(pids: list[int], at_most: float = 12.0) -> Iterator[None]:
    """The processes stopped (not killed: their sockets stay open) for the block; continued
    at its end, or after at_most seconds if a call in the block hangs (as every call did
    before the fix)."""
    timer = threading.Timer(at_most, _continue, (pids,))
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        timer.start()
        yield
    finally:
        timer.cancel()
        _continue(pids)


def s3_processes(s3_server) -> list[int]:
    return [s3_server.process.pid, *_children(s3_server.process.pid)]


def get(port: int, path: str, method: str = "GET") -> tuple[float, float, int, str | None]:
    """(start, seconds, status, Retry-After) of one request on a new connection."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path)
        reply = conn.getresponse()
        reply.read()
        return start, time.monotonic() - start, reply.status, reply.getheader("Retry-After")
    finally:
        conn.close()


class Crowd:
    """CLIENTS phones asking for a photo's page and its image, in turn, until stopped; and
    one more asking for `/` every 0.2 s."""

    CLIENTS = 10

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.photos: list[tuple] = []
        self.homes: list[tuple] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._phone, args=(i,))
                         for i in range(self.CLIENTS)]
        self._threads.append(threading.Thread(target=self._home))

    def __enter__(self) -> Crowd:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _phone(self, i: int) -> None:
        paths = [f"/p/{self.token}", f"/p/{self.token}/photo.jpg"]
        while not self._stop.is_set():
            i += 1
            self.photos.append(get(self.port, paths[i % 2]))

    def _home(self) -> None:
        while not self._stop.wait(0.2):
            self.homes.append(get(self.port, "/"))
