"""Camera faults on a running station: the unattended booth must notice and heal by itself.

Each test runs the real Station loop in this process for a few seconds of an injected clock
(booth.clock.ManualClock), with a real video file as the camera device of a real CameraSource
(watchdog, reader threads, reconnect), the real pipeline and a display that records what was
shown. The display moves the clock 1/60 s at each poll, as a 60 Hz screen's loop would; the
camera delivers a frame every 1/30 s of it, and the watchdog's stalls and backoff are measured
on it, so every time below is the clock's, exact up to a step. The faults are made by small
subclasses that only pace, hang, repeat or fail the real read(), or by taking the device path
away:

- the camera stops delivering frames (read() blocks),
- it delivers the same frame forever,
- read() returns an error,
- its device path vanishes and comes back.

The promise: "Camera unavailable, reconnecting" on screen within 2 s of the last frame, a
screen redrawn at least every 0.25 s throughout, the banner up for as long as the camera is
down and gone once frames return (reconnecting with backoff), no photo taken with a dead
camera, and the staff page saying what the camera is doing.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.camera.cameras import BACKOFF_FIRST, CameraSource
from booth.clock import ManualClock
from booth.config import Config
from booth.station.events import Event, Press, Quit
from booth.station.loop import PhotoMaker, Station
from booth.station.machine import Machine, State
from booth.station.outputs.store import StoreOutput
from booth.station.renderer import Renderer
from booth.station.screens import Screens
from booth.store import Store
from booth.store.passwords import set_password
from booth.wiring import load_pipeline
from tests.conftest import asset, plate_config

VIDEO = "video/intel_asl_book.mp4"  # 640x480, 30 fps, a person signing
PROMISE = 2.0  # seconds from the last frame to the banner
REDRAW = 0.25  # the screen is redrawn at least this often, whatever the camera does
FAULT_AT = 1.0  # seconds after the camera starts
TICK = 1 / 60  # the clock's step at each poll of the display
EPS = 1e-6  # the clock adds floats: 210 steps of 1/60 s can fall short of 3.5 s by 3e-12
NEVER = threading.Event()  # a wait on the clock that only time ends


class FaultyCamera(CameraSource):
    """A video file as the camera: read at 30 fps, looping like a live camera for as long as
    its device path exists (an open file can still be read after it is renamed away, so the
    "unplug" shows at the end of the clip, as a failed read()).

    Between fault_start and fault_end (seconds after start()) read() does what `fault` says:
    "hang" blocks until fault_end, "repeat" hands back the last real frame again and again,
    "error" returns (False, None). Every open and every stall the watchdog reports is
    recorded with the clock's time."""

    def __init__(self, device: str, fault: str | None = None,
                 window: tuple[float, float] = (FAULT_AT, FAULT_AT)) -> None:
        camera = Config().camera  # the shipped settings, stall_seconds among them
        super().__init__(device, width=camera.width, height=camera.height, fps=camera.fps,
                         stall_seconds=camera.stall_seconds, clock=ManualClock())
        self.fault, self.window = fault, window
        self.t0 = 0.0
        self.opens: list[float] = []
        self.stalls: list[tuple[float, str]] = []
        self._held: np.ndarray | None = None
        self._last_cap: cv2.VideoCapture | None = None

    @property
    def fault_start(self) -> float:
        return self.t0 + self.window[0]

    @property
    def fault_end(self) -> float:
        return self.t0 + self.window[1]

    def start(self) -> None:
        self.t0 = self.clock.monotonic()
        super().start()

    def _open(self) -> cv2.VideoCapture | None:
        self.opens.append(self.clock.monotonic())
        return super()._open()

    def _paced(self, cap: cv2.VideoCapture) -> bool:
        """False at the first read of a capture."""
        first = cap is not self._last_cap
        self._last_cap = cap
        return not first

    def _stalled(self) -> str | None:
        problem = super()._stalled()
        if problem is not None:
            self.stalls.append((self.clock.monotonic(), problem))
        return problem

    def _read_frame(self, cap: cv2.VideoCapture) -> tuple[bool, np.ndarray | None]:
        # A frame every 1/30 s of the clock; the first one of each opening at once.
        if self._paced(cap) and self.clock.wait(self._stop, 1 / 30):
            return False, None
        now = self.clock.monotonic()
        faulty = self.fault_start <= now < self.fault_end
        if faulty and self.fault == "hang":
            self.clock.wait(self._stop, self.fault_end - now)
        elif faulty and self.fault == "error":
            return False, None
        ok, frame = cap.read()
        if not ok and os.path.exists(self.device):  # a camera has no end while plugged in
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
        if self.fault == "repeat" and ok:
            if faulty and self._held is not None:
                return True, self._held  # the real frame, once more
            self._held = frame
        return ok, frame


def banner_detector(screens: Screens) -> Callable[[np.ndarray], bool]:
    """Whether a screen shows screens.camera_banner: every solid pixel of the banner must lie
    between the banner blended over black and over white (whatever preview is beneath it)."""
    banner = screens.camera_banner
    h, w = banner.premultiplied.shape[:2]
    assert banner.x >= 0 and banner.y >= 0
    region = (slice(banner.y, banner.y + h), slice(banner.x, banner.x + w))
    solid = banner.inverse_alpha[:, :, 0] < 0.2  # backdrop (alpha 230) and text, not corners
    low = banner.premultiplied[solid] - 2
    high = banner.premultiplied[solid] + 255 * banner.inverse_alpha[solid] + 2

    def has_banner(screen: np.ndarray) -> bool:
        pixels = screen[region][solid].astype(np.float32)
        inside = np.all((pixels >= low) & (pixels <= high), axis=1)
        return bool(inside.mean() > 0.98)

    return has_banner


@dataclass(frozen=True)
class Shown:
    t: float
    seq: int  # the camera's newest frame when the screen was shown
    state: State
    banner: bool


class RecordingDisplay:
    """Records what each show() put on screen; moves the clock TICK at each poll; quits
    after `seconds` of it. `presses(display)` is asked at every poll whether the visitor
    presses now."""

    def __init__(self, seconds: float, source: FaultyCamera, screens: Screens,
                 machine: Machine, presses: Callable[[RecordingDisplay], bool] | None = None,
                 ) -> None:
        self.source, self.machine, self.presses = source, machine, presses
        self.clock = source.clock
        self.has_banner = banner_detector(screens)
        self.shown: list[Shown] = []
        self.banner_screen: np.ndarray | None = None
        self.end = source.t0 + seconds

    def show(self, screen: np.ndarray) -> None:
        banner = self.has_banner(screen)
        self.shown.append(Shown(self.clock.monotonic(), self.source.latest()[1],
                                self.machine.state, banner))
        if banner and self.banner_screen is None:
            self.banner_screen = screen.copy()

    def poll(self, wait_ms: int) -> list[Event]:
        self.clock.advance(TICK)
        time.sleep(0.004)  # the camera's threads see each step of the clock (they poll 5 ms)
        if self.clock.monotonic() > self.end:
            return [Quit()]
        return [Press()] if self.presses is not None and self.presses(self) else []

    def close(self) -> None:
        pass


def run_station(source: FaultyCamera, store: Store, seconds: float, *,
                machine: Machine | None = None, presses=None, report=None,
                save: Path | None = None) -> tuple[RecordingDisplay, Station]:
    """Start the camera, run the real station on it for `seconds` of the camera's clock,
    close the camera."""
    pipeline = load_pipeline(plate_config(), mirror=True)
    screens = Screens(640, 360, pipeline.plate, pipeline.scene, countdown=3)
    machine = machine or Machine(3, 30)
    source.start()
    try:
        display = RecordingDisplay(seconds, source, screens, machine, presses)
        station = Station(source, Renderer(pipeline, screens),
                          PhotoMaker(pipeline, screens, [StoreOutput(store, "http://x")],
                                     retention_hours=1, clock=source.clock),
                          machine, clock=source.clock, report=report)
        station.run(display)
    finally:
        source.close()
    if save is not None and display.banner_screen is not None:
        cv2.imwrite(str(save), display.banner_screen)  # to look at
    return display, station


@dataclass(frozen=True)
class Outage:
    lost: Shown  # the first screen with the banner
    back: Shown  # the first screen without it again
    last_frame: float  # when the last frame before the outage reached the screen


def check_outage(shown: list[Shown], fault_start: float, fault_end: float) -> Outage:
    """The promise for one fault: a responsive screen, one banner from within 2 s of the last
    frame until the camera really is back (no false alarm, no flicker), then frames flow."""
    times = np.array([s.t for s in shown])
    gaps = np.diff(times)
    worst = int(np.argmax(gaps))
    assert gaps[worst] < REDRAW, (f"the screen froze for {gaps[worst]:.2f} s at "
                                  f"{times[worst] - times[0]:.2f} s into the run")
    flags = np.array([s.banner for s in shown])
    edges = np.flatnonzero(np.diff(flags.astype(np.int8)))
    assert not flags[0], "the banner was up before the camera failed"
    assert len(edges) == 2, (f"the banner should come up once and go once; it changed "
                             f"{len(edges)} times at "
                             f"{[round(times[i + 1] - fault_start, 2) for i in edges]} s "
                             "after the fault began")
    lost, back = shown[edges[0] + 1], shown[edges[1] + 1]
    assert lost.t >= fault_start - EPS, "the banner came up before the fault"
    last_frame = next(s.t for s in shown if s.seq == lost.seq)
    assert lost.t - last_frame < PROMISE, (
        f"banner {lost.t - last_frame:.2f} s after the last frame (promise: {PROMISE} s)")
    assert back.t >= fault_end - EPS, (f"the banner went {fault_end - back.t:.2f} s before the "
                                 "camera came back")
    flowing = [s.seq for s in shown if s.t >= back.t]
    assert flowing[-1] - flowing[0] >= 15, "frames flow again after the camera comes back"
    assert flowing == sorted(flowing)
    assert back.seq > lost.seq
    return Outage(lost, back, last_frame)


# --- the faults ----------------------------------------------------------------------------


@pytest.mark.slow
def test_camera_that_stops_delivering_frames(tmp_path: Path, store: Store) -> None:
    """read() blocks for 2.5 s, as after an unplug; the watchdog abandons the stuck reader."""
    source = FaultyCamera(str(asset(VIDEO)), "hang", (FAULT_AT, FAULT_AT + 2.5))
    display, _ = run_station(source, store, 5.5, save=tmp_path / "hang.png")
    outage = check_outage(display.shown, source.fault_start, source.fault_end)
    assert outage.lost.t - source.fault_start < PROMISE
    [(_, problem)] = source.stalls
    assert f"no new frame for {source.stall_seconds:g} s" in problem
    assert len(source.opens) == 2  # start, then one reconnect


@pytest.mark.slow
def test_camera_that_repeats_the_same_frame_forever(tmp_path: Path, store: Store) -> None:
    """The same real frame for 3 s: long enough to span a reconnect that hands back the same
    frozen image, which must not count as the camera being back."""
    source = FaultyCamera(str(asset(VIDEO)), "repeat", (FAULT_AT, FAULT_AT + 3.0))
    display, _ = run_station(source, store, 5.5, save=tmp_path / "repeat.png")
    outage = check_outage(display.shown, source.fault_start, source.fault_end)
    assert outage.lost.t - source.fault_start < PROMISE
    assert source.stalls and "repeats the same frame" in source.stalls[0][1]
    assert len(source.opens) >= 2, "the frozen camera was reopened"


@pytest.mark.slow
def test_camera_read_that_returns_an_error(tmp_path: Path, store: Store) -> None:
    """read() returns (False, None) for 0.8 s: the first reopen fails too, the second works."""
    source = FaultyCamera(str(asset(VIDEO)), "error", (FAULT_AT, FAULT_AT + 0.8))
    display, _ = run_station(source, store, 4.5, save=tmp_path / "error.png")
    outage = check_outage(display.shown, source.fault_start, source.fault_end)
    assert outage.lost.t - source.fault_start < 0.5  # a failed read is noticed at once
    assert all("stopped delivering frames" in problem for _, problem in source.stalls)
    assert len(source.stalls) == 2 and len(source.opens) == 3
    assert outage.back.t >= source.opens[-1]  # back through the reopen (at its clock step)


@pytest.mark.slow
def test_camera_device_path_that_vanishes_and_returns(tmp_path: Path, store: Store) -> None:
    """The device is a 0.5 s clip (looping while it exists) renamed away after 1 s and put
    back once two reconnect attempts have failed: attempts come 0.5, 1 and 2 s apart."""
    cap = cv2.VideoCapture(str(asset(VIDEO)))
    device = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(device), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for _ in range(15):
        writer.write(cap.read()[1])
    writer.release()
    cap.release()
    away = tmp_path / "unplugged.avi"
    source = FaultyCamera(str(device))
    moves: dict[str, float] = {}

    clock = source.clock
    no_stop = threading.Event()

    def unplug_and_replug() -> None:
        while not source.t0:  # set by source.start() in run_station
            time.sleep(0.01)
        clock.wait(no_stop, source.t0 + FAULT_AT - clock.monotonic())
        device.rename(away)
        moves["unplugged"] = clock.monotonic()
        deadline = time.monotonic() + 30  # real seconds: only a bound on a broken run
        while len(source.opens) < 3 and time.monotonic() < deadline:
            time.sleep(0.002)
        clock.wait(no_stop, 0.3)
        away.rename(device)
        moves["replugged"] = clock.monotonic()

    cable = threading.Thread(target=unplug_and_replug, daemon=True)
    cable.start()
    display, _ = run_station(source, store, 6.8, save=tmp_path / "vanished.png")
    cable.join(5)
    assert set(moves) == {"unplugged", "replugged"}
    check_outage(display.shown, moves["unplugged"], moves["replugged"])
    # Reconnect attempts with backoff: 0.5 s after the loss is noticed, then 1 s, then 2 s.
    [(noticed, problem)] = source.stalls
    assert "stopped delivering frames" in problem
    assert noticed - moves["unplugged"] < 0.5 + 0.2  # the rest of the clip, then the failed read
    attempts = [t for t in source.opens if t > noticed]
    assert len(attempts) == 3, "two attempts while unplugged, the third one succeeds"
    intervals = np.diff([noticed, *attempts])
    expected = BACKOFF_FIRST * np.array([1, 2, 4])
    assert np.all(np.abs(intervals - expected) < 0.1), intervals
    assert attempts[1] < moves["replugged"] < attempts[2]


# --- what staff see, and no photo from a dead camera ---------------------------------------


@pytest.mark.slow
def test_staff_page_reports_the_camera_and_no_photo_is_taken_while_it_is_down(
        tmp_path: Path, store: Store, client) -> None:
    """read() fails for 2 s (reopens at +0.5 and +1.5 s fail, the one at +3.5 s works). The
    staff page, polled through the real Flask app while the station reports to the store,
    goes from "Camera OK" to "Camera reconnecting" and back. A press while the camera is
    down runs the countdown but takes no photo; a press once it is back does."""
    set_password(store, "correct horse battery")
    login = client.get("/staff")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    response = client.post("/staff/login", data={"csrf_token": token,
                                                 "password": "correct horse battery"})
    assert response.status_code == 303

    pages: list[tuple[float, str]] = []
    source = FaultyCamera(str(asset(VIDEO)), "error", (FAULT_AT, FAULT_AT + 2.0))
    clock = source.clock

    def watch_staff_page(now: float) -> None:
        # Polled between two steps of the clock, so a slow request (a loaded machine) cannot
        # let the station's time run on and the page be dated late.
        if pages and now - pages[-1][0] < 0.2:
            return
        text = client.get("/staff").text
        status = re.search(r'aria-label="Station status">\s*<div[^>]*>\s*<b>([^<]+)</b>', text)
        pages.append((now, status.group(1) if status else text))

    pressed: dict[str, float] = {}

    def presses(display: RecordingDisplay) -> bool:
        shown = display.shown
        now = clock.monotonic()
        watch_staff_page(now)
        if "down" not in pressed and shown[-1].banner:
            pressed["down"] = now  # the countdown would end while the camera is still down
            return True
        if "down" in pressed and "back" not in pressed and not shown[-1].banner:
            since = next((s.t for s in reversed(shown) if s.banner), now)
            if now - since > 0.5:
                pressed["back"] = now
                return True
        return False

    display, station = run_station(
        source, store, 8.5, machine=Machine(1, 30), presses=presses,
        report=lambda status: status.save(store), save=tmp_path / "staff.png")
    shown = display.shown

    # The press while the camera was down: a countdown, then back to attract, no shutter.
    assert set(pressed) == {"down", "back"}
    during = [s.state for s in shown if pressed["down"] <= s.t < pressed["back"]]
    assert State.COUNTDOWN in during, "the press started the countdown"
    assert not {State.CAPTURE, State.PROCESSING, State.RESULT, State.FAILED} & set(during), (
        "no capture may be attempted with a dead camera")
    assert during[-1] is State.ATTRACT
    outage = check_outage(shown, source.fault_start, source.fault_end)
    countdown_end = max(s.t for s in shown if s.state is State.COUNTDOWN and s.t < outage.back.t)
    assert countdown_end < outage.back.t - 0.5, "the shutter came while the camera was down"
    # The press once it was back: a photo, the only one.
    after = [s.state for s in shown if s.t >= pressed["back"]]
    assert State.RESULT in after
    assert station.captures == 1 and store.count() == 1

    # The staff page: OK, then reconnecting soon after the banner, then OK again.
    statuses = [text for _, text in pages if text != "Station not running"]
    changes = [text for i, text in enumerate(statuses) if i == 0 or text != statuses[i - 1]]
    assert changes == ["Camera OK", "Camera reconnecting", "Camera OK"], changes
    reconnecting = [t for t, text in pages if text == "Camera reconnecting"]
    # The station reports every 2 s; the page is polled every 0.2 s.
    assert reconnecting[0] - outage.lost.t < 2.0 + 0.5
    assert reconnecting[0] < outage.back.t, "reported while the camera was down"
    assert reconnecting[-1] < outage.back.t + 2.0 + 0.5
    ok_again = next(t for t, text in pages if text == "Camera OK" and t > reconnecting[-1])
    assert ok_again - outage.back.t < 2.0 + 0.5
