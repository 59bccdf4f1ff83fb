"""Where screens go: a fullscreen OpenCV window, or nowhere (headless, for scripted runs)."""

from __future__ import annotations

import contextlib
import time
from typing import Protocol

import cv2
import numpy as np

from booth.errors import BoothError

_PRESS_KEYS = {ord(" "), 13, 10}
_QUIT_KEYS = {27, ord("q"), ord("Q")}
# Languages from a keyboard: Tab (or L) for the next one, 1-9 for the n-th button.
_LANGUAGE_KEYS = {9: "lang next", ord("l"): "lang next", ord("L"): "lang next",
                  **{ord(str(n)): f"lang {n}" for n in range(1, 10)}}


class Display(Protocol):
    def show(self, screen: np.ndarray) -> None: ...

    def poll(self, wait_ms: int) -> list[str]:
        """Events since the last poll: "press" (button, key), "tap X Y" (a touch or click
        at screen pixel X, Y), "lang next" or "lang N" (language keys), or "quit" (Esc, q)."""
        ...

    def close(self) -> None: ...


class HeadlessDisplay:
    def show(self, screen: np.ndarray) -> None:
        pass

    def poll(self, wait_ms: int) -> list[str]:
        time.sleep(wait_ms / 1000)
        return []

    def close(self) -> None:
        pass


class WindowDisplay:
    """OpenCV HighGUI window; touches arrive as mouse clicks."""

    def __init__(self, title: str = "selfie-booth", fullscreen: bool = True,
                 size: tuple[int, int] = (1280, 720)) -> None:
        self.title = title
        self._events: list[str] = []
        try:
            # GUI_NORMAL: no Qt toolbar or status bar on the kiosk.
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO
                            | cv2.WINDOW_GUI_NORMAL)
        except cv2.error:
            raise BoothError("cannot open a window (no display?); run on the kiosk's desktop "
                             "or use --headless") from None
        # The screen's size when no window manager honours fullscreen (a bare X session).
        cv2.resizeWindow(title, *size)
        cv2.moveWindow(title, 0, 0)
        if fullscreen:
            cv2.setWindowProperty(title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        cv2.setMouseCallback(title, self._on_mouse)

    def _on_mouse(self, event: int, x: int, y: int, flags: int, param: object) -> None:
        if event == cv2.EVENT_LBUTTONDOWN:
            self._events.append(f"tap {x} {y}")  # OpenCV gives image pixels

    def show(self, screen: np.ndarray) -> None:
        cv2.imshow(self.title, screen)

    def poll(self, wait_ms: int) -> list[str]:
        key = cv2.waitKey(max(1, wait_ms)) & 0xFF
        events, self._events = self._events, []
        if key in _PRESS_KEYS:
            events.append("press")
        elif key in _QUIT_KEYS:
            events.append("quit")
        elif key in _LANGUAGE_KEYS:
            events.append(_LANGUAGE_KEYS[key])
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                events.append("quit")  # closed with the window manager's button
        except cv2.error:
            events.append("quit")
        return events

    def close(self) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
