"""The station: its state machine, a scripted headless run end to end, and a lost camera."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from booth.camera.cameras import STILL_SKIP_FRAMES
from booth.clock import ManualClock
from booth.station.events import Event, Press, Quit
from booth.station.loop import PhotoMaker, Station
from booth.station.machine import FLASH_SECONDS, Machine, State
from booth.station.outputs.store import StoreOutput
from booth.station.renderer import Renderer, View
from booth.station.screens import Screens
from booth.store import Store
from booth.store.status import StationStatus
from booth.wiring import load_pipeline
from tests.conftest import asset, headless_run, plate_config, read_qr
from tests.test_faults_camera import banner_detector


def test_machine_walks_attract_countdown_capture_processing_result_attract():
    m = Machine(countdown_seconds=3, result_seconds=30, now=0.0)
    assert m.state is State.ATTRACT
    assert not m.tick(100.0)  # attract waits for a press
    m.press(100.0)
    assert m.state is State.COUNTDOWN
    assert [m.countdown_number(t) for t in (100.0, 101.2, 102.5)] == [3, 2, 1]
    assert not m.tick(102.9)
    assert m.tick(103.0)  # the shutter fires exactly once
    assert m.state is State.CAPTURE
    assert not m.tick(103.01 + FLASH_SECONDS)
    assert m.state is State.PROCESSING
    m.finished(True, 103.5)
    assert m.state is State.RESULT
    m.tick(133.4)
    assert m.state is State.RESULT
    m.tick(133.6)
    assert m.state is State.ATTRACT


def test_machine_result_arriving_during_the_flash_and_presses():
    m = Machine(countdown_seconds=1, result_seconds=30, now=0.0)
    m.press(0.0)
    assert m.tick(1.0)
    m.press(1.05)  # presses during the flash are ignored
    m.finished(True, 1.1)  # fast worker: result before the flash is over
    assert m.state is State.CAPTURE
    m.tick(1.01 + FLASH_SECONDS)
    assert m.state is State.RESULT
    m.press(2.0)  # a press on the result screen goes back to attract
    assert m.state is State.ATTRACT


def test_machine_failure_and_auto_capture():
    m = Machine(countdown_seconds=1, result_seconds=30, auto_capture_seconds=2.0, now=0.0)
    assert not m.tick(1.9)
    m.tick(2.0)
    assert m.state is State.COUNTDOWN
    assert m.tick(3.0)
    m.tick(3.5)
    m.finished(False, 3.6)
    assert m.state is State.FAILED
    m.tick(20.0)
    assert m.state is State.ATTRACT


@pytest.mark.slow
def test_headless_run_captures_a_photo_whose_qr_code_is_its_link(tmp_path: Path):
    data, screens = tmp_path / "data", tmp_path / "screens"
    proc = headless_run(tmp_path, "--auto-capture", "0.5", "--max-captures", "2",
                        "--save-screens", str(screens), public_url="http://booth.local:8000",
                        timeout=120)
    assert proc.returncode == 0, proc.stderr
    links = proc.stdout.splitlines()
    assert len(links) == 2
    for link in links:
        assert re.fullmatch(r"http://booth\.local:8000/p/[A-Za-z0-9_-]{22,}", link), link
    assert "Traceback" not in proc.stderr

    store = Store(data)
    try:
        for link in links:
            capture = store.resolve(link.rsplit("/", 1)[1])
            assert capture is not None and capture.path.is_file()
            photo = cv2.imread(str(capture.path))
            assert photo.shape[1] == 1920 and photo.shape[0] > 1412  # plate + caption band
            with Image.open(capture.path) as im:
                assert im.format == "JPEG"
                assert not im.getexif() and "exif" not in im.info
            assert capture.expires_at - capture.created_at == pytest.approx(24 * 3600)
            thumb = cv2.imread(str(capture.thumb_path))
            assert thumb.shape[1] == 480
        assert store.count() == 2
        status = json.loads(store.get_setting("station_status"))  # for the staff page
        assert status["camera"] == "ok" and status["fps"] > 0  # frames flowed (no speed figure)
        # Each photo and its thumbnail; no raw camera frame unless configured.
        names = sorted(p.name for p in (data / "photos").iterdir())
        assert len(names) == 4 and sum(n.endswith("-thumb.jpg") for n in names) == 2
    finally:
        store.close()

    results = sorted(screens.glob("*-result.png"))
    assert len(results) == 2
    for png, link in zip(results, links, strict=True):
        decoded = read_qr(cv2.imread(str(png)))
        assert decoded == link
    states = [p.stem.split("-", 1)[1] for p in sorted(screens.glob("*.png"))]
    states = [s for s in states if s != "processing"]  # shown only if the photo is slow
    assert states == ["attract", "countdown", "capture", "result"] * 2


def small_station(pipeline, camera, store: Store, clock: ManualClock) -> Station:
    """A station over `camera` (started) on a 640x360 screen: a 1 s countdown, results
    shown 30 s."""
    camera.start()
    screens = Screens(640, 360, pipeline.plate, pipeline.scene, countdown=1)
    return Station(camera, Renderer(pipeline, screens),
                   PhotoMaker(pipeline, screens, [StoreOutput(store, "http://x")],
                              retention_hours=1, clock=clock),
                   Machine(1, 30), clock=clock, out=io.StringIO())


class HandCamera:
    """A camera the test drives by hand (a FrameSource): each deliver() hands over the next
    frame of a real clip; lose() and back() are the cable pulled and plugged in again. The
    real camera's watchdog, which decides these moments, is tested in test_sources.py and
    test_faults_camera.py."""

    name = "hand camera"

    def __init__(self, frames: list[np.ndarray], clock: ManualClock | None = None) -> None:
        self.frames, self.problem, self.clock = frames, "", clock
        self._seq, self._status = 0, "ok"
        self.waits: list[float] = []

    def start(self) -> None:
        self.deliver()

    def deliver(self) -> None:
        self._seq += 1

    def latest(self) -> tuple[np.ndarray | None, int]:
        return self.frames[self._seq % len(self.frames)], self._seq

    def wait(self, seq: int, seconds: float) -> bool:
        """No frame comes while the station waits: the wait runs out (on the test's clock)."""
        self.waits.append(seconds)
        if self._seq > seq:
            return True
        self.clock.advance(seconds)
        return False

    def status(self) -> str:
        return self._status

    def lose(self) -> None:
        self._status, self.problem = "reconnecting", "hand camera stopped delivering frames"

    def back(self) -> None:
        self._status, self.problem = "ok", ""

    def close(self) -> None:
        pass


def until_result(station: Station, steps) -> None:
    """Step the station (1/30 s of the clock at a time, `steps(seconds)`) until its photo,
    made on the worker in real time, is on the result screen."""
    for _ in range(3000):
        if station.machine.state is State.RESULT:
            return
        steps(1 / 30)
        time.sleep(0.005)  # while the photo is made the station analyses no frame


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(asset("video/intel_asl_again.mp4")))
    frames = [cap.read()[1] for _ in range(30)]
    cap.release()
    return frames


@pytest.mark.slow
def test_lost_camera_banner_no_photo_while_down_and_back(tmp_path: Path, clip_frames,
                                                         station_log: list[str]):
    """The station loop stepped on an injected clock, 1/30 s a step: the banner comes with
    the first step after the camera is lost and goes with the first step after it is back;
    a press meanwhile runs the countdown but takes no photo; the log and the staff status
    say what happened; a press once it is back makes a photo."""
    pipeline = load_pipeline(plate_config(), mirror=True)
    screens = Screens(640, 360, pipeline.plate, pipeline.scene, countdown=1)
    store = Store(tmp_path / "data")
    camera, clock = HandCamera(clip_frames), ManualClock()
    camera.start()
    log = station_log
    reports: list[StationStatus] = []
    station = Station(camera, Renderer(pipeline, screens),
                      PhotoMaker(pipeline, screens, [StoreOutput(store, "http://x")],
                                 retention_hours=1, clock=clock),
                      Machine(1, 30), clock=clock, out=io.StringIO(), report=reports.append)
    has_banner = banner_detector(screens)

    def steps(seconds: float, *, frames: bool = True) -> list[tuple[State, bool]]:
        shown = []
        for _ in range(round(seconds * 30)):
            clock.advance(1 / 30)
            if frames:
                camera.deliver()
            screen = station.step()
            shown.append((station.machine.state, has_banner(screen)))
        return shown

    try:
        with station:
            before = steps(1.0)
            assert not any(banner for _, banner in before) and station.camera_ok
            camera.lose()
            lost = steps(0.5, frames=False)
            assert all(banner for _, banner in lost), "banner from the first step on"
            cv2.imwrite(str(tmp_path / "camera-lost.png"), station.renderer.screen)  # to look at
            assert log == ["Camera unavailable, reconnecting: hand camera stopped delivering "
                           "frames"]
            station.press()  # the countdown runs, the shutter finds no camera: no photo
            pressed = steps(1.5, frames=False)
            assert [s for s, _ in pressed[:29]] == [State.COUNTDOWN] * 29
            assert {s for s, _ in pressed[30:]} == {State.ATTRACT}
            camera.back()
            back = steps(0.5)
            assert not any(banner for _, banner in back)
            assert log[-1] == "camera back: hand camera"
            station.press()
            steps(1.0)
            until_result(station, steps)
            assert station.machine.state is State.RESULT and station.captures == 1
            assert store.count() == 1
    finally:
        store.close()
    cameras = [r.camera for r in reports]  # every 2 s of the clock, in order
    assert cameras[0] == "ok" and "reconnecting" in cameras and cameras[-1] == "ok"


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_a_shutter_with_nobody_clearly_there_saves_nothing_and_says_so(
        tmp_path: Path, station_log: list[str]):
    """An empty room (a bright plain wall) and a faded, smeared figure near the lens: the
    countdown runs, the shutter takes nothing, the station says to step in front of the
    camera, and goes back to attract."""
    from tests.test_cutout import on_wall

    empty = np.full((720, 1280, 3), (232, 236, 238), np.uint8)
    ghost = on_wall("rembg_girl-2", opacity=0.25, blur=61)
    pipeline = load_pipeline(plate_config(), mirror=True)
    screens = Screens(640, 360, pipeline.plate, pipeline.scene, countdown=1)
    store = Store(tmp_path / "data")
    clock, log = ManualClock(), station_log
    try:
        for frames in ([empty], [ghost]):
            camera = HandCamera(frames)
            camera.start()
            station = Station(camera, Renderer(pipeline, screens),
                              PhotoMaker(pipeline, screens, [StoreOutput(store, "http://x")],
                                         retention_hours=1, clock=clock),
                              Machine(1, 30), clock=clock, out=io.StringIO())
            with station:
                station.step()
                station.press()
                states = []
                for _ in range(60):  # 2 s of the clock
                    clock.advance(1 / 30)
                    camera.deliver()
                    screen = station.step()
                    states.append(station.machine.state)
                    if station.machine.state is State.NOBODY:
                        shown = screen.copy()
                        cv2.imwrite(str(tmp_path / "nobody.png"), shown)  # to look at
                assert State.NOBODY in states and State.CAPTURE not in states
                assert station.captures == 0 and store.count() == 0
                # The panel says so: the screen differs from the failed panel's and the
                # countdown's where the text sits.
                panel = station.renderer.screens.layout.panel_x
                assert np.abs(shown[:, panel:].astype(int)
                              - screens.base[:, panel:].astype(int)).max() > 100
                for _ in range(round(7 * 30)):  # the message stays 6 s, then attract
                    clock.advance(1 / 30)
                    camera.deliver()
                    station.step()
                assert station.machine.state is State.ATTRACT
        assert log.count("shutter: nobody clearly in front of the camera; no photo taken") == 2
        assert sorted(p.name for p in (tmp_path / "data" / "photos").iterdir()) == []
    finally:
        store.close()


def counting(obj, name: str) -> list[int]:
    """Count the calls of obj.name (the real method still runs)."""
    calls = [0]
    real = getattr(obj, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


def hand_station(camera: HandCamera, tmp_path: Path, countdown: int) -> tuple[Station, Store]:
    """A station at 640x360 on the camera (started here) and its clock, with a real store
    whose link is all the outputs; the caller closes the store."""
    pipeline = load_pipeline(plate_config(), mirror=True)
    screens = Screens(640, 360, pipeline.plate, pipeline.scene, countdown=countdown)
    camera.start()
    store = Store(tmp_path / "data")
    station = Station(camera, Renderer(pipeline, screens),
                      PhotoMaker(pipeline, screens, [StoreOutput(store, "http://x")],
                                 retention_hours=1, clock=camera.clock),
                      Machine(countdown, 30), clock=camera.clock, out=io.StringIO())
    return station, store


class ScriptedDisplay:
    """A headless display whose polls say what `script(poll number)` says; records the
    clock at each show() and poll()."""

    def __init__(self, clock: ManualClock, script) -> None:
        self.clock, self.script = clock, script
        self.shows: list[tuple[float, np.ndarray]] = []
        self.polls: list[float] = []

    def show(self, screen: np.ndarray) -> None:
        self.shows.append((self.clock.monotonic(), screen.copy()))

    def poll(self, wait_ms: int) -> list[Event]:
        self.polls.append(self.clock.monotonic())
        return self.script(len(self.polls))

    def close(self) -> None:
        pass


def test_the_loop_sleeps_on_the_camera_composites_each_frame_once_and_answers_keys(
        tmp_path: Path, clip_frames):
    """The real Station.run on an injected clock with a camera that delivers nothing more
    after its first frame: the loop waits on the camera (never longer than 20 ms at a time),
    analyses and composites that frame once however often it wakes, shows the unchanged screen
    only now and then, and a press during those waits starts the countdown within 20 ms of
    the clock; each countdown digit is drawn when it changes, not at every wake."""
    clock = ManualClock()
    camera = HandCamera(clip_frames, clock)
    station, store = hand_station(camera, tmp_path, countdown=3)
    pipeline = station.pipeline
    analyses, renders = counting(pipeline, "preview_analysis"), counting(pipeline, "draw_preview")
    pressed_at: list[float] = []

    def script(poll: int) -> list[Event]:
        if poll == 100:  # about a second in, while the loop waits on the camera
            pressed_at.append(clock.monotonic())
            return [Press()]
        return [Quit()] if poll == 350 else []

    display = ScriptedDisplay(clock, script)
    try:
        assert station.run(display) == 0
    finally:
        store.close()
    assert camera.waits and max(camera.waits) <= 0.020
    assert analyses[0] == 1, "the one camera frame is analysed once"
    # Composited once in attract; in the countdown once per digit (the panel changes; the
    # ring shrinking in between redraws the side panel alone).
    assert renders[0] == 1 + 3
    assert station.machine.state is State.COUNTDOWN
    [press] = pressed_at
    countdown = [(t, s) for t, s in display.shows if t > press]
    assert countdown and countdown[0][0] - press <= 0.020, "the press is answered at once"
    # The unchanged screen is shown again now and then (the window stays live), not at
    # every wake: at most every 0.2 s, apart from the changes.
    before = [t for t, _ in display.shows if t <= press]
    assert len(before) < 0.1 * len([t for t in display.polls if t <= press])
    assert np.diff(before).max() <= 0.2 + 0.011


class PacedCamera(HandCamera):
    """A camera whose next frame comes 1/30 s of the clock into a wait (a millisecond of
    real time); counts the waits that returned at once on a frame the station had read."""

    def __init__(self, frames: list[np.ndarray], clock: ManualClock) -> None:
        super().__init__(frames, clock)
        self.spins = 0

    def wait(self, seq: int, seconds: float) -> bool:
        if self._seq > seq:
            self.spins += 1
            return True
        time.sleep(0.001)
        self.clock.advance(1 / 30)
        self.deliver()
        return True


def test_while_the_photo_is_made_the_loop_waits_on_the_camera_instead_of_spinning(
        tmp_path: Path, clip_frames):
    """The real Station.run through a photo: no frame is analysed while the worker makes it,
    and the loop still waits for each new camera frame (it once waited on the last frame it
    had analysed, which returned at once: a loop spinning for the GIL the photo needs)."""
    clock = ManualClock()
    camera = PacedCamera(clip_frames, clock)
    station, store = hand_station(camera, tmp_path, countdown=1)

    def script(poll: int) -> list[Event]:
        if poll == 3:
            return [Press()]
        return [Quit()] if station.machine.state is State.RESULT or poll > 100_000 else []

    try:
        assert station.run(ScriptedDisplay(clock, script)) == 0
        assert station.captures == 1 and store.count() == 1
    finally:
        store.close()
    assert camera.spins == 0


def test_drawing_only_what_changed_gives_the_screen_a_full_redraw_gives(clip_frames):
    """The renderer's incremental screens (panel kept, photo area redrawn; unchanged views
    skipped) are pixel for pixel the screens a fresh renderer draws in full."""
    pipeline = load_pipeline(plate_config(), mirror=True)
    screens = Screens(640, 360, pipeline.plate, pipeline.scene, countdown=3)
    kept = Renderer(pipeline, screens)
    frames = clip_frames[:6]
    analyses = [pipeline.photo_analysis(f) for f in frames]
    nobody = dataclasses.replace(analyses[0], people=dataclasses.replace(
        analyses[0].people, bbox=None))
    views = [View(State.ATTRACT, frames[0], analyses[0], True),
             View(State.ATTRACT, frames[0], analyses[0], True),  # the same: not drawn
             View(State.ATTRACT, frames[1], analyses[1], True),
             View(State.ATTRACT, frames[1], nobody, True),  # "step in" over the picture
             View(State.ATTRACT, frames[2], analyses[2], False),  # camera banner
             View(State.COUNTDOWN, frames[2], analyses[2], True, countdown=3),
             View(State.COUNTDOWN, frames[3], analyses[3], True, countdown=3),
             # the same picture, the ring shrunk: the side panel alone is drawn again
             View(State.COUNTDOWN, frames[3], analyses[3], True, countdown=3,
                  countdown_left=0.7),
             View(State.COUNTDOWN, frames[3], analyses[3], False, countdown=2),
             View(State.COUNTDOWN, frames[4], analyses[4], True, countdown=1)]
    kept.freeze(frames[4], analyses[4])
    views += [View(State.CAPTURE, frames[4], analyses[4], True, since=0.1),
              View(State.CAPTURE, frames[5], analyses[5], True, since=0.2),
              View(State.PROCESSING, frames[5], analyses[5], True),
              View(State.ATTRACT, frames[5], analyses[5], True)]
    drawn = []
    for view in views:
        fresh = Renderer(pipeline, screens)
        fresh._frozen = kept._frozen
        expected = fresh.draw(view).copy()
        assert np.array_equal(kept.draw(view), expected), view.state
        drawn.append(kept.changed)
    assert drawn == [True, False] + [True] * (len(views) - 2)


def _detail(picture: np.ndarray, where: np.ndarray) -> float:
    """Fine detail (the Laplacian's spread) of a picture over a region."""
    grey = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F)[where].std())


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_a_camera_with_a_still_mode_makes_the_photo_from_its_still(
        tmp_path: Path, station_log: list[str]):
    """A webcam (tests.test_sources.Webcam: no device here) previews a real photo at 640x360
    and has a 1920x1080 mode: at the shutter the worker takes a still in that mode, and the
    photo is made from it at the preview's placement: the visitor stands where the screen
    showed them, with the still's detail; the preview goes on at 640x360."""
    from tests.test_sources import Webcam, WebcamSource

    person = cv2.imread(str(asset("people/bgm_0001_img.png")))  # 1920x1080
    pipeline = load_pipeline(plate_config(), mirror=True)
    store = Store(tmp_path / "data")
    clock, log = ManualClock(), station_log
    webcam = Webcam(person, [(640, 360), (1920, 1080)])
    camera = WebcamSource(webcam, still_width=1920, still_height=1080)
    station = small_station(pipeline, camera, store, clock)
    try:
        with station:
            station.step()
            station.press()
            shutter = None
            for _ in range(3000):
                if station.machine.state in (State.ATTRACT, State.COUNTDOWN):
                    clock.advance(1 / 30)  # up to the shutter; then the worker's real time
                station.step()
                if shutter is None and station.machine.state is not State.COUNTDOWN:
                    shutter = station.frame, station.analysis  # what the screen froze
                if station.outcome is not None:
                    break
                time.sleep(0.005)
            outcome = station.outcome
            assert outcome is not None and outcome.ok, outcome
            assert outcome.made_from == "a 1920x1080 still"
            assert log[-1].endswith("made from a 1920x1080 still")
            assert webcam.reads[(1920, 1080)] == STILL_SKIP_FRAMES + 1
            assert camera.latest()[0].shape == (360, 640, 3) and camera.status() == "ok"
        assert store.count() == 1
        frame, analysis = shutter
        assert frame.shape == (360, 640, 3) and analysis.people.confident
        saved = cv2.imread(str(store.resolve(outcome.link.rsplit("/", 1)[1]).path))
    finally:
        camera.close()
        store.close()
    plate = pipeline.plate
    photo = saved[:plate.shape[0]]
    from_preview = pipeline.final(frame, analysis)  # the photo as it was made before stills
    cv2.imwrite(str(tmp_path / "from-still.png"), photo)  # to look at
    cv2.imwrite(str(tmp_path / "from-preview.png"), from_preview)
    visitor = lambda pic: np.abs(pic.astype(int) - plate.astype(int)).max(axis=2) > 40  # noqa: E731
    in_still, in_preview = visitor(photo), visitor(from_preview)
    inside = cv2.erode(in_preview.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    overlap = np.count_nonzero(in_still & in_preview) / np.count_nonzero(in_still | in_preview)
    print(f"overlap {overlap:.3f}, detail {_detail(photo, inside):.1f} from the still, "
          f"{_detail(from_preview, inside):.1f} from the preview")
    assert overlap > 0.85, overlap  # the same place and size as on the screen
    assert _detail(photo, inside) > 1.5 * _detail(from_preview, inside)
