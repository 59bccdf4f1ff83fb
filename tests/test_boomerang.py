"""A boomerang at the station (issue 22): the state machine's recording, a clip from a shared
video through the real station on an injected clock (its MP4 probed and decoded), the
recording and result screens, a camera lost mid-recording, nobody in the clip, the Photo and
Boomerang buttons in every language, and `booth run --capture-kind boomerang`."""

from __future__ import annotations

import gc
import io
import logging
import os
import re
import subprocess
import sys
import time
import weakref
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from booth.bench import cover
from booth.clock import ManualClock
from booth.config import Config
from booth.errors import BoothError
from booth.i18n.catalogues import shipped
from booth.station.clip import Encoder, clip_size
from booth.station.clipscreens import RED
from booth.station.display import _KEYS
from booth.station.events import Boomerang
from booth.station.graphics import ACCENT
from booth.station.layout import SCREEN_HEIGHT_MM
from booth.station.loop import PhotoMaker, Station
from booth.station.machine import RECORD_SECONDS, Machine, State
from booth.station.outputs import Delivered, Kind, Product
from booth.station.photo import band_height
from booth.station.renderer import Renderer, View
from booth.station.screens import Screens
from booth.store import Store
from booth.wiring import boomerang_offered, load_pipeline
from tests.conftest import ROOT, asset, headless_run, plate_config, read_qr
from tests.test_screens import background, contrast
from tests.test_station import HandCamera

LANGUAGES = shipped().codes
FPS = 30


def test_machine_records_a_boomerang_instead_of_flashing():
    m = Machine(countdown_seconds=1, result_seconds=30, now=0.0)
    m.press(0.0, Kind.CLIP)
    assert m.state is State.COUNTDOWN and m.kind is Kind.CLIP
    assert m.tick(1.0)  # the recording starts where the shutter would fire
    assert m.state is State.RECORDING
    m.press(1.5)  # presses while recording are ignored
    assert m.state is State.RECORDING and m.recorded(1.0 + RECORD_SECONDS / 2) == 0.5
    assert not m.tick(1.0 + RECORD_SECONDS - 0.01)
    assert not m.tick(1.0 + RECORD_SECONDS)
    assert m.state is State.PROCESSING
    m.finished(True, 4.0)
    assert m.state is State.RESULT
    m.press(5.0)
    m.press(5.1)  # a plain press is a photo again
    assert m.kind is Kind.PHOTO
    m.reset(6.0)
    m.press(6.0, Kind.CLIP)
    m.tick(7.0)
    m.finished(False, 7.5)  # failed mid-recording: shown at once
    assert m.state is State.FAILED
    auto = Machine(1, 30, auto_capture_seconds=0.5, auto_kind=Kind.CLIP)
    auto.tick(0.5)
    assert auto.kind is Kind.CLIP and auto.tick(1.5) and auto.state is State.RECORDING


class Kept:
    """An output that keeps what it was given and gives a link."""

    def __init__(self) -> None:
        self.got: list[Product] = []

    def deliver(self, product: Product) -> Delivered:
        self.got.append(product)
        return Delivered(f"http://booth.test/p/clip{len(self.got)}",
                         datetime.now() + timedelta(hours=1), f"c{len(self.got)}")


@pytest.fixture(scope="module")
def pipeline():
    return load_pipeline(plate_config(), mirror=True)


@pytest.fixture(scope="module")
def video_frames() -> list[np.ndarray]:
    """A shared video (a person signing, 3.6 s), cropped to the camera's 1280x720."""
    cap = cv2.VideoCapture(str(asset("video/intel_asl_book.mp4")))
    frames = []
    while (frame := cap.read()[1]) is not None:
        frames.append(cover(frame, 1280, 720))
    cap.release()
    assert len(frames) > 100
    return frames


def station_over(pipeline, frames, output, clock: ManualClock, *, size=(1280, 720),
                 boomerang: bool = True) -> tuple[Station, HandCamera]:
    camera = HandCamera(frames, clock)
    camera.start()
    screens = Screens(*size, pipeline.plate, pipeline.scene, countdown=1, when=clock.now(),
                      boomerang=boomerang)
    maker = PhotoMaker(pipeline, screens, [output], retention_hours=1, clock=clock)
    return Station(camera, Renderer(pipeline, screens), maker, Machine(1, 30), clock=clock,
                   out=io.StringIO()), camera


def step(station: Station, camera: HandCamera, clock: ManualClock, seconds: float, *,
         frames: bool = True) -> list[tuple[State, np.ndarray]]:
    """The station stepped at the camera's rate; each step's state and (a copy of) screen."""
    shown = []
    for _ in range(round(seconds * FPS)):
        clock.advance(1 / FPS)
        if frames:
            camera.deliver()
        screen = station.step()
        shown.append((station.machine.state, screen.copy()))
    return shown


def until_done(station, camera, clock) -> None:
    """The clip is made on the worker in real time: steps until it is shown."""
    for _ in range(2000):
        if station.machine.state is not State.PROCESSING:
            return
        step(station, camera, clock, 1 / FPS, frames=False)
        time.sleep(0.005)
    raise AssertionError("the clip was not made in 10 s")


def decode(mp4: bytes) -> tuple[av.video.stream.VideoStream, list[np.ndarray]]:
    with av.open(io.BytesIO(mp4)) as container:
        stream = container.streams.video[0]
        info = (stream.codec_context.name, stream.codec_context.pix_fmt, stream.width,
                stream.height, stream.average_rate, len(container.streams.audio))
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    return info, frames


def red_share(region: np.ndarray) -> float:
    """The share of a region in the recording's red."""
    return float((np.abs(region.astype(int) - RED[::-1]).sum(axis=2) < 60).mean())


@pytest.mark.slow
def test_a_boomerang_from_a_shared_video_is_an_h264_clip_forwards_then_backwards(
        pipeline, video_frames, station_log, tmp_path):
    """Through the station on an injected clock: a press of Boomerang, the countdown, 2.5 s
    recorded with the badge and ring on the screen, the clip made on the worker and given to
    the output as a CLIP product; its MP4 is H.264 yuv420p at the clip's size with 2n-2
    frames, frame k the same picture as frame 2n-2-k; the result screen loops it on the
    clock with the output's link."""
    output, clock = Kept(), ManualClock()
    station, camera = station_over(pipeline, video_frames, output, clock)
    with station:
        step(station, camera, clock, 2.0)  # the camera's rate is measured meanwhile
        station.press(Kind.CLIP)
        shown = step(station, camera, clock, 1.0 + RECORD_SECONDS + 0.1)
        recording = [screen for state, screen in shown if state is State.RECORDING]
        assert abs(len(recording) - RECORD_SECONDS * FPS) <= 1  # the clock's float steps
        lay = station.screens.layout
        # The badge at the picture's top left, a red dot, on every recording screen; the
        # ring in the panel closes as the recording runs.
        badge = np.s_[lay.photo_y:lay.photo_y + round(90 * lay.height / 720),
                      lay.photo_x:lay.photo_x + round(90 * lay.height / 720)]
        assert all(red_share(screen[badge]) > 0.03 for screen in recording)
        panel = np.s_[:, lay.panel_x:]
        rings = [red_share(screen[panel]) for screen in recording]
        assert rings[-1] > rings[len(rings) // 2] > rings[2]
        cv2.imwrite(str(tmp_path / "recording.png"), recording[-1])  # to look at
        until_done(station, camera, clock)
        assert station.machine.state is State.RESULT, station.outcome.error
        (product,) = output.got
        assert product.kind is Kind.CLIP and product.poster is not None
        photo_h = pipeline.plate.shape[0] + band_height(pipeline.plate.shape[0])
        size = clip_size(pipeline.plate.shape[1], photo_h)
        assert product.picture.shape == (size[1], size[0], 3)
        poster = cv2.imdecode(np.frombuffer(product.poster, np.uint8), cv2.IMREAD_COLOR)
        assert poster.shape == product.picture.shape
        assert cv2.imdecode(np.frombuffer(product.thumb, np.uint8), cv2.IMREAD_COLOR) is not None

        (codec, pix_fmt, width, height, rate, audio), frames = decode(product.file)
        n = len(station._loop.frames)
        assert n >= 2 * FPS  # the preview's rate: a frame a step
        assert (codec, pix_fmt, (width, height), rate, audio) == (
            "h264", "yuv420p", size, Fraction(FPS), 0)
        assert len(frames) == 2 * n - 2
        for k in range(1, n - 1):
            assert np.abs(frames[k].astype(int) - frames[2 * n - 2 - k]).mean() < 1.0, k
        # ...and the picture moves: the visitor signs (frames far apart differ).
        assert np.abs(frames[0].astype(int) - frames[n - 1]).mean() > 2.0
        # Frame 0 is the first composite, as the result screen shows it before the loop.
        assert np.abs(frames[0].astype(int) - product.picture).mean() < 3.0

        # The result screen plays the clip by the clock: a frame each 1/30 s, the same
        # frame again a whole loop later, with the link's QR code beside it.
        start = clock.monotonic()
        pictures = {}
        for t in (0.0, 0.5, 1.0, (2 * n - 2) / FPS + 0.5):
            clock.advance(start + t + 0.001 - clock.monotonic())
            pictures[t] = lay.photo_region(station.step()).copy()
            assert station.machine.state is State.RESULT
        assert np.abs(pictures[0.0].astype(int) - pictures[0.5]).mean() > 1.0
        assert np.abs(pictures[0.5].astype(int) - pictures[1.0]).mean() > 1.0
        assert np.array_equal(pictures[0.5], pictures[(2 * n - 2) / FPS + 0.5])
        code = read_qr(station._result_screen)
        assert code == "http://booth.test/p/clip1"
    assert any(line.startswith("boomerang recorded: ") for line in station_log)


@pytest.mark.slow
def test_a_camera_lost_mid_recording_fails_cleanly_and_saves_nothing(
        pipeline, video_frames, station_log):
    output, clock = Kept(), ManualClock()
    station, camera = station_over(pipeline, video_frames, output, clock)
    with station:
        step(station, camera, clock, 2.0)
        station.press(Kind.CLIP)
        step(station, camera, clock, 1.0 + 1.0)
        assert station.machine.state is State.RECORDING
        recorder = station._recording.recorder
        camera.lose()
        shown = step(station, camera, clock, 0.2, frames=False)
        assert shown[0][0] is State.FAILED
        # The failed panel says the clip could not be saved: the screen's panel shows text.
        screen, lay = shown[-1][1], station.screens.layout
        assert np.abs(screen[:, lay.panel_x:].astype(int)
                      - station.screens.base[:, lay.panel_x:]).max() > 100
        with pytest.raises(BoothError, match="cancelled"):
            recorder.finish()  # the recorder was cancelled: no clip will come
        time.sleep(0.3)  # nothing is made later either
        step(station, camera, clock, 0.1, frames=False)
    assert output.got == [] and station.captures == 0 and station._recording is None
    assert "boomerang failed: the camera dropped out while recording; nothing saved" in \
        station_log


def test_a_boomerang_with_nobody_in_it_says_so_and_saves_nothing(pipeline, station_log):
    empty = np.full((720, 1280, 3), (232, 236, 238), np.uint8)
    output, clock = Kept(), ManualClock()
    station, camera = station_over(pipeline, [empty, empty.copy()], output, clock)
    with station:
        step(station, camera, clock, 1.0)
        station.press(Kind.CLIP)
        states = [s for s, _ in step(station, camera, clock, 1.0 + RECORD_SECONDS + 0.1)]
        assert State.RECORDING in states and states[-1] is State.NOBODY
    assert output.got == [] and station.captures == 0
    assert "boomerang: nobody clearly in front of the camera; no clip made" in station_log


def test_without_the_boomerang_offered_b_takes_nothing(pipeline, video_frames):
    output, clock = Kept(), ManualClock()
    station, camera = station_over(pipeline, video_frames[:2], output, clock, boomerang=False)
    with station:
        assert station.screens.kind_buttons == [] and not station.boomerang
        station.press(Kind.CLIP)
        assert station.machine.state is State.ATTRACT
        station.press()
        assert station.machine.state is State.COUNTDOWN and station.machine.kind is Kind.PHOTO


def test_keys_and_touches_choose_the_kind(pipeline):
    screens = Screens(1280, 720, pipeline.plate, pipeline.scene, 3, boomerang=True)
    photo, clip = screens.kind_buttons
    assert screens.kind_at(photo.x + 5, photo.y + 5) is Kind.PHOTO
    assert screens.kind_at(clip.x + clip.w - 5, clip.y + clip.h - 5) is Kind.CLIP
    assert screens.kind_at(clip.x - 2, clip.y + 5) is None  # the gap between them
    assert screens.kind_at(10, 10) is None  # the picture: a photo, as any touch
    assert _KEYS[ord("b")] == _KEYS[ord("B")] == Boomerang()


def test_boomerang_offered_follows_the_config_and_the_encoder(monkeypatch, caplog):
    cfg = Config()
    assert boomerang_offered(cfg)
    cfg.station.boomerang = False
    assert not boomerang_offered(cfg)

    def missing():
        raise BoothError("boomerang clips need PyAV")

    monkeypatch.setattr("booth.station.clip.require_encoder", missing)
    cfg.station.boomerang = True
    with caplog.at_level(logging.WARNING, "booth.wiring"):
        assert not boomerang_offered(cfg)
    assert [r.getMessage() for r in caplog.records] == [
        "no Boomerang on the attract screen: boomerang clips need PyAV"]


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080), (800, 480)])
@pytest.mark.parametrize("code", LANGUAGES)
@pytest.mark.slow
def test_the_kind_buttons_and_recording_texts_fit_read_and_are_big_enough(pipeline, code,
                                                                          size):
    """In every language and display: the Photo and Boomerang buttons, the recording's
    badge and panel, the clip's processing and failed panels fit their boxes, overlap no
    other text of the attract panel, read at 4.5:1 at least, and the buttons are 15 mm."""
    screens = Screens(*size, pipeline.plate, pipeline.scene, 3, boomerang=True,
                      when=datetime(2026, 11, 25, 10, 0))
    screens.set_language(code)
    texts, (width, height) = screens.texts, size
    names = ("kind photo", "kind clip", "recording", "recording panel", "processing clip",
             "failed clip")
    boxes = {name: (block, box) for name, block, box in texts.blocks}
    assert set(names) <= boxes.keys() and "press" not in boxes
    for name in names:
        block, (x, y, w, h) = boxes[name]
        assert x >= 0 and x + w <= width and y >= 0 and y + h <= height, (name, code, size)
        assert block.height <= h and all(line.width <= w for line in block.lines), name
        assert all(line.font.size >= 10 for line in block.lines), (name, code, size)
        assert not block.lines[-1].text.endswith("…"), (name, code, size)
    attract = [box for name, (_, box) in boxes.items()
               if name in ("title", "kind photo", "kind clip", "qr", "privacy")
               or name.startswith("language")]
    for i, (ax, ay, aw, ah) in enumerate(attract):
        for bx, by, bw, bh in attract[i + 1:]:
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, code
    mm = SCREEN_HEIGHT_MM / height
    assert all(min(b.w, b.h) * mm >= 15.0 for b in screens.kind_buttons)

    renderer = Renderer(None, screens)  # nobody in view: the pipeline is never asked
    drawn = {state: renderer.draw(View(state, None, None, True, countdown_left=0.5,
                                       clip=True)).copy()
             for state in (State.ATTRACT, State.RECORDING, State.PROCESSING, State.FAILED)}
    away = renderer.draw(View(State.ATTRACT, None, None, False)).copy()
    for b in screens.kind_buttons:  # with the camera away, no button invites a capture
        middle = away[b.y + b.h // 2, b.x + 4:b.x + b.w - 4].astype(int)
        assert not (np.abs(middle - ACCENT[::-1]).sum(axis=1) < 30).any(), b.code
    white = np.full_like(drawn[State.ATTRACT], 255)  # the worst picture under the badge
    texts.clip.badge.draw(white)
    on = {"kind photo": drawn[State.ATTRACT], "kind clip": drawn[State.ATTRACT],
          "recording": white, "recording panel": drawn[State.RECORDING],
          "processing clip": drawn[State.PROCESSING], "failed clip": drawn[State.FAILED]}
    for name, screen in on.items():
        block, box = boxes[name]
        for line in block.lines:
            assert contrast(line.colour, background(screen, box)) >= 4.5, (name, line.text)
    if code != "en":  # every word of it translated
        english = Screens(*size, pipeline.plate, pipeline.scene, 3, boomerang=True)
        words = {name: " ".join(li.text for li in block.lines)
                 for name, block, _ in english.texts.blocks}
        for name in names:
            assert " ".join(li.text for li in boxes[name][0].lines) != words[name], name


@pytest.mark.slow
def test_booth_run_headless_capture_kind_boomerang_prints_its_link(tmp_path: Path):
    data = tmp_path / "data"
    proc = headless_run(tmp_path, "--auto-capture", "1", "--capture-kind", "boomerang",
                        "--max-captures", "1", public_url="http://booth.local:8000")
    assert proc.returncode == 0, proc.stderr
    (link,) = proc.stdout.splitlines()
    assert re.fullmatch(r"http://booth\.local:8000/p/[A-Za-z0-9_-]{22,}", link), link
    assert "boomerang recorded: " in proc.stderr and "Traceback" not in proc.stderr
    store = Store(data)
    try:
        capture = store.resolve(link.rsplit("/", 1)[1])
        assert capture is not None and store.count() == 1 and capture.kind == "clip"
        (codec, pix_fmt, width, height, _, audio), frames = decode(capture.path.read_bytes())
        assert (codec, pix_fmt, height, audio) == ("h264", "yuv420p", 720, 0)
        assert len(frames) % 2 == 0 and len(frames) >= 10  # 2n-2 (n: what a loaded machine took)
    finally:
        store.close()


def test_capture_kind_boomerang_with_the_boomerang_off_is_one_clear_line(tmp_path: Path):
    config = tmp_path / "booth.toml"
    config.write_text("[station]\nboomerang = false\n")
    proc = subprocess.run(
        [sys.executable, "-m", "booth", "run", "--headless", "--source", "nothing.mp4",
         "--config", str(config), "--data-dir", str(tmp_path / "data"), "--auto-capture", "1",
         "--capture-kind", "boomerang"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "booth: error: --capture-kind boomerang: [station] boomerang is false in the config; "
        "set it to true"]


def test_a_clip_encoder_is_freed_as_soon_as_it_is_dropped():
    """Its x264 state (about 70 MB at the clip's size) goes with the last reference, not at
    Python's occasional full collection: a station's memory grew by that much a boomerang
    while an encoder -> container -> io_open -> encoder cycle held it."""
    encoder = Encoder(av, (64, 48), 30, 20, "veryfast", 1, None)
    encoder.encode(np.zeros((72, 64), np.uint8))  # one I420 frame of 64x48
    assert encoder.close()[4:8] == b"ftyp"
    gone = weakref.ref(encoder)
    gc.disable()
    try:
        del encoder
        assert gone() is None
    finally:
        gc.enable()
