"""Drawing helpers: TrueType text (Lato, shipped by the font-lato package) and RGBA overlays.

Text is rendered once with Pillow into an Overlay; per frame an Overlay is only blended, which
is a few small numpy operations on its own rectangle.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import font_lato
import numpy as np
from PIL import Image, ImageFont

# The booth's palette (RGB): Martian dusk.
INK = (246, 236, 224)
MUTED = (190, 172, 156)
ACCENT = (224, 150, 82)
PANEL = (24, 17, 13)


@functools.lru_cache(maxsize=64)
def font(size: int, weight: str = "Regular") -> ImageFont.FreeTypeFont:
    """Lato at a pixel size; weight is Regular, Bold, Black or Light."""
    return ImageFont.truetype(str(Path(font_lato.font_directory) / f"Lato-{weight}.ttf"),
                              max(6, int(size)))


def fit_font(text: str, max_width: int, size: int, weight: str = "Regular"
             ) -> ImageFont.FreeTypeFont:
    """The largest font up to `size` in which `text` fits in max_width pixels."""
    while size > 6 and font(size, weight).getlength(text) > max_width:
        size -= 1
    return font(size, weight)


@dataclass(frozen=True)
class Overlay:
    """A pre-rendered RGBA graphic, stored ready to blend onto BGR frames."""

    x: int
    y: int
    premultiplied: np.ndarray  # float32 BGR * alpha
    inverse_alpha: np.ndarray  # float32 (1 - alpha), 3 channels

    @classmethod
    def from_rgba(cls, image: Image.Image, x: int, y: int) -> Overlay:
        rgba = np.asarray(image.convert("RGBA"), np.float32) / 255.0
        alpha = rgba[:, :, 3:4]
        bgr = rgba[:, :, 2::-1] * 255.0
        return cls(x, y, np.ascontiguousarray(bgr * alpha),
                   np.ascontiguousarray(np.repeat(1.0 - alpha, 3, axis=2)))

    def draw(self, frame: np.ndarray) -> None:
        h, w = self.premultiplied.shape[:2]
        x0, y0 = max(self.x, 0), max(self.y, 0)
        x1, y1 = min(self.x + w, frame.shape[1]), min(self.y + h, frame.shape[0])
        if x1 <= x0 or y1 <= y0:
            return
        sl = (slice(y0 - self.y, y1 - self.y), slice(x0 - self.x, x1 - self.x))
        roi = frame[y0:y1, x0:x1]
        roi[:] = (roi * self.inverse_alpha[sl] + self.premultiplied[sl]).astype(np.uint8)


def to_bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def to_pil(bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
