"""Draws the station's screen for one moment: the live composite (or the frozen shot) in the
photo area, and the panel, digits, flash and banners of the state the station is in.

The one renderer the station, `booth bench` and scripts/soak.py draw with; it keeps no state but
the frozen shot and the screen it draws into, and it times its two stages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from booth.machine import FLASH_SECONDS, State
from booth.pipeline import Analysis, Pipeline
from booth.screens import Screens, dim, flash


@dataclass(frozen=True)
class View:
    """What the screen shows now."""

    state: State
    frame: np.ndarray | None
    analysis: Analysis | None
    camera_ok: bool
    countdown: int = 0  # the digit on show during the countdown
    countdown_left: float = 0.0  # the share of the countdown still to run
    since: float = 0.0  # seconds in this state (the flash fades over FLASH_SECONDS)


class Renderer:
    def __init__(self, pipeline: Pipeline, screens: Screens) -> None:
        self.pipeline, self.screens = pipeline, screens
        self.screen = screens.base.copy()
        self.timings = {"composite": 0.0, "ui": 0.0}  # seconds, of the last draw()
        self._frozen: np.ndarray | None = None  # the preview at the shutter

    def freeze(self, frame: np.ndarray, analysis: Analysis) -> None:
        """Keep the preview of this frame: shown during the flash and while the photo is made."""
        self._frozen = self.screens.plate_small.copy()
        self.pipeline.render(self._frozen, frame, analysis)

    def draw(self, view: View) -> np.ndarray:
        """The screen for `view`, drawn into self.screen (returned)."""
        t0 = time.perf_counter()
        self.compose_preview(self.screen, view)
        t1 = time.perf_counter()
        self.draw_ui(self.screen, view)
        self.timings["composite"], self.timings["ui"] = t1 - t0, time.perf_counter() - t1
        return self.screen

    def compose_preview(self, screen: np.ndarray, view: View) -> None:
        """The photo area: live composite, or the frozen shot while the photo is made."""
        lay = self.screens.layout
        screen[:] = self.screens.base
        if view.state in (State.CAPTURE, State.PROCESSING) and self._frozen is not None:
            lay.plate_region(screen)[:] = self._frozen
        elif view.frame is not None and view.analysis is not None:
            self.pipeline.render(lay.plate_region(screen), view.frame, view.analysis)

    def draw_ui(self, screen: np.ndarray, view: View) -> None:
        screens, lay, state = self.screens, self.screens.layout, view.state
        if state is State.ATTRACT:
            screens.draw(screen, screens.attract)
            if view.camera_ok and view.analysis is not None and not view.analysis.people.found:
                screens.step_in.draw(screen)
        elif state is State.COUNTDOWN:
            screens.draw(screen, screens.countdown_panel)
            screens.draw_countdown(screen, view.countdown, view.countdown_left)
        elif state is State.CAPTURE:
            flash(screen, max(0.0, 1.0 - view.since / FLASH_SECONDS))
        elif state is State.PROCESSING:
            dim(lay.plate_region(screen))
            screens.draw(screen, screens.processing_panel)
        elif state is State.FAILED:
            screens.draw(screen, screens.failed_panel)
        if not view.camera_ok and state in (State.ATTRACT, State.COUNTDOWN):
            dim(lay.plate_region(screen))
            screens.camera_banner.draw(screen)
