"""Text laid out by measuring it: wrapped to a box's width and shrunk until it fits its height.

Every text on the station's screens goes through here, so a longer language (German, French)
wraps or gets smaller instead of running off the panel. Rendered once into an Overlay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from booth.station.graphics import Overlay, font

MIN_SIZE = 10  # pixels; below this nobody reads it, so words are broken instead
# Lines break at white space, but not at a no-break space (U+00A0, U+202F): "1. Join" or a
# French "demain :" stays together.
_BREAK = re.compile(r"[^\S\u00a0\u202f]+")


def words(text: str) -> list[str]:
    return [word for word in _BREAK.split(text) if word]


@dataclass(frozen=True)
class Para:
    """A paragraph: its text, the largest size it may take, weight and colour (RGB)."""

    text: str
    size: int
    weight: str = "Regular"
    colour: tuple[int, int, int] = (255, 255, 255)
    wrap: bool = True  # False: one line, made smaller until it fits (a link)


@dataclass(frozen=True)
class Line:
    text: str
    font: ImageFont.FreeTypeFont
    colour: tuple[int, int, int]
    y: int  # top of the line inside the block
    width: int
    height: int


@dataclass(frozen=True)
class Block:
    lines: tuple[Line, ...]
    width: int  # the box it was fitted to
    height: int  # the height the lines take (at most the box's)
    scale: float  # how much the sizes were shrunk (1.0: not at all)


def _line_height(f: ImageFont.FreeTypeFont) -> int:
    ascent, descent = f.getmetrics()
    return ascent + descent


def wrap(text: str, f: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap by measured width; a word wider than the box is broken where needed.
    Explicit newlines are kept."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in words(paragraph):
            candidate = f"{line} {word}" if line else word
            if f.getlength(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while f.getlength(line) > width and len(line) > 1:
                cut = len(line) - 1
                while cut > 1 and f.getlength(line[:cut]) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def fit(paras: list[Para], width: int, height: int, *, gap: float = 0.1,
        para_gap: float = 0.35) -> Block:
    """The largest common scale (<= 1) at which every paragraph, wrapped to `width`, fits in
    `height` with no word broken. Sizes shrink together so the hierarchy between them stays;
    none goes below MIN_SIZE, where over-long words are broken, and if even that is too tall
    the last lines that fit end in an ellipsis."""
    scale = 1.0
    while True:
        sizes = [max(MIN_SIZE, round(p.size * scale)) for p in paras]
        lines, y = _lay_out(paras, sizes, width, gap, para_gap)
        words_fit = all(font(size, p.weight).getlength(word) <= width
                        for p, size in zip(paras, sizes, strict=True) for word in words(p.text))
        if y <= height and (words_fit or all(size == MIN_SIZE for size in sizes)):
            return Block(tuple(lines), width, y, scale)
        if all(size == MIN_SIZE for size in sizes):
            return _cut(lines, width, height, scale)
        scale *= 0.95


def _lay_out(paras: list[Para], sizes: list[int], width: int, gap: float,
             para_gap: float) -> tuple[list[Line], int]:
    lines: list[Line] = []
    y = 0
    for i, (p, size) in enumerate(zip(paras, sizes, strict=True)):
        f = font(size, p.weight)
        while not p.wrap and size > MIN_SIZE and f.getlength(p.text) > width:
            size -= 1
            f = font(size, p.weight)
        h = _line_height(f)
        if i:
            y += round(h * para_gap)
        for text in wrap(p.text, f, width):
            lines.append(Line(text, f, p.colour, y, round(f.getlength(text)), h))
            y += round(h * (1 + gap))
    return lines, y - (round(lines[-1].height * gap) if lines else 0)


def _cut(lines: list[Line], width: int, height: int, scale: float) -> Block:
    """The lines that fit in `height`, the last one ending in an ellipsis."""
    kept = [line for line in lines if line.y + line.height <= height]
    if kept and len(kept) < len(lines):
        last = kept[-1]
        text = last.text
        while text and last.font.getlength(text + "…") > width:
            text = text[:-1]
        kept[-1] = Line(text + "…", last.font, last.colour, last.y,
                        round(last.font.getlength(text + "…")), last.height)
    bottom = max((line.y + line.height for line in kept), default=0)
    return Block(tuple(kept), width, bottom, scale)


def render(block: Block, x: int, y: int, *, align: str = "left", pad: int = 0,
           backdrop: tuple[int, int, int, int] | None = None, box_height: int | None = None,
           valign: str = "top") -> Overlay:
    """The block as an overlay whose top left is (x, y); with a backdrop (a rounded box
    `pad` wider all round), optionally `box_height` tall with the text centred in it."""
    box_w = block.width + 2 * pad
    box_h = (box_height or block.height + 2 * pad)
    image = Image.new("RGBA", (box_w, box_h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if backdrop:
        draw.rounded_rectangle((0, 0, box_w - 1, box_h - 1), radius=max(pad, 4), fill=backdrop)
    top = pad if valign == "top" else (box_h - block.height) // 2
    for line in block.lines:
        lx = {"left": pad, "center": (box_w - line.width) // 2,
              "right": box_w - pad - line.width}[align]
        draw.text((lx, top + line.y), line.text, font=line.font, fill=line.colour, anchor="la")
    return Overlay.from_rgba(image, x, y)
