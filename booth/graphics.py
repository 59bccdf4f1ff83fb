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
from PIL import Image, ImageDraw, ImageFont

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


def text_overlay(lines: list[tuple[str, ImageFont.FreeTypeFont, tuple[int, int, int]]],
                 x: int, y: int, *, align: str = "left", width: int | None = None,
                 gap: float = 0.35, backdrop: tuple[int, int, int, int] | None = None,
                 pad: int = 0) -> Overlay:
    """Stacked lines of text as one overlay at (x, y); `backdrop` is an RGBA rounded box."""
    heights = [f.getbbox("Ag")[3] for _, f, _ in lines]
    widths = [int(f.getlength(t)) for t, f, _ in lines]
    box_w = width or max(widths) + 2 * pad  # `width` is the whole box, padding included
    box_h = int(sum(heights) + gap * sum(heights[:-1])) + 2 * pad
    image = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if backdrop:
        draw.rounded_rectangle((0, 0, box_w - 1, box_h - 1), radius=max(pad, 4), fill=backdrop)
    ty = pad
    for (text, f, colour), w, h in zip(lines, widths, heights, strict=True):
        tx = {"left": pad, "center": (box_w - w) // 2, "right": box_w - pad - w}[align]
        draw.text((tx, ty), text, font=f, fill=colour)
        ty += int(h * (1 + gap))
    return Overlay.from_rgba(image, x, y)


def to_bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def to_pil(bgr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
