"""Keep native libraries' chatter off the console.

MediaPipe, OpenCV's capture back ends, FFmpeg and libpng write warnings straight to file
descriptor 2, where Python's own redirection cannot reach; the booth says what matters itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (a windowed app on Windows): nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
