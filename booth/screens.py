"""What the station shows: the live photo on the left, a panel that says what to do on the right.

Everything that does not change per frame (panel text, countdown digits, the caption band) is
rendered once; per frame the screen is a copy of a base image, the live composite and a few
small overlays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import cv2
import numpy as np
from PIL import Image, ImageDraw

from booth.graphics import ACCENT, INK, MUTED, PANEL, Overlay, fit_font, font, text_overlay
from booth.photo import band_height, with_band

PANEL_BGR = PANEL[::-1]


@dataclass(frozen=True)
class Layout:
    """Where the photo (plate + band) and the side panel sit on a display of width x height."""

    width: int
    height: int
    photo_x: int
    photo_y: int
    photo_w: int
    plate_h: int
    band_h: int
    panel_x: int

    @classmethod
    def for_display(cls, width: int, height: int, plate_w: int, plate_h: int) -> Layout:
        total_h = plate_h + band_height(plate_h)
        scale = min(height / total_h, 0.72 * width / plate_w)
        pw, ph = round(plate_w * scale), round(plate_h * scale)
        bh = round(band_height(plate_h) * scale)
        return cls(width, height, 0, (height - ph - bh) // 2, pw, ph, bh, pw)

    @property
    def panel_w(self) -> int:
        return self.width - self.panel_x

    def plate_region(self, screen: np.ndarray) -> np.ndarray:
        return screen[self.photo_y:self.photo_y + self.plate_h,
                      self.photo_x:self.photo_x + self.photo_w]

    def photo_region(self, screen: np.ndarray) -> np.ndarray:
        return screen[self.photo_y:self.photo_y + self.plate_h + self.band_h,
                      self.photo_x:self.photo_x + self.photo_w]


class Screens:
    def __init__(self, width: int, height: int, plate: np.ndarray, scene, countdown: int,
                 when: datetime | None = None) -> None:
        self.scene = scene
        self.layout = lay = Layout.for_display(width, height, plate.shape[1], plate.shape[0])
        self.base = np.empty((height, width, 3), np.uint8)
        self.base[:] = PANEL_BGR
        small = cv2.resize(plate, (lay.photo_w, lay.plate_h), interpolation=cv2.INTER_AREA)
        self.set_date(small, when or datetime.now())
        u = height / 720  # type scale: sizes below are for a 720-pixel-high display
        px, pw = lay.panel_x + round(28 * u), lay.panel_w - round(56 * u)
        top = round(70 * u)

        def panel(lines, y=top, **kw) -> Overlay:
            return text_overlay(lines, px, y, width=pw, **kw)

        self.attract = [
            panel([("Stand on Mars", fit_font("Stand on Mars", pw, round(46 * u), "Black"), INK),
                   ("beside Perseverance", font(round(24 * u)), MUTED),
                   ("and Ingenuity", font(round(24 * u)), MUTED)]),
            panel([("Press SPACE", fit_font("Press SPACE", pw, round(38 * u), "Bold"), PANEL),
                   ("or touch the screen", fit_font("or touch the screen", pw - round(40 * u),
                                                    round(26 * u)), PANEL)],
                  y=round(330 * u), align="center", pad=round(20 * u),
                  backdrop=(*ACCENT, 255)),
            panel([("Your photo appears with a QR code:", font(round(17 * u)), MUTED),
                   ("scan it to download it to your phone.", font(round(17 * u)), MUTED)],
                  y=round(600 * u)),
        ]
        self.step_in = text_overlay(
            [("Step into the picture!", font(round(30 * u), "Bold"), INK)],
            lay.photo_x + round(24 * u), lay.photo_y + round(24 * u), pad=round(12 * u),
            backdrop=(*PANEL, 200))
        self.countdown_panel = [panel([("Get ready!", font(round(46 * u), "Black"), INK),
                                       ("Look at the camera", font(round(26 * u)), MUTED)])]
        self.digits = {n: self._digit(n, u) for n in range(1, countdown + 1)}
        self.processing_panel = [panel([("Developing", font(round(44 * u), "Black"), INK),
                                        ("your photo...", font(round(28 * u)), MUTED)])]
        self.camera_banner = text_overlay(
            [("Camera unavailable, reconnecting...", fit_font(
                "Camera unavailable, reconnecting...", lay.photo_w - round(96 * u),
                round(30 * u), "Bold"), INK)],
            lay.photo_x + round(24 * u), lay.photo_y + lay.plate_h // 2 - round(30 * u),
            width=lay.photo_w - round(48 * u), align="center", pad=round(24 * u),
            backdrop=(120, 30, 20, 230))
        self.failed_panel = [panel([("Sorry!", font(round(46 * u), "Black"), INK),
                                    ("The photo could not", font(round(26 * u)), MUTED),
                                    ("be saved. Please try", font(round(26 * u)), MUTED),
                                    ("again in a moment.", font(round(26 * u)), MUTED)])]
        self._u, self._px, self._pw = u, px, pw

    def set_date(self, small_plate: np.ndarray, when: datetime) -> None:
        """(Re)draw the preview's photo area: the plate and a caption band for this date."""
        self.date = when.date()
        lay = self.layout
        template = with_band(small_plate, self.scene, when)
        self.plate_small = template[:lay.plate_h]
        region = lay.photo_region(self.base)
        region[:] = cv2.resize(template, (region.shape[1], region.shape[0]),
                               interpolation=cv2.INTER_AREA)

    def _digit(self, n: int, u: float) -> Overlay:
        lay = self.layout
        d = round(260 * u)
        image = Image.new("RGBA", (d, d), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        draw.ellipse((0, 0, d - 1, d - 1), fill=(*PANEL, 170), outline=(*ACCENT, 255),
                     width=max(2, round(8 * u)))
        draw.text((d // 2, d // 2), str(n), font=font(round(190 * u), "Black"), fill=INK,
                  anchor="mm")
        # In the panel, not over the picture: the visitor needs to see themselves to pose.
        return Overlay.from_rgba(image, lay.panel_x + (lay.panel_w - d) // 2,
                                 round(250 * u))

    def result(self, photo: np.ndarray, qr: np.ndarray, link: str, expires: datetime,
               hours: float) -> np.ndarray:
        """The whole result screen, built once per capture: photo, QR code, link, expiry."""
        lay, u, px, pw = self.layout, self._u, self._px, self._pw
        screen = self.base.copy()
        region = lay.photo_region(screen)
        region[:] = cv2.resize(photo, (region.shape[1], region.shape[0]),
                               interpolation=cv2.INTER_AREA)
        text_overlay([("Scan to get", font(round(34 * u), "Black"), INK),
                      ("your photo", font(round(34 * u), "Black"), INK)],
                     px, round(40 * u), width=pw).draw(screen)
        size = min(pw, round(300 * u))
        card = round(12 * u)
        code = cv2.resize(qr, (size - 2 * card, size - 2 * card),
                          interpolation=cv2.INTER_NEAREST)
        qx, qy = px + (pw - size) // 2, round(150 * u)
        screen[qy:qy + size, qx:qx + size] = 255
        screen[qy + card:qy + size - card, qx + card:qx + size - card] = code
        span = f"{hours:g} hours" if hours != 1 else "1 hour"
        text_overlay([(link, fit_font(link, pw, round(15 * u)), MUTED),
                      (f"Available until {until(expires)}",
                       fit_font("Available until 00:00 tomorrow", pw, round(20 * u), "Bold"),
                       ACCENT),
                      (f"({span})", font(round(17 * u)), MUTED),
                      ("You can delete it from your phone.", fit_font(
                          "You can delete it from your phone.", pw, round(17 * u)), MUTED)],
                     px, qy + size + round(18 * u), width=pw).draw(screen)
        text_overlay([("Press SPACE for a new photo", fit_font(
            "Press SPACE for a new photo", pw, round(20 * u), "Bold"), INK)],
            px, round(660 * u), width=pw).draw(screen)
        return screen

    def draw(self, screen: np.ndarray, overlays: list[Overlay]) -> None:
        for overlay in overlays:
            overlay.draw(screen)


def until(when: datetime, now: datetime | None = None) -> str:
    """An expiry time as people say it: 14:32, 14:32 tomorrow, or 27 Nov 14:32."""
    days = (when.date() - (now or datetime.now()).date()).days
    if days == 0:
        return f"{when:%H:%M}"
    if days == 1:
        return f"{when:%H:%M} tomorrow"
    return f"{when.day} {when:%b} {when:%H:%M}"


def flash(screen: np.ndarray, strength: float) -> None:
    """Fade the screen toward white: the camera flash."""
    cv2.convertScaleAbs(screen, screen, alpha=1.0 - strength, beta=255.0 * strength)


def dim(screen: np.ndarray, factor: float = 0.55) -> None:
    cv2.convertScaleAbs(screen, screen, alpha=factor, beta=0)
