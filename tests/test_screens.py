"""The station's screens in every language: text fitted by measuring, touch targets, contrast,
language buttons and keys, the countdown ring, the Wi-Fi code beside the photo's, and a
visitor's whole visit in German."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.camera.sources import open_source
from booth.config import load_config
from booth.i18n.catalogues import shipped
from booth.scene.definition import load_scene
from booth.station.events import Event, NextLanguage, PickLanguage, Press, Quit, Tap
from booth.station.graphics import ACCENT, INK, PANEL, font
from booth.station.layout import SCREEN_HEIGHT_MM
from booth.station.loop import PhotoMaker, Station
from booth.station.machine import Machine, State
from booth.station.outputs.store import StoreOutput
from booth.station.photo import band_height, caption_band
from booth.station.qr import Wifi, qr_matrix
from booth.station.renderer import Renderer, View
from booth.station.screens import Screens, screen_settings
from booth.station.textfit import Para, fit, wrap
from booth.store import Store
from booth.wiring import load_pipeline
from tests.conftest import PLATE, asset, plate_config, read_qr

LANGUAGES = shipped().codes
DISPLAYS = [(1280, 720), (1920, 1080), (800, 480)]
LINK = "http://192.168.100.200:8000/p/AbCdEfGhIjKlMnOpQrStUv"
# The longest name and password a WPA network has (32 bytes, 63 characters).
LONG_WIFI = Wifi("Museum of Mars Exploration 2.4GH",
                 "correct-horse-battery-staple-perseverance-ingenuity-jezero-2026")


@pytest.fixture(scope="module")
def plate() -> np.ndarray:
    return cv2.imread(str(asset(PLATE)), cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def scene():
    return load_scene("sol46")


def screens_for(plate, scene, size=(1280, 720), **kw) -> Screens:
    return Screens(*size, plate, scene, 3, when=datetime(2026, 11, 25, 10, 0), **kw)


def result_screen(screens: Screens) -> np.ndarray:
    photo = np.full((1412 + band_height(1412), 1920, 3), 90, np.uint8)
    return screens.result(photo, qr_matrix(LINK), LINK,
                          datetime.now() + timedelta(hours=24), 24)


def codes_on(screen: np.ndarray) -> list[str]:
    """Every QR code on the screen, left to right: each white square big enough to be one
    (a code's quiet zone, or the card round it) is cut out and decoded on its own."""
    white = (screen.min(axis=2) > 245).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(white)
    found = []
    for x, y, w, h, area in stats[1:]:
        if w >= screen.shape[0] // 8 and abs(w - h) <= 2 and area > w * h // 2:
            square = cv2.copyMakeBorder(screen[y:y + h, x:x + w], 8, 8, 8, 8,
                                        cv2.BORDER_CONSTANT, value=(255, 255, 255))
            found.append((x, read_qr(square)))
    return [text for _, text in sorted(found)]


def luminance(rgb) -> float:
    c = np.asarray(rgb, float) / 255
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return float(c @ [0.2126, 0.7152, 0.0722])


def contrast(a, b) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def background(screen: np.ndarray, box) -> tuple[int, int, int]:
    """The most common colour (RGB) in a box of the screen: what the text stands on."""
    x, y, w, h = box
    pixels = screen[y:y + h, x:x + w].reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    b, g, r = colours[counts.argmax()]
    return int(r), int(g), int(b)


def test_wrap_and_shrink_keep_text_inside_its_box():
    long = "Donaudampfschifffahrtsgesellschaftskapitänsmütze " * 3
    block = fit([Para(long, 60, "Bold", INK), Para("klein", 30)], 200, 120)
    assert block.height <= 120 and block.scale < 1
    assert all(line.width <= 200 for line in block.lines)
    assert "".join(line.text for line in block.lines[:-1]).replace(" ", "") \
        == long.replace(" ", "")  # the over-long words are broken, not dropped
    # A word wider than the box makes the text smaller rather than break, where it can.
    (line,) = fit([Para("Entschuldigung!", 46, "Black")], 322, 300).lines
    assert line.text == "Entschuldigung!" and line.width <= 322
    assert wrap("one two three", font(20), 10_000) == ["one two three"]
    assert wrap("a\nb", font(20), 10_000) == ["a", "b"]
    # Far too much text for the box: the smallest readable size, cut with an ellipsis.
    block = fit([Para("word " * 400, 30)], 200, 100)
    assert block.height <= 100 and block.lines[-1].text.endswith("…")
    assert {line.font.size for line in block.lines} == {10}


@pytest.mark.parametrize("wifi", [None, LONG_WIFI], ids=["", "wifi"])
@pytest.mark.parametrize("size", DISPLAYS)
@pytest.mark.parametrize("code", LANGUAGES)
@pytest.mark.slow
def test_every_text_fits_its_box_on_every_screen(plate, scene, code, size, wifi):
    """No text runs over its box, every box is on the screen, and the attract screen's boxes
    never overlap: in every language and on small and large displays, with the longest Wi-Fi
    name and password too."""
    screens = screens_for(plate, scene, size, policy_url="https://museum.example/privacy",
                          wifi=wifi)
    screens.set_language(code)
    width, height = size
    result_screen(screens)
    placed = [(name, block, box) for name, block, box in screens.texts.blocks]
    placed += [(f"result {i}", block, box) for i, (block, box) in
               enumerate(screens.result_blocks)]
    for name, block, (x, y, w, h) in placed:
        assert x >= 0 and x + w <= width and y >= 0 and y + h <= height, (name, code, size)
        assert block.height <= h, (name, code, size)
        assert all(line.width <= block.width <= w for line in block.lines), (name, code)
        assert all(line.font.size >= 10 for line in block.lines), (name, code)
        assert not block.lines[-1].text.endswith("…"), (name, code, size)  # nothing cut
    for shown in (("press", "qr"), ("waiting",)):  # the attract panel, and the camera away
        attract = [box for name, _, box in screens.texts.blocks
                   if name in ("title", *shown, "privacy") or name.startswith("language")]
        for i, (ax, ay, aw, ah) in enumerate(attract):
            for bx, by, bw, bh in attract[i + 1:]:
                assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, code


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_language_buttons_are_at_least_15_mm_on_a_24_inch_screen(plate, scene, size):
    """The station's picture fills a 24-inch 16:9 screen (1920x1080)."""
    screens = screens_for(plate, scene, size)
    mm_per_pixel = SCREEN_HEIGHT_MM / size[1]
    assert len(screens.buttons) == len(LANGUAGES)
    for button in screens.buttons:
        assert min(button.w, button.h) * mm_per_pixel >= 15.0, button


@pytest.mark.parametrize("wifi", [None, LONG_WIFI], ids=["", "wifi"])
@pytest.mark.parametrize("code", LANGUAGES)
@pytest.mark.slow
def test_text_contrast_is_at_least_4_5_to_1(plate, scene, code, wifi):
    screens = screens_for(plate, scene, wifi=wifi)
    screens.set_language(code)
    texts = screens.texts
    attract = texts.base.copy()
    screens.draw(attract, texts.attract)
    # The overlays over the live picture, on the worst picture behind them: white.
    white = np.full_like(attract, 255)
    texts.step_in.draw(white)
    texts.camera_banner.draw(white)
    panels = {}
    texts.clip.badge.draw(white)
    clip = texts.clip
    for overlays in (texts.countdown_panel, texts.processing_panel, texts.failed_panel,
                     texts.camera_panel, clip.recording_panel, clip.processing_panel,
                     clip.failed_panel):
        screen = texts.base.copy()
        screens.draw(screen, overlays)
        panels[id(overlays)] = screen
    on = {"step in": white, "camera": white, "get ready": panels[id(texts.countdown_panel)],
          "processing": panels[id(texts.processing_panel)],
          "failed": panels[id(texts.failed_panel)], "waiting": panels[id(texts.camera_panel)],
          "recording": white, "recording panel": panels[id(clip.recording_panel)],
          "processing clip": panels[id(clip.processing_panel)],
          "failed clip": panels[id(clip.failed_panel)]}
    for name, block, box in texts.blocks:
        bg = background(on.get(name, attract), box)
        for line in block.lines:
            assert contrast(line.colour, bg) >= 4.5, (name, line.text, line.colour, bg)
    result = result_screen(screens)
    for block, box in screens.result_blocks:
        for line in block.lines:
            assert contrast(line.colour, background(result, box)) >= 4.5, line.text


def test_language_buttons_by_touch_and_keys(plate, scene):
    screens = screens_for(plate, scene)
    assert screens.language.code == "en"
    german = next(b for b in screens.buttons if b.code == "de")
    before = screens.base.copy()
    screens.draw(before, screens.attract)
    assert screens.language_event(Tap(german.x + 5, german.y + german.h - 5))
    assert screens.language.code == "de"
    after = screens.base.copy()
    screens.draw(after, screens.attract)
    # The chosen button is lit (the accent colour), and the panel's words changed.
    middle = after[german.y + 3, german.x + german.w // 2][::-1]
    assert tuple(int(c) for c in middle) == ACCENT
    panel = slice(0, german.y), slice(screens.layout.panel_x, None)
    assert np.abs(after[panel].astype(int) - before[panel]).mean() > 2
    assert not screens.language_event(Tap(german.x - 30, german.y - 30))  # the shutter
    assert not screens.language_event(Press())
    assert screens.language_event(NextLanguage())
    assert screens.language.code == LANGUAGES[(LANGUAGES.index("de") + 1) % len(LANGUAGES)]
    assert screens.language_event(PickLanguage(1)) and screens.language.code == LANGUAGES[0]
    assert screens.language_event(PickLanguage(9))  # no ninth language: nothing changes
    assert screens.language.code == LANGUAGES[0]


def test_countdown_ring_shrinks_with_the_time_left(plate, scene):
    screens = screens_for(plate, scene)
    accent = np.array(ACCENT[::-1], int)
    cx, cy, d = screens._dial

    def ring_pixels(left: float) -> int:
        screen = screens.base.copy()
        screens.draw_countdown(screen, 2, left)
        dial = screen[cy - d // 2:cy + d // 2, cx - d // 2:cx + d // 2].astype(int)
        return int((np.abs(dial - accent).sum(axis=2) < 40).sum())

    counts = [ring_pixels(left) for left in (1.0, 0.75, 0.5, 0.25, 0.0)]
    assert counts[0] > 1000 and counts[-1] < 50
    assert counts == sorted(counts, reverse=True)
    assert counts[2] == pytest.approx(counts[0] / 2, rel=0.15)


def test_caption_band_in_the_visitors_language(scene):
    when = datetime(2026, 11, 25, 10, 0)
    en = caption_band(1920, 163, scene, when)
    de = caption_band(1920, 163, scene, when, shipped()["de"])
    assert en.shape == de.shape
    assert np.abs(en.astype(int) - de).mean() > 1  # "Jezero-Krater", "25. November 2026"


class ScriptedDisplay:
    """A visitor: touches Deutsch, presses, waits for the photo, presses again, leaves."""

    def __init__(self, station_ref: list, button) -> None:
        self.station_ref, self.button = station_ref, button
        self.step, self.seen = 0, []
        self.deadline = time.monotonic() + 60

    def show(self, screen) -> None:
        station = self.station_ref[0]
        self.seen.append((station.machine.state, station.screens.language.code))

    def poll(self, wait_ms: int) -> list[Event]:
        time.sleep(wait_ms / 1000)
        station = self.station_ref[0]
        state = station.machine.state
        if time.monotonic() > self.deadline:
            return [Quit()]
        if self.step == 0 and len(self.seen) > 3:
            self.step = 1
            return [Tap(self.button.x + 10, self.button.y + 10)]
        if self.step == 1:
            self.step = 2
            return [Press()]
        if self.step == 2 and state is State.RESULT:
            self.step = 3
            return [Press()]
        if self.step == 3 and state is State.ATTRACT:
            self.step = 4
            return []
        if self.step == 4:
            return [Quit()]
        return []

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_a_visit_in_german_then_back_to_the_default_language(tmp_path: Path):
    pipeline = load_pipeline(plate_config(), mirror=True)
    screens = Screens(1280, 720, pipeline.plate, pipeline.scene, 1)
    store = Store(tmp_path / "data")
    source = open_source(str(asset("people/rembg_girl-2.jpg")))
    source.start()
    german = next(b for b in screens.buttons if b.code == "de")
    ref: list = []
    display = ScriptedDisplay(ref, german)
    maker = PhotoMaker(pipeline, screens, [StoreOutput(store, "http://x")], retention_hours=1)
    station = Station(source, Renderer(pipeline, screens), maker, Machine(1, 30))
    ref.append(station)
    try:
        station.run(display)
    finally:
        source.close()
    try:
        assert display.step == 4, display.seen[-3:]
        visit = [code for state, code in display.seen
                 if state in (State.COUNTDOWN, State.CAPTURE, State.RESULT)]
        assert visit and set(visit) == {"de"}
        assert display.seen[-1] == (State.ATTRACT, "en")  # the next visitor: the default
        texts = " ".join(line.text for block, _ in screens.result_blocks for line in block.lines)
        assert texts.startswith("Scannen und Foto holen")
        assert "Verfügbar bis" in texts and "(1 Stunde)" in texts
        (capture,) = store.captures()
        photo = cv2.imread(str(capture.path))
        band = photo[-band_height(1412):]
        when = datetime.fromtimestamp(capture.created_at)
        de = caption_band(1920, band_height(1412), pipeline.scene, when, shipped()["de"])
        en = caption_band(1920, band_height(1412), pipeline.scene, when)
        assert np.abs(band.astype(int) - de).mean() < np.abs(band.astype(int) - en).mean() / 2
    finally:
        store.close()


def test_privacy_notice_on_the_attract_screen_uses_the_museums_text(plate, scene):
    own = "Photos are kept for one day. Staff delete them on request."
    screens = screens_for(plate, scene, privacy_text=own, retention_hours=24,
                          policy_url="https://museum.example/privacy")
    (privacy,) = [b for name, b, _ in screens.texts.blocks if name == "privacy"]
    words = " ".join(line.text for line in privacy.lines)
    assert own in words and "https://museum.example/privacy" in words
    default = screens_for(plate, scene, retention_hours=12)
    default.set_language("fr")
    (privacy,) = [b for name, b, _ in default.texts.blocks if name == "privacy"]
    words = " ".join(line.text for line in privacy.lines)
    assert words.startswith("Confidentialité Votre photo est conservée 12")


@pytest.mark.parametrize("wifi", [None, LONG_WIFI], ids=["", "wifi"])
@pytest.mark.parametrize("code", ["es", "fr", "de"])
@pytest.mark.slow
def test_no_english_is_left_on_any_station_screen(plate, scene, code, wifi):
    """Every text block of every screen differs from its English version (the language
    names on the buttons and the link excepted)."""
    def words(language: str) -> dict[str, str]:
        screens = screens_for(plate, scene, wifi=wifi)
        screens.set_language(language)
        result_screen(screens)
        found = {name: " ".join(line.text for line in block.lines)
                 for name, block, _ in screens.texts.blocks if not name.startswith("language")}
        for i, (block, _) in enumerate(screens.result_blocks):
            found[f"result {i}"] = " ".join(line.text for line in block.lines
                                            if line.text != LINK)
        return found

    english, other = words("en"), words(code)
    assert other.keys() == english.keys()
    same = {name for name in english if english[name] == other[name]}
    assert same == set(), {name: other[name] for name in same}


def test_warm_up_draws_every_language_ahead_of_a_touch(plate, scene):
    screens = screens_for(plate, scene, (640, 360))
    screens.warm_up().join(timeout=60)
    assert sorted(screens._texts) == sorted(LANGUAGES)
    drawn = screens._texts["de"]
    screens.set_language("de")
    assert screens.texts is drawn  # nothing is drawn on the frame loop


@pytest.mark.parametrize("size", DISPLAYS)
def test_the_wifi_code_comes_first_beside_the_photos(plate, scene, size, tmp_path: Path):
    """[server] wifi_ssid and wifi_password, from the config file to the pixels: two codes,
    the network's first (its name and password also in words), then the photo's."""
    toml = tmp_path / "booth.toml"
    toml.write_text('[server]\nwifi_ssid = \'Museum "Guest"; 2.4\'\n'
                    'wifi_password = "mars:rover,2026\\\\"\n', encoding="utf-8")
    cfg = load_config(toml, environ={})
    screens = screens_for(plate, scene, size, **screen_settings(cfg))
    screen = result_screen(screens)
    assert codes_on(screen) == [r'WIFI:T:WPA;S:Museum \"Guest\"\; 2.4;P:mars\:rover\,2026\\;;',
                                LINK]
    blocks = ["".join(line.text.replace(" ", "") for line in block.lines)  # as wrapped
              for block, _ in screens.result_blocks]
    assert blocks[:3] == ["1.\u00a0JointheWi-Fi", "2.\u00a0Getyourphoto",
                          'NetworkMuseum"Guest";2.4Passwordmars:rover,2026\\']
    (words,) = [" ".join(line.text for line in block.lines)
                for name, block, _ in screens.texts.blocks if name == "qr"]
    assert words.startswith("Your photo appears with two QR codes")
    # An open network: its name, no password, and a code that says so.
    screens = screens_for(plate, scene, size, wifi=Wifi("Museum"))
    screen = result_screen(screens)
    assert codes_on(screen) == ["WIFI:T:nopass;S:Museum;;", LINK]
    lines = [line.text for block, _ in screens.result_blocks for line in block.lines]
    assert "Museum" in lines and "Password" not in lines


@pytest.mark.parametrize("size", DISPLAYS)
def test_the_result_screens_code_has_whole_pixels_a_module(plate, scene, size):
    """The code on the screen is its modules, each the same whole number of pixels square
    (it was once resized to the card with nearest neighbours: modules 6 and 7 px wide)."""
    screen = result_screen(screens_for(plate, scene, size))
    modules = qr_matrix(LINK)
    dark = np.argwhere(screen.max(axis=2) < 10)
    # The code's own dark pixels: those inside the white card (the panel round it is dark).
    white = (screen.min(axis=2) > 245).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(white)
    card = max(range(1, len(stats)), key=lambda i: stats[i][4] if abs(
        stats[i][2] - stats[i][3]) <= 2 else 0)
    x, y, w, h, _ = stats[card]
    inside = dark[(dark[:, 0] >= y) & (dark[:, 0] < y + h) & (dark[:, 1] >= x)
                  & (dark[:, 1] < x + w)]
    (y0, x0), (y1, x1) = inside.min(axis=0), inside.max(axis=0) + 1
    code = screen[y0:y1, x0:x1, 0] < 128
    n = modules.shape[0] - 8  # the quiet zone is the card's white
    scale = code.shape[0] // n
    assert code.shape == (n * scale, n * scale) and scale >= 4
    assert np.array_equal(code, np.kron(modules[4:-4, 4:-4], np.ones((scale, scale), bool)))


@pytest.mark.parametrize("size", DISPLAYS)
def test_without_a_wifi_name_the_result_screen_has_the_photos_code_alone(plate, scene, size):
    screens = screens_for(plate, scene, size, **screen_settings(load_config(None, environ={})))
    assert screens.wifi is None
    assert codes_on(result_screen(screens)) == [LINK]
    lines = [line.text for block, _ in screens.result_blocks for line in block.lines]
    assert " ".join(lines).startswith("Scan to get your photo")
    assert "Network" not in lines
    (words,) = [" ".join(line.text for line in block.lines)
                for name, block, _ in screens.texts.blocks if name == "qr"]
    assert words.startswith("Your photo appears with a QR code")


def near(image: np.ndarray, rgb, tolerance: int = 60) -> np.ndarray:
    """Where `image` (BGR) has about the colour `rgb`."""
    return np.abs(image.astype(int) - np.array(rgb[::-1])).sum(axis=2) < tolerance


@pytest.mark.parametrize("size", DISPLAYS)
def test_the_countdowns_last_moment_leaves_no_dot_in_its_digit(plate, scene, size):
    """OpenCV draws an arc of under a degree as a dot at its centre: the middle of the digit.
    At the last moments of the countdown no ring is drawn, and nothing orange is in the
    digit's middle; a sweep of a degree or more is still a ring."""
    screens = screens_for(plate, scene, size)
    cx, cy, d = screens._dial
    for left in (1e-4, 0.4 / 360, 0.99 / 360, 1.5 / 360, 0.5):
        screen = screens.base.copy()
        screens.draw_countdown(screen, 1, left)
        middle = screen[cy - d // 4:cy + d // 4, cx - d // 4:cx + d // 4]
        assert not near(middle, ACCENT).any(), (left, size)
        ring = near(screen[cy - d // 2:cy + d // 2, cx - d // 2:cx + d // 2], ACCENT).sum()
        assert (ring > 0) == (left * 360 >= 1.0), (left, size, ring)


def drawn_rows(panel: np.ndarray) -> np.ndarray:
    """The rows of the panel with something drawn on them (not the panel's colour alone)."""
    return np.flatnonzero((np.abs(panel.astype(int) - PANEL[::-1]).sum(axis=2) > 40).any(1))


@pytest.mark.parametrize("wifi", [None, LONG_WIFI], ids=["", "wifi"])
@pytest.mark.parametrize("code", LANGUAGES)
def test_the_result_screen_has_no_gap_above_its_new_photo_hint(plate, scene, code, wifi):
    """The hint ("Press SPACE for a new photo") follows the expiry's lines at the spacing of
    the rest (it was about 115 pixels below them), and the column is centred in the panel:
    the margins above and below it are alike."""
    screens = screens_for(plate, scene, wifi=wifi)
    screens.set_language(code)
    rows = drawn_rows(result_screen(screens)[:, screens.layout.panel_x + 4:])
    hint, (_, hint_y, _, _) = screens.result_blocks[-1]
    assert " ".join(line.text for line in hint.lines) == shipped()[code].gettext(
        "Press SPACE for a new photo")
    top = rows[rows >= hint_y][0]  # the hint's first row
    gap = top - rows[rows < hint_y][-1] - 1
    assert 0 < gap <= 36, (code, gap)
    above, below = rows[0], 720 - 1 - rows[-1]
    assert abs(above - below) <= 24, (code, above, below)


@pytest.mark.parametrize("code", LANGUAGES)
def test_with_the_camera_away_the_screen_invites_no_photo(plate, scene, code):
    """The attract screen with the camera unavailable: no "Press SPACE" button (its orange
    box is gone, in its place what the visitor may expect), the title, privacy notice and
    language buttons as they are; the banner over the picture says why."""
    screens = screens_for(plate, scene)
    screens.set_language(code)
    renderer = Renderer(None, screens)  # nobody in view: the pipeline is never asked
    attract = renderer.draw(View(State.ATTRACT, None, None, True)).copy()
    away = renderer.draw(View(State.ATTRACT, None, None, False)).copy()
    boxes = {name: box for name, _, box in screens.texts.blocks}
    x, y, w, h = boxes["press"]
    assert near(attract[y:y + h, x:x + w], ACCENT).mean() > 0.5  # the invitation...
    assert not near(away[y:y + h, x:x + w], ACCENT).any()  # ...is not shown
    for name in ("title", "privacy"):
        x, y, w, h = boxes[name]
        assert np.array_equal(attract[y:y + h, x:x + w], away[y:y + h, x:x + w]), name
    lang = shipped()[code]
    (waiting,) = [block for name, block, _ in screens.texts.blocks if name == "waiting"]
    said = " ".join(line.text for line in waiting.lines)
    assert said == " ".join([lang.gettext("One moment, please"), lang.gettext(
        "Photos can be taken again as soon as the camera is back.")])
    assert lang.gettext("Press SPACE") not in said
    x, y, w, h = boxes["waiting"]
    assert (np.abs(away[y:y + h, x:x + w].astype(int) - PANEL[::-1]).sum(axis=2) > 40).any()
    # Back to the attract screen when the camera is: the invitation again.
    assert np.array_equal(renderer.draw(View(State.ATTRACT, None, None, True)), attract)
