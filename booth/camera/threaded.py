"""The base of the sources in booth.camera.files and booth.camera.cameras."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


def join_thread(thread: threading.Thread | None, timeout: float) -> None:
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)


class ThreadedSource:
    """What the sources here share: the newest frame under a lock, its sequence number, a
    status, and a thread that delivers frames."""

    name: str
    problem: str

    def __init__(self, name: str) -> None:
        self.name = name
        self.problem = ""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified with each new frame
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._status = "ok"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def latest(self) -> tuple[np.ndarray | None, int]:
        with self._lock:
            return self._frame, self._seq

    def wait(self, seq: int, seconds: float) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: self._seq > seq, max(0.0, seconds))

    def status(self) -> str:
        return self._status

    def close(self) -> None:
        self._stop.set()
        join_thread(self._thread, 2.0)

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> ThreadedSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _publish(self, frame: np.ndarray) -> None:
        with self._lock:
            self._frame = frame
            self._seq += 1
            self._arrived.notify_all()

    def _run_thread(self, target: Callable[..., None], *args: object) -> None:
        self._thread = threading.Thread(target=target, args=args, name=f"{self.name} source",
                                        daemon=True)
        self._thread.start()
