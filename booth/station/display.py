"""Where screens go: a fullscreen OpenCV window, or nowhere (headless, for scripted runs).

Why OpenCV's window and not pygame/SDL2 (measured under Xvfb, 1920x1080, no window manager,
2-core x86-64): SDL2's fullscreen window does cover the screen without a window manager, but
presenting a 1920x1080 frame took 23-36 ms (median), too slow for a 30 fps preview, against
5-8 ms for OpenCV's imshow into a window of the same size. OpenCV's own fullscreen request
needs a window manager (without one the window stayed 400x300), so the window is also sized
to the screen and put at its corner, which is fullscreen wherever nothing else manages windows;
and since OpenCV's Qt window shows an image at its own size (a 1280x720 screen sat in the middle
of a 1600x900 window), the booth scales each screen to the window itself.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import time
from typing import Protocol

import cv2
import numpy as np

from booth.errors import BoothError
from booth.quiet import quiet_stderr
from booth.station.events import (
    Boomerang,
    Event,
    NextLanguage,
    PickLanguage,
    Press,
    PrintPhoto,
    Quit,
    Tap,
)

# Languages from a keyboard: Tab (or L) for the next one, 1-9 for the n-th button; B for a
# boomerang; P prints the result screen's photo.
_KEYS: dict[int, Event] = {
    **dict.fromkeys((ord(" "), 13, 10), Press()),
    **dict.fromkeys((ord("b"), ord("B")), Boomerang()),
    **dict.fromkeys((ord("p"), ord("P")), PrintPhoto()),
    **dict.fromkeys((27, ord("q"), ord("Q")), Quit()),
    **dict.fromkeys((9, ord("l"), ord("L")), NextLanguage()),
    **{ord(str(n)): PickLanguage(n) for n in range(1, 10)}}


class Display(Protocol):
    def show(self, screen: np.ndarray) -> None: ...

    def poll(self, wait_ms: int) -> list[Event]:
        """Events since the last poll (booth.station.events), waiting up to wait_ms."""
        ...

    def close(self) -> None: ...


class HeadlessDisplay:
    def show(self, screen: np.ndarray) -> None:
        pass

    def poll(self, wait_ms: int) -> list[Event]:
        time.sleep(wait_ms / 1000)
        return []

    def close(self) -> None:
        pass


NO_DISPLAY = ("no display to open the station's window on ({why}); run `booth run` in the "
              "kiosk's desktop session (or set DISPLAY to it), or use `booth run --headless`")


def screen_size() -> tuple[int, int] | None:
    """The screen's size in pixels, None where it cannot be asked.

    Raises BoothError when there is no display at all: on Linux OpenCV's window toolkit (Qt,
    X11 only) aborts the whole process without one, so the X server is asked first."""
    if sys.platform == "win32":
        metrics = ctypes.windll.user32.GetSystemMetrics
        return metrics(0), metrics(1)
    if sys.platform == "darwin":
        return None
    name = os.environ.get("DISPLAY", "")
    if not name:
        raise BoothError(NO_DISPLAY.format(why="DISPLAY is not set"))
    library = ctypes.util.find_library("X11")
    if library is None:  # no Xlib to ask: let OpenCV try
        return None
    x11 = ctypes.CDLL(library)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    for function in (x11.XDefaultScreen, x11.XCloseDisplay):
        function.argtypes = [ctypes.c_void_p]
    for function in (x11.XDisplayWidth, x11.XDisplayHeight):
        function.argtypes = [ctypes.c_void_p, ctypes.c_int]
    connection = x11.XOpenDisplay(None)
    if not connection:
        raise BoothError(NO_DISPLAY.format(why=f"cannot connect to DISPLAY={name}"))
    try:
        screen = x11.XDefaultScreen(connection)
        return x11.XDisplayWidth(connection, screen), x11.XDisplayHeight(connection, screen)
    finally:
        x11.XCloseDisplay(connection)


class WindowDisplay:
    """OpenCV HighGUI window; touches arrive as mouse clicks."""

    def __init__(self, title: str = "selfie-booth", fullscreen: bool = True,
                 size: tuple[int, int] = (1280, 720)) -> None:
        self.title = title
        self._events: list[Event] = []
        screen = screen_size()
        # Fullscreen: each screen is scaled (kept in proportion, centred) onto this canvas.
        self._canvas = (np.zeros((screen[1], screen[0], 3), np.uint8)
                        if fullscreen and screen and screen != size else None)
        self._fit = (1.0, 0, 0)  # scale and offset of the station's screen on the canvas
        try:
            # Qt warns on fd 2 about fonts and plugins it does not need: not for the console.
            with quiet_stderr():
                # GUI_NORMAL: no Qt toolbar or status bar on the kiosk.
                cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO
                                | cv2.WINDOW_GUI_NORMAL)
        except cv2.error:
            raise BoothError(NO_DISPLAY.format(why="OpenCV cannot open a window")) from None
        # Covering the screen from its corner is fullscreen where no window manager honours
        # the fullscreen request (a bare X session on a kiosk).
        cv2.resizeWindow(title, *(screen if fullscreen and screen else size))
        cv2.moveWindow(title, 0, 0)
        if fullscreen:
            cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        cv2.setMouseCallback(title, self._on_mouse)

    def _on_mouse(self, event: int, x: int, y: int, flags: int, param: object) -> None:
        if event == cv2.EVENT_LBUTTONDOWN:
            # OpenCV gives pixels of the image shown: the scaled canvas, when there is one.
            scale, ox, oy = self._fit
            self._events.append(Tap(round((x - ox) / scale), round((y - oy) / scale)))

    def show(self, screen: np.ndarray) -> None:
        if self._canvas is not None:
            ch, cw = self._canvas.shape[:2]
            h, w = screen.shape[:2]
            scale = min(cw / w, ch / h)
            fw, fh = round(w * scale), round(h * scale)
            x, y = (cw - fw) // 2, (ch - fh) // 2
            self._canvas[y:y + fh, x:x + fw] = cv2.resize(screen, (fw, fh),
                                                          interpolation=cv2.INTER_LINEAR)
            self._fit = (scale, x, y)
            screen = self._canvas
        cv2.imshow(self.title, screen)

    def poll(self, wait_ms: int) -> list[Event]:
        key = cv2.waitKey(max(1, wait_ms)) & 0xFF
        events, self._events = self._events, []
        if key in _KEYS:
            events.append(_KEYS[key])
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                events.append(Quit())  # closed with the window manager's button
        except cv2.error:
            events.append(Quit())
        return events

    def close(self) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
