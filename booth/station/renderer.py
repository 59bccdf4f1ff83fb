"""Draws the station's screen for one moment: the live composite (or the frozen shot) in the
photo area, and the panel, digits, flash and banners of the state the station is in.

The one renderer the station, `booth bench` and scripts/soak.py draw with; it keeps the frozen
shot, the screen it draws into and what that screen shows, and it times its two stages.

It does only the work a change needs: a view like the last one (same camera frame, same
state, digit and banner; with nobody drawn, any frame) is not drawn again, and the side
panel, which changes only with the state, is redrawn only then; between those, only the part
of the photo area the last frame drew on is restored, and the new frame composited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from booth.station.machine import FLASH_SECONDS, State
from booth.station.screens import Screens, dim, flash
from booth.vision.pipeline import Analysis, Pipeline


@dataclass(frozen=True)
class View:
    """What the screen shows now."""

    state: State
    frame: np.ndarray | None
    analysis: Analysis | None
    camera_ok: bool
    countdown: int = 0  # the digit on show during the countdown
    # The share of the countdown still to run (its ring); while recording, the share done.
    countdown_left: float = 0.0
    since: float = 0.0  # seconds in this state (the flash fades over FLASH_SECONDS)
    clip: bool = False  # the capture under way is a boomerang (its own panels)

    def same_screen(self, other: View | None) -> bool:
        """Whether `other` draws exactly this screen (the same arrays, not equal ones), the
        countdown's ring aside (it only needs the side panel, see Renderer.draw). The camera
        frame counts only where someone is drawn from it: a new frame of the same empty room
        (booth.vision.pipeline: the same analysis) is the same screen."""
        drawn = self.analysis is not None and self.analysis.drawable
        return (other is not None and self.state is other.state
                and (self.frame is other.frame or not drawn)
                and self.analysis is other.analysis
                and self.camera_ok == other.camera_ok and self.countdown == other.countdown
                and (self.state is not State.CAPTURE or self.since == other.since))


class Renderer:
    def __init__(self, pipeline: Pipeline, screens: Screens) -> None:
        self.pipeline, self.screens = pipeline, screens
        self.screen = screens.base.copy()
        self.timings = {"composite": 0.0, "ui": 0.0}  # seconds, of the last draw()
        self.changed = True  # whether the last draw() changed the screen
        self._frozen: np.ndarray | None = None  # the preview at the shutter
        self._shown: View | None = None  # what self.screen shows
        self._panel: tuple | None = None  # what its side panel shows
        # Where the photo area differs from the base screen (screen pixels; None: nowhere).
        self._dirty: tuple[int, int, int, int] | None = None

    def freeze(self, frame: np.ndarray, analysis: Analysis) -> None:
        """Keep the preview of this frame: shown during the flash and while the photo is made."""
        self._frozen = self.screens.plate_small.copy()
        self.pipeline.draw_preview(self._frozen, frame, analysis)

    def draw(self, view: View) -> np.ndarray:
        """The screen for `view`, drawn into self.screen (returned)."""
        self.changed = not view.same_screen(self._shown)
        if not self.changed:
            self.timings["composite"] = 0.0
            ring = self._shown.countdown_left  # type: ignore[union-attr]
            if (view.state in (State.COUNTDOWN, State.RECORDING)
                    and view.countdown_left != ring):
                # Only the ring moved: the side panel is drawn again, the photo area stays.
                t0 = time.perf_counter()
                self.draw_panel(self.screen, view)
                self.timings["ui"], self.changed, self._shown = (time.perf_counter() - t0,
                                                                 True, view)
            else:
                self.timings["ui"] = 0.0
            return self.screen
        # The flash covers the whole screen; anything else leaves the panel as it was drawn.
        # The base is another one in another language: everything is drawn again.
        panel = (view.state, view.camera_ok, view.countdown, view.clip, self.screens.date,
                 id(self.screens.base))
        whole = panel != self._panel or view.state is State.CAPTURE
        # A ring (the countdown's, the recording's) moves with the time, new frame or not.
        ring = (view.state in (State.COUNTDOWN, State.RECORDING) and self._shown is not None
                and view.countdown_left != self._shown.countdown_left)
        t0 = time.perf_counter()
        self.compose_preview(self.screen, view, whole=whole)
        t1 = time.perf_counter()
        self.draw_ui(self.screen, view, panel=whole)
        if ring and not whole:
            self.draw_panel(self.screen, view)
        self.timings["composite"], self.timings["ui"] = t1 - t0, time.perf_counter() - t1
        self._shown, self._panel = view, panel
        return self.screen

    def forget(self) -> bool:
        """The screen was shown over by another (the result screen): the next draw() draws
        it all. True if it was showing something of its own until now."""
        shown, self._shown, self._panel = self._shown, None, None
        return shown is not None

    def compose_preview(self, screen: np.ndarray, view: View, *, whole: bool = True) -> None:
        """The photo area: live composite, or the frozen shot while the photo is made
        (`whole`: the rest of the screen is restored too)."""
        lay, base = self.screens.layout, self.screens.base
        if whole:
            screen[:] = base
        elif self._dirty is not None:
            x0, y0, x1, y1 = self._dirty
            screen[y0:y1, x0:x1] = base[y0:y1, x0:x1]
        self._dirty = None
        if view.state in (State.CAPTURE, State.PROCESSING) and self._frozen is not None:
            lay.plate_region(screen)[:] = self._frozen
            self._photo_area_dirty()
        elif view.frame is not None and view.analysis is not None:
            drawn = self.pipeline.draw_preview(lay.plate_region(screen), view.frame, view.analysis)
            if drawn is not None:
                x0, y0, x1, y1 = drawn.box
                self._dirty = (lay.photo_x + x0, lay.photo_y + y0, lay.photo_x + x1,
                               lay.photo_y + y1)

    def _photo_area_dirty(self) -> None:
        lay = self.screens.layout
        self._dirty = (lay.photo_x, lay.photo_y, lay.photo_x + lay.photo_w,
                       lay.photo_y + lay.plate_h + lay.band_h)

    def draw_panel(self, screen: np.ndarray, view: View) -> None:
        """The side panel alone, redrawn from the base: the state's overlays, and in the
        countdown its digit and ring."""
        screens, lay = self.screens, self.screens.layout
        screen[:, lay.panel_x:] = screens.base[:, lay.panel_x:]
        self._panel_overlays(screen, view)

    def _panel_overlays(self, screen: np.ndarray, view: View) -> None:
        screens, state = self.screens, view.state
        attract = screens.attract if view.camera_ok else screens.camera_panel
        clip = screens.clip
        overlays = {State.ATTRACT: attract, State.COUNTDOWN: screens.countdown_panel,
                    State.RECORDING: clip.recording_panel,
                    State.PROCESSING: clip.processing_panel if view.clip
                    else screens.processing_panel,
                    State.FAILED: clip.failed_panel if view.clip else screens.failed_panel,
                    State.NOBODY: screens.nobody_panel}.get(state, [])
        screens.draw(screen, overlays)
        if state is State.COUNTDOWN:
            screens.draw_countdown(screen, view.countdown, view.countdown_left)
        elif state is State.RECORDING:
            screens.draw_recording(screen, view.countdown_left)

    def draw_ui(self, screen: np.ndarray, view: View, *, panel: bool = True) -> None:
        """What goes over the photo area, and (`panel`) the side panel's overlays."""
        screens, lay, state = self.screens, self.screens.layout, view.state
        if panel:
            self._panel_overlays(screen, view)
        # Whatever is drawn over the photo area is restored with all of it next time.
        if state is State.ATTRACT:
            if view.camera_ok and view.analysis is not None and not view.analysis.people.found:
                screens.step_in.draw(screen)
                self._photo_area_dirty()
        elif state is State.CAPTURE:
            flash(screen, max(0.0, 1.0 - view.since / FLASH_SECONDS))
            self._photo_area_dirty()
        elif state is State.RECORDING:
            screens.clip.badge.draw(screen)
            self._photo_area_dirty()
        elif state is State.PROCESSING:
            dim(lay.plate_region(screen))
            self._photo_area_dirty()
        if not view.camera_ok and state in (State.ATTRACT, State.COUNTDOWN, State.RECORDING):
            dim(lay.plate_region(screen))
            screens.camera_banner.draw(screen)
            self._photo_area_dirty()
