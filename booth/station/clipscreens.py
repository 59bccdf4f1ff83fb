"""The boomerang's parts of the station's screens: the Photo and Boomerang buttons on the
attract screen, and while recording a badge over the live picture (a red dot and "Recording":
the visitor sees they are filmed) and a dial in the panel whose red ring closes as the
recording runs; the panels while the clip is made and if it failed.

Rendered once per language with the rest of booth.station.screens (its `block` helper, so
every text is fitted and checked like the others).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import cv2
from PIL import Image, ImageDraw

from booth.i18n.catalogues import Language
from booth.station.graphics import ACCENT, INK, MUTED, PANEL, Overlay
from booth.station.layout import Button, Layout
from booth.station.outputs import Kind
from booth.station.textfit import Block, Para, fit

RED = (232, 52, 44)  # the recording's dot and ring (RGB), as on every camera


@dataclass
class ClipTexts:
    buttons: list[Overlay]  # the Photo and Boomerang buttons (Screens.kind_buttons' order)
    badge: Overlay  # the red dot and "Recording", over the live picture
    dial: Overlay  # the recording's dial, its ring drawn per frame
    recording_panel: list[Overlay]
    processing_panel: list[Overlay]
    failed_panel: list[Overlay]


def kind_buttons(x: int, y: int, w: int, h: int, gap: int) -> list[Button]:
    """Photo on the left, Boomerang on the right, side by side in the box."""
    bw = (w - gap) // 2
    return [Button(Kind.PHOTO.value, x, y, bw, h),
            Button(Kind.CLIP.value, x + bw + gap, y, bw, h)]


def clip_texts(lang: Language, lay: Layout, u: float, px: int, pw: int,
               buttons: list[Button], dial: tuple[int, int, int], block: Callable[..., Overlay],
               blocks: list[tuple[str, Block, tuple[int, int, int, int]]]) -> ClipTexts:
    _ = lang.gettext
    keys = {Kind.PHOTO.value: (_("Photo"), _("Press SPACE")),
            Kind.CLIP.value: (_("Boomerang"), _("Press B"))}
    pad = round(10 * u)

    def paras(code: str, scale: float = 1.0) -> list[Para]:
        title, key = keys[code]
        return [Para(title, round(34 * u * scale), "Black", PANEL),
                Para(key, round(20 * u * scale), "Bold", PANEL)]

    # Both buttons' words at one size (the smaller fit's): neither looks the lesser choice.
    scale = min((fit(paras(b.code), b.w - 2 * pad, b.h - 2 * pad).scale for b in buttons),
                default=1.0)
    shown = [block(f"kind {b.code}", paras(b.code, scale), b.x, b.y, b.w, b.h, pad=pad,
                   backdrop=(*ACCENT, 255), align="center", valign="middle")
             for b in buttons]
    recording_panel = [block("recording panel", [
        Para(_("Keep moving!"), round(46 * u), "Black", INK),
        Para(_("Your clip plays forwards, then backwards."), round(26 * u), "Regular",
             MUTED)], px, round(60 * u), pw, round(170 * u))]
    processing_panel = [block("processing clip", [
        Para(_("Making your boomerang..."), round(40 * u), "Black", INK)],
        px, round(60 * u), pw, round(200 * u))]
    failed_panel = [block("failed clip", [
        Para(_("Sorry!"), round(46 * u), "Black", INK),
        Para(_("The clip could not be saved. Please try again in a moment."),
             round(26 * u), "Regular", MUTED)], px, round(60 * u), pw, round(300 * u))]
    return ClipTexts(shown, _badge(_("Recording"), lay, u, blocks), _dial(dial, u),
                     recording_panel, processing_panel, failed_panel)


def _badge(text: str, lay: Layout, u: float,
           blocks: list[tuple[str, Block, tuple[int, int, int, int]]]) -> Overlay:
    """A dark pill at the picture's top left: a red dot, then the word."""
    pad, x, y = round(14 * u), lay.photo_x + round(24 * u), lay.photo_y + round(24 * u)
    r = round(11 * u)
    dot_w = 2 * r + round(12 * u)
    fitted = fit([Para(text, round(30 * u), "Bold", INK, wrap=False)], lay.photo_w // 2,
                 round(44 * u))
    fitted = dataclasses.replace(fitted, width=fitted.lines[0].width)  # as wide as its word
    w, h = fitted.width + dot_w + 2 * pad, fitted.height + 2 * pad
    # Its box for the layout checks: the text's own, on the pill.
    blocks.append(("recording", fitted, (x + pad + dot_w, y + pad, fitted.width,
                                         fitted.height)))
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=h // 2, fill=(*PANEL, 215))
    cy = h // 2
    draw.ellipse((pad, cy - r, pad + 2 * r, cy + r), fill=(*RED, 255))
    for line in fitted.lines:
        draw.text((pad + dot_w, pad + line.y), line.text, font=line.font, fill=line.colour,
                  anchor="la")
    return Overlay.from_rgba(image, x, y)


def _dial(dial: tuple[int, int, int], u: float) -> Overlay:
    """The countdown's disc with a red dot in the middle for its digit."""
    cx, cy, d = dial
    image = Image.new("RGBA", (d, d), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((0, 0, d - 1, d - 1), fill=(*PANEL, 170), outline=(*MUTED, 90),
                 width=max(2, round(8 * u)))
    r = d // 5
    draw.ellipse((d // 2 - r, d // 2 - r, d // 2 + r, d // 2 + r), fill=(*RED, 255))
    return Overlay.from_rgba(image, cx - d // 2, cy - d // 2)


def draw_ring(screen, dial: tuple[int, int, int], u: float, done: float) -> None:
    """The recording's ring, closed by the share `done` (0 to 1), clockwise from the top."""
    cx, cy, d = dial
    thickness = max(2, round(8 * u))
    sweep = 360.0 * min(1.0, max(0.0, done))
    if sweep >= 1.0:  # OpenCV draws a shorter arc as a dot in the middle (see screens)
        cv2.ellipse(screen, (cx, cy), (d // 2 - thickness // 2, d // 2 - thickness // 2),
                    -90, 0, sweep, RED[::-1], thickness, cv2.LINE_AA)
