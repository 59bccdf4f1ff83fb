"""The one CPU meter of the contributor tools: a process's user + system CPU seconds (all its
threads, not its children), which another program on the machine does not inflate as it
inflates the wall clock.

    before = cpu_seconds(pid)           # another process (psutil, from /proc)
    ... ; cores = (cpu_seconds(pid) - before) / wall_seconds
    cpu_seconds()                       # this process: cheap enough to read every frame
"""

from __future__ import annotations

import time

import psutil


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of process `pid` so far (None: this process)."""
    if pid is None:
        return time.process_time()
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system
