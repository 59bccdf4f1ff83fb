"""Where things sit on the station's screen: the photo area and the side panel, and the touch
targets' size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from booth.station.photo import band_height


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


# Touch targets: at least 15 mm on the station's screen. A 24-inch 16:9 screen is 298.9 mm
# high, so on any display size a target must be this share of the display's height.
SCREEN_HEIGHT_MM = 24 * 25.4 * 9 / (16**2 + 9**2) ** 0.5
MIN_TARGET_MM = 15.0
@dataclass(frozen=True)
class Button:
    code: str
    x: int
    y: int
    w: int
    h: int

    def contains(self, x: int, y: int) -> bool:
        return self.x <= x < self.x + self.w and self.y <= y < self.y + self.h
