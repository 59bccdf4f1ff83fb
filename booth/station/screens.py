"""What the station shows: the live photo on the left, a panel that says what to do on the right.

Everything that does not change per frame (panel text, countdown digits, the caption band) is
rendered once per language, when that language is first shown; per frame the screen is a copy
of a base image, the live composite and a few small overlays. Every text is fitted to its box
by measuring it (booth.station.textfit), so no language runs off the screen.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass
from datetime import datetime, time
from typing import TypedDict

import cv2
import numpy as np
from PIL import Image, ImageDraw

from booth.config import Config
from booth.i18n import privacy
from booth.i18n.catalogues import Language, Languages, shipped
from booth.station.clipscreens import ClipTexts, clip_texts, draw_ring, kind_buttons
from booth.station.events import Event, NextLanguage, PickLanguage, Tap
from booth.station.graphics import ACCENT, INK, MUTED, PANEL, Overlay, font
from booth.station.layout import MIN_TARGET_MM, SCREEN_HEIGHT_MM, Button, Layout
from booth.station.outputs import Kind
from booth.station.photo import with_band
from booth.station.qr import Wifi, paste_code, qr_matrix
from booth.station.textfit import Block, Para, fit, render

PANEL_BGR = PANEL[::-1]


BUTTON = (40, 29, 22)  # an unselected language button (RGB)
MIN_ARC_DEGREES = 1.0  # the countdown's ring is drawn down to this sweep, and then not at all


@dataclass
class Texts:
    """Everything drawn in one language, rendered once when it is first needed."""

    base: np.ndarray  # the panel colour and the photo area's plate and caption band
    attract: list[Overlay]
    camera_panel: list[Overlay]  # the attract panel while the camera is away: no invitation
    step_in: Overlay
    countdown_panel: list[Overlay]
    digits: dict[int, Overlay]
    processing_panel: list[Overlay]
    camera_banner: Overlay
    failed_panel: list[Overlay]
    nobody_panel: list[Overlay]
    clip: ClipTexts  # the boomerang's (booth.station.clipscreens)
    blocks: list[tuple[str, Block, tuple[int, int, int, int]]]  # (name, text, box) for checks


class Screens:
    """The station's screens in every language; `language` is the one shown now."""

    def __init__(self, width: int, height: int, plate: np.ndarray, scene, countdown: int,
                 when: datetime | None = None, *, languages: Languages | None = None,
                 retention_hours: float = 24.0, privacy_text: str = "",
                 policy_url: str = "", wifi: Wifi | None = None,
                 boomerang: bool = False, printing: bool = False) -> None:
        self.scene = scene
        self.countdown = countdown
        self.languages = languages or shipped()
        self.language: Language = self.languages.default
        self.retention_hours, self.privacy_text = retention_hours, privacy_text
        self.policy_url = policy_url
        self.printing = printing  # the result screen keeps room for printing's button or line
        self.print_box = (0, 0, 0, 0)  # that room on the last result screen (x, y, w, h)
        self.wifi = wifi  # the network phones join first (LAN mode), shown beside the photo's code
        self._wifi_code = qr_matrix(wifi.payload) if wifi else None
        self.layout = lay = Layout.for_display(width, height, plate.shape[1], plate.shape[0])
        self.plate_small = cv2.resize(plate, (lay.photo_w, lay.plate_h),
                                      interpolation=cv2.INTER_AREA)
        self._texts: dict[str, Texts] = {}
        self._rendering = threading.Lock()  # one language drawn at a time
        self._warming: tuple[threading.Thread, threading.Event] | None = None
        self.date = (when or datetime.now()).date()
        self._u = u = height / 720  # type scale: sizes below are for a 720-pixel-high display
        self._px, self._pw = lay.panel_x + round(28 * u), lay.panel_w - round(56 * u)
        self.buttons = self._buttons()
        # Offered (`boomerang`): Photo and Boomerang buttons where "Press SPACE" is otherwise.
        self.kind_buttons = kind_buttons(self._px, round(180 * u), self._pw, round(120 * u),
                                         round(12 * u)) if boomerang else []
        self._texts_for(self.language)  # the default language is ready before the first frame

    # --- language ------------------------------------------------------------------------

    def set_language(self, code: str) -> None:
        if code in self.languages:
            self.language = self.languages[code]

    def language_event(self, event: Event) -> bool:
        """Handle a language button's touch or a language key; True when the event chose a
        language (so it is not also a shutter press)."""
        codes = self.languages.codes
        match event:
            case Tap(x, y):
                for button in self.buttons:
                    if button.contains(x, y):
                        self.set_language(button.code)
                        return True
                return False
            case NextLanguage():
                self.set_language(codes[(codes.index(self.language.code) + 1) % len(codes)])
                return True
            case PickLanguage(n):
                if 1 <= n <= len(codes):
                    self.set_language(codes[n - 1])
                return True
        return False

    def kind_at(self, x: int, y: int) -> Kind | None:
        """The kind of capture whose button (Photo, Boomerang) is at (x, y), if any."""
        return next((Kind(b.code) for b in self.kind_buttons if b.contains(x, y)), None)

    def _buttons(self) -> list[Button]:
        """One button per language, two to a row, at the foot of the panel."""
        u, px, pw, lay = self._u, self._px, self._pw, self.layout
        codes = self.languages.codes if len(self.languages) > 1 else []
        cols = 2 if len(codes) > 1 else 1
        gap = round(10 * u)
        bw = (pw - gap * (cols - 1)) // cols
        bh = max(round(52 * u), math.ceil(lay.height * MIN_TARGET_MM / SCREEN_HEIGHT_MM))
        rows = math.ceil(len(codes) / cols)
        top = lay.height - round(24 * u) - rows * bh - (rows - 1) * gap
        return [Button(code, px + (i % cols) * (bw + gap), top + (i // cols) * (bh + gap), bw, bh)
                for i, code in enumerate(codes)]

    @property
    def texts(self) -> Texts:
        return self._texts.get(self.language.code) or self._texts_for(self.language)

    def _texts_for(self, lang: Language) -> Texts:
        with self._rendering:
            if lang.code not in self._texts:
                self._texts[lang.code] = self._render(lang)
            return self._texts[lang.code]

    def warm_up(self) -> threading.Thread:
        """Draw every language now, on a thread, so a touch on a language button shows it
        at once rather than after the second it takes to draw a language on a big display.
        It draws with OpenCV: stop_warm_up() before the process exits (booth.station.stops)."""
        stop = threading.Event()
        thread = threading.Thread(target=lambda: [self._texts_for(lang) for lang in self.languages
                                                  if not stop.is_set()],
                                  name="screens-warm-up", daemon=True)
        thread.start()
        self._warming = thread, stop
        return thread

    def stop_warm_up(self) -> None:
        if self._warming is not None:  # it ends once the language it draws is done
            self._warming[1].set()
            self._warming[0].join()

    # What the station draws, in the language shown now.
    base = property(lambda self: self.texts.base)
    attract = property(lambda self: self.texts.attract)
    camera_panel = property(lambda self: self.texts.camera_panel)
    step_in = property(lambda self: self.texts.step_in)
    countdown_panel = property(lambda self: self.texts.countdown_panel)
    digits = property(lambda self: self.texts.digits)
    processing_panel = property(lambda self: self.texts.processing_panel)
    camera_banner = property(lambda self: self.texts.camera_banner)
    failed_panel = property(lambda self: self.texts.failed_panel)
    nobody_panel = property(lambda self: self.texts.nobody_panel)
    clip = property(lambda self: self.texts.clip)

    def set_date(self, small_plate: np.ndarray, when: datetime) -> None:
        """A new day: the caption band's date changes, so every language is drawn again."""
        with self._rendering:
            self.date = when.date()
            self._texts.clear()

    # --- drawing ---------------------------------------------------------------------------

    def _render(self, lang: Language) -> Texts:
        _ = lang.gettext
        u, px, pw, lay = self._u, self._px, self._pw, self.layout
        blocks: list[tuple[str, Block, tuple[int, int, int, int]]] = []

        def block(name: str, paras: list[Para], x: int, y: int, w: int, h: int, *,
                  pad: int = 0, backdrop=None, align: str = "left",
                  valign: str = "top", tight: bool = False) -> Overlay:
            fitted = fit(paras, w - 2 * pad, h - 2 * pad)
            if tight:  # the backdrop only as wide as the text
                fitted = dataclasses.replace(fitted, width=max(li.width for li in fitted.lines))
                w = fitted.width + 2 * pad
            blocks.append((name, fitted, (x, y, w, h)))
            return render(fitted, x, y, pad=pad, backdrop=backdrop, align=align,
                          box_height=h if backdrop else None, valign=valign)

        base = np.empty((lay.height, lay.width, 3), np.uint8)
        base[:] = PANEL_BGR
        template = with_band(self.plate_small, self.scene, datetime.combine(self.date, time()),
                             lang)
        region = lay.photo_region(base)
        region[:] = cv2.resize(template, (region.shape[1], region.shape[0]),
                               interpolation=cv2.INTER_AREA)

        top, foot = round(36 * u), self.buttons[0].y if self.buttons else lay.height
        clip = clip_texts(lang, lay, u, px, pw, self.kind_buttons, self._dial, block, blocks)
        title = block("title", [Para(_("Stand on Mars"), round(46 * u), "Black", INK),
                                Para(_("beside Perseverance and Ingenuity"), round(24 * u),
                                     "Regular", MUTED)], px, top, pw, round(130 * u))
        invitation = clip.buttons or [block("press", [
            Para(_("Press SPACE"), round(38 * u), "Bold", PANEL),
            Para(_("or touch the screen"), round(24 * u), "Regular", PANEL)],
            px, round(180 * u), pw, round(120 * u), pad=round(16 * u),
            backdrop=(*ACCENT, 255), align="center", valign="middle")]
        attract = [
            title, *invitation,
            block("qr", [Para(_("Your photo appears with two QR codes: first our Wi-Fi, "
                                "then your photo.")
                              if self.wifi else
                              _("Your photo appears with a QR code: scan it to download it to "
                                "your phone."), round(18 * u), "Regular", INK)],
                  px, round(318 * u), pw, round(64 * u)),
        ]
        # Where the invitation was: what the visitor can do while no photo can be taken.
        waiting = block("waiting", [
            Para(_("One moment, please"), round(30 * u), "Bold", INK),
            Para(_("Photos can be taken again as soon as the camera is back."), round(22 * u),
                 "Regular", MUTED)], px, round(196 * u), pw, round(186 * u))
        notice = privacy.notice(lang, self.retention_hours, self.privacy_text)
        paras = [Para(_("Privacy"), round(17 * u), "Bold", INK),
                 Para(notice, round(16 * u), "Regular", MUTED)]
        if self.policy_url:
            paras.append(Para(self.policy_url, round(15 * u), "Regular", MUTED))
        ny = round(396 * u)
        kept = [block("privacy", paras, px, ny, pw, foot - round(14 * u) - ny)]
        for button in self.buttons:
            chosen = button.code == lang.code
            kept.append(block(
                f"language {button.code}",
                [Para(self.languages[button.code].name, round(22 * u), "Bold",
                      PANEL if chosen else INK)],
                button.x, button.y, button.w, button.h, pad=round(8 * u),
                backdrop=(*(ACCENT if chosen else BUTTON), 255), align="center",
                valign="middle"))

        step_w = lay.photo_w - round(48 * u)
        step_in = block("step in", [Para(_("Step into the picture!"), round(30 * u), "Bold",
                                         INK)], lay.photo_x + round(24 * u),
                        lay.photo_y + round(24 * u), step_w, round(64 * u), pad=round(12 * u),
                        backdrop=(*PANEL, 215), tight=True)
        countdown_panel = [block("get ready", [
            Para(_("Get ready!"), round(46 * u), "Black", INK),
            Para(_("Look at the camera"), round(26 * u), "Regular", MUTED)],
            px, round(60 * u), pw, round(170 * u))]
        processing_panel = [block("processing", [
            Para(_("Developing your photo..."), round(40 * u), "Black", INK)],
            px, round(60 * u), pw, round(200 * u))]
        camera_banner = block("camera", [Para(_("Camera unavailable, reconnecting..."),
                                              round(30 * u), "Bold", INK)],
                              lay.photo_x + round(24 * u),
                              lay.photo_y + lay.plate_h // 2 - round(50 * u), step_w,
                              round(100 * u), pad=round(24 * u), backdrop=(120, 30, 20, 230),
                              align="center", valign="middle")
        failed_panel = [block("failed", [
            Para(_("Sorry!"), round(46 * u), "Black", INK),
            Para(_("The photo could not be saved. Please try again in a moment."),
                 round(26 * u), "Regular", MUTED)], px, round(60 * u), pw, round(300 * u))]
        nobody_panel = [block("nobody", [
            Para(_("Nobody in the picture"), round(46 * u), "Black", INK),
            Para(_("Step in front of the camera and try again."), round(26 * u), "Regular",
                 MUTED)], px, round(60 * u), pw, round(300 * u))]
        attract += kept
        camera_panel = [title, waiting, *kept]  # title, privacy, languages
        return Texts(base, attract, camera_panel, step_in, countdown_panel,
                     {n: self._digit(n) for n in range(1, self.countdown + 1)},
                     processing_panel, camera_banner, failed_panel, nobody_panel, clip, blocks)

    @property
    def _dial(self) -> tuple[int, int, int]:
        """The countdown's centre and diameter, in the panel (not over the picture: the
        visitor needs to see themselves to pose)."""
        lay, u = self.layout, self._u
        d = round(260 * u)
        return lay.panel_x + lay.panel_w // 2, round(250 * u) + d // 2, d

    def _digit(self, n: int) -> Overlay:
        cx, cy, d = self._dial
        image = Image.new("RGBA", (d, d), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        draw.ellipse((0, 0, d - 1, d - 1), fill=(*PANEL, 170), outline=(*MUTED, 90),
                     width=max(2, round(8 * self._u)))
        draw.text((d // 2, d // 2), str(n), font=font(round(190 * self._u), "Black"),
                  fill=INK, anchor="mm")
        return Overlay.from_rgba(image, cx - d // 2, cy - d // 2)

    def draw_countdown(self, screen: np.ndarray, number: int, left: float) -> None:
        """The number, and a ring that shrinks with the time `left` (a share, 1 to 0): the
        countdown seen without reading the digit."""
        self.digits[number].draw(screen)
        cx, cy, d = self._dial
        thickness = max(2, round(8 * self._u))
        sweep = 360.0 * min(1.0, max(0.0, left))
        # OpenCV draws an arc of under about 1 degree as a dot at the ellipse's centre: in
        # the middle of the last digit. Such an arc would not show anyway.
        if sweep >= MIN_ARC_DEGREES:
            cv2.ellipse(screen, (cx, cy), (d // 2 - thickness // 2, d // 2 - thickness // 2),
                        -90, 0, sweep, ACCENT[::-1], thickness, cv2.LINE_AA)

    def draw_recording(self, screen: np.ndarray, done: float) -> None:
        """The recording's dial, its red ring closed by the share `done` (0 to 1)."""
        self.clip.dial.draw(screen)
        draw_ring(screen, self._dial, self._u, done)

    def result(self, photo: np.ndarray, qr: np.ndarray, link: str, expires: datetime,
               hours: float, kind: Kind = Kind.PHOTO) -> np.ndarray:
        """The whole result screen, built once per capture: photo, QR code (`qr`: its
        modules, booth.station.qr.qr_matrix), link, expiry; with
        a Wi-Fi network, its code first ("1. Join the Wi-Fi") beside the photo's. The panel's
        column is drawn from the top, each part below the last, then centred in the height."""
        lang, lay, u, px, pw = self.language, self.layout, self._u, self._px, self._pw
        _ = lang.gettext
        screen = self.base.copy()
        region = lay.photo_region(screen)
        region[:] = cv2.resize(photo, (region.shape[1], region.shape[0]),
                               interpolation=cv2.INTER_AREA)
        column = self.base.copy()  # the panel, before it is moved down to the middle
        blocks: list[tuple[Block, tuple[int, int, int, int]]] = []

        def fit_draw(paras: list[Para], x: int, y: int, w: int, h: int) -> int:
            """Draws the text fitted to its box; returns the height it takes."""
            fitted = fit(paras, w, h)
            blocks.append((fitted, (x, y, w, h)))  # for the layout checks
            render(fitted, x, y).draw(column)
            return fitted.height

        top, qy = round(30 * u), round(140 * u)
        if self.wifi is None:
            fit_draw([Para(_("Scan to get your clip") if kind is Kind.CLIP
                           else _("Scan to get your photo"), round(34 * u), "Black", INK)],
                     px, top, pw, round(100 * u))
            size = min(pw, round(280 * u))
            paste_code(column, qr, px + (pw - size) // 2, qy, size, round(12 * u))
            ty = qy + size + round(14 * u)
        else:
            ty = self._wifi_and_photo_codes(column, qr, qy, fit_draw)
        room = round(84 * u) if self.printing else 0  # (booth.station.printpanel's)
        ty += fit_draw([Para(link, round(15 * u), "Regular", MUTED, wrap=False),
                        Para(_("Available until %(when)s", when=until(expires, lang)),
                             round(20 * u), "Bold", ACCENT),
                        Para("(" + lang.duration(hours * 3600) + ")", round(17 * u), "Regular",
                             MUTED),
                        Para(_("You can delete it from your phone."), round(17 * u),
                             "Regular", MUTED)], px, ty, pw, round(640 * u) - room - ty)
        hy = min(ty + round(24 * u), round(650 * u) - room)
        bottom = hy + fit_draw([Para(_("Press SPACE for a new photo"), round(20 * u), "Bold",
                                     INK)], px, hy, pw, round(56 * u)) + room
        shift = max(0, (lay.height - bottom - top) // 2)  # as much space below as above
        self.print_box = (px, bottom - room + round(14 * u) + shift, pw, room - round(14 * u))
        screen[shift:, lay.panel_x:] = column[:lay.height - shift, lay.panel_x:]
        # Each box as moved, cut at the screen's foot (what it had unused beyond the hint).
        self.result_blocks = [(b, (x, y + shift, w, min(h, lay.height - y - shift)))
                              for b, (x, y, w, h) in blocks]
        return screen

    def _wifi_and_photo_codes(self, screen: np.ndarray, qr: np.ndarray, qy: int,
                              fit_draw) -> int:
        """Two numbered columns, the Wi-Fi's code with its name and password (for a phone
        whose camera does not join networks) and the photo's, their tops at qy; returns the
        y below them."""
        _, u, px, pw, wifi = self.language.gettext, self._u, self._px, self._pw, self.wifi
        gap = round(32 * u)  # with less, scanners (WeChat's) took the two codes for one
        col = (pw - gap) // 2
        # Numbered in the order they are scanned; the number never alone on its line.
        captions = [f"{n}.\u00a0{text}"
                    for n, text in enumerate((_("Join the Wi-Fi"), _("Get your photo")), 1)]
        # Both captions at one size (the smaller one's fit), so neither looks more important.
        scale = min(fit([Para(text, round(28 * u), "Black")], col, round(100 * u)).scale
                    for text in captions)
        size = min(col, round(280 * u))
        for i, (text, code) in enumerate(zip(captions, (self._wifi_code, qr), strict=True)):
            x = px + i * (col + gap)
            fit_draw([Para(text, round(28 * u * scale), "Black", INK)], x, round(30 * u), col,
                     round(100 * u))
            # No card round them: the codes' own quiet zone is their white margin, so
            # their modules get all the narrow column's width.
            paste_code(screen, code, x + (col - size) // 2, qy, size, 0)
        # Under the first code, but as wide as the panel: a password is typed from here, so
        # it is kept large rather than wrapped into the code's narrow column.
        ny = qy + size + round(12 * u)
        paras = [Para(_("Network"), round(15 * u), "Regular", MUTED),
                 Para(wifi.ssid, round(19 * u), "Bold", INK, wrap=False)]
        if wifi.password:
            paras += [Para(_("Password"), round(15 * u), "Regular", MUTED),
                      Para(wifi.password, round(19 * u), "Bold", INK, wrap=False)]
        return ny + fit_draw(paras, px, ny, pw, round(160 * u)) + round(20 * u)

    def draw(self, screen: np.ndarray, overlays: list[Overlay]) -> None:
        for overlay in overlays:
            overlay.draw(screen)


class ScreenSettings(TypedDict):
    """What of the booth's configuration the screens show: Screens' keyword arguments."""

    languages: Languages
    retention_hours: float
    privacy_text: str
    policy_url: str
    wifi: Wifi | None
    printing: bool


def screen_settings(cfg: Config) -> ScreenSettings:
    """Screens' keyword arguments from the booth's configuration."""
    server = cfg.server
    return {"languages": Languages.from_config(cfg),
            "retention_hours": cfg.store.retention_hours, "privacy_text": cfg.privacy.text,
            "policy_url": cfg.privacy.policy_url, "printing": bool(cfg.printer.name),
            "wifi": Wifi(server.wifi_ssid, server.wifi_password, server.wifi_hidden)
            if server.wifi_ssid else None}


def until(when: datetime, lang: Language | None = None, now: datetime | None = None) -> str:
    """An expiry time as people say it: 14:32, 14:32 tomorrow, or 27 Nov 14:32."""
    lang = lang or shipped().default
    days = (when.date() - (now or datetime.now()).date()).days
    if days == 0:
        return lang.time(when)
    if days == 1:
        return lang.gettext("%(time)s tomorrow", time=lang.time(when))
    return f"{lang.day_month(when)} {lang.time(when)}"


def flash(screen: np.ndarray, strength: float) -> None:
    """Fade the screen toward white: the camera flash."""
    cv2.convertScaleAbs(screen, screen, alpha=1.0 - strength, beta=255.0 * strength)


def dim(screen: np.ndarray, factor: float = 0.55) -> None:
    cv2.convertScaleAbs(screen, screen, alpha=factor, beta=0)
