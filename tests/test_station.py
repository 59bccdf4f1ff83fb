"""The station: its state machine, a scripted headless run end to end, and a lost camera."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from booth.clock import ManualClock
from booth.machine import FLASH_SECONDS, Machine, State
from booth.renderer import Renderer
from booth.screens import Screens
from booth.station import PhotoMaker, Station
from booth.store import Store
from booth.wiring import load_pipeline
from tests.conftest import ROOT, asset, plate_config
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


def test_headless_run_captures_a_photo_whose_qr_code_is_its_link(tmp_path: Path):
    video = asset("video/intel_asl_book.mp4")
    config = tmp_path / "booth.toml"
    config.write_text('[server]\npublic_url = "http://booth.local:8000"\n'
                      "[station]\ncountdown_seconds = 1\nresult_seconds = 3\n")
    data, screens = tmp_path / "data", tmp_path / "screens"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "booth", "run", "--headless", "--source", str(video),
         "--config", str(config), "--data-dir", str(data), "--auto-capture", "0.5",
         "--max-captures", "2", "--save-screens", str(screens), "--host", "127.0.0.1",
         "--port", "0"],
        capture_output=True, text=True, timeout=120, env=env)
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
        decoded, _, _ = cv2.QRCodeDetector().detectAndDecode(cv2.imread(str(png)))
        assert decoded == link
    states = [p.stem.split("-", 1)[1] for p in sorted(screens.glob("*.png"))]
    states = [s for s in states if s != "processing"]  # shown only if the photo is slow
    assert states == ["attract", "countdown", "capture", "result"] * 2


class HandCamera:
    """A camera the test drives by hand (a FrameSource): each deliver() hands over the next
    frame of a real clip; lose() and back() are the cable pulled and plugged in again. The
    real camera's watchdog, which decides these moments, is tested in test_sources.py and
    test_faults_camera.py."""

    name = "hand camera"

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames, self.problem = frames, ""
        self._seq, self._status = 0, "ok"

    def start(self) -> None:
        self.deliver()

    def deliver(self) -> None:
        self._seq += 1

    def latest(self) -> tuple[np.ndarray | None, int]:
        return self.frames[self._seq % len(self.frames)], self._seq

    def status(self) -> str:
        return self._status

    def lose(self) -> None:
        self._status, self.problem = "reconnecting", "hand camera stopped delivering frames"

    def back(self) -> None:
        self._status, self.problem = "ok", ""

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(asset("video/intel_asl_again.mp4")))
    frames = [cap.read()[1] for _ in range(30)]
    cap.release()
    return frames


def test_lost_camera_banner_no_photo_while_down_and_back(tmp_path: Path, clip_frames):
    """The station loop stepped on an injected clock, 1/30 s a step: the banner comes with
    the first step after the camera is lost and goes with the first step after it is back;
    a press meanwhile runs the countdown but takes no photo; the log and the staff status
    say what happened; a press once it is back makes a photo."""
    pipeline = load_pipeline(plate_config(), mirror=True)
    screens = Screens(640, 360, pipeline.plate, pipeline.scene, countdown=1)
    store = Store(tmp_path / "data")
    camera, clock = HandCamera(clip_frames), ManualClock()
    camera.start()
    log: list[str] = []
    reports: list[dict] = []
    station = Station(camera, Renderer(pipeline, screens),
                      PhotoMaker(pipeline, screens, store, "http://x", retention_hours=1,
                                 clock=clock),
                      Machine(1, 30), clock=clock, out=io.StringIO(), log=log.append,
                      report=reports.append)
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
            for _ in range(3000):  # the photo is made on the worker, in real time
                if station.machine.state is State.RESULT:
                    break
                steps(1 / 30)
            assert station.machine.state is State.RESULT and station.captures == 1
            assert store.count() == 1
    finally:
        store.close()
    cameras = [r["camera"] for r in reports]  # every 2 s of the clock, in order
    assert cameras[0] == "ok" and "reconnecting" in cameras and cameras[-1] == "ok"
