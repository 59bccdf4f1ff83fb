"""The saved photo's design: the scene with a caption band below it, and its JPEG encoding."""

from __future__ import annotations

import io
from datetime import datetime

import cv2
import numpy as np
from PIL import Image, ImageDraw

from booth.i18n.catalogues import Language, shipped
from booth.scene.definition import Scene
from booth.station.graphics import ACCENT, INK, MUTED, PANEL, fit_font, to_bgr, to_pil

BAND_FRACTION = 0.085  # band height as a share of the plate's height


def band_height(plate_height: int) -> int:
    return max(24, round(plate_height * BAND_FRACTION))


def caption_band(width: int, height: int, scene: Scene, when: datetime,
                 lang: Language | None = None) -> np.ndarray:
    """Caption, date and credit on a dark band, in the visitor's language (the scene's texts
    are in the catalogue); every size follows the band's height, and each text shrinks to
    fit its half of the band."""
    lang = lang or shipped().default
    caption, title, credit = (lang.gettext(t) if t else "" for t in
                              (scene.caption, scene.title, scene.credit))
    day = lang.date(when, "long")
    image = Image.new("RGB", (width, height), PANEL)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, max(1, round(height * 0.045)) - 1), fill=ACCENT)
    margin = round(height * 0.45)
    half = width // 2 - margin
    draw.text((margin, round(height * 0.50)), caption, anchor="ls", fill=INK,
              font=fit_font(caption, half, round(height * 0.34), "Bold"))
    draw.text((margin, round(height * 0.82)), day, anchor="ls", fill=ACCENT,
              font=fit_font(day, half, round(height * 0.24), "Regular"))
    right = width - margin
    if title:
        draw.text((right, round(height * 0.50)), title, anchor="rs", fill=INK,
                  font=fit_font(title, half, round(height * 0.22), "Regular"))
    draw.text((right, round(height * 0.82)), credit, anchor="rs", fill=MUTED,
              font=fit_font(credit, half, round(height * 0.20), "Regular"))
    return to_bgr(image)


def with_band(picture: np.ndarray, scene: Scene, when: datetime,
              lang: Language | None = None) -> np.ndarray:
    """The photo: the picture (plate with or without people) above its caption band."""
    h, w = picture.shape[:2]
    return np.vstack([picture, caption_band(w, band_height(h), scene, when, lang)])


def thumbnail(bgr: np.ndarray, width: int = 480) -> np.ndarray:
    h, w = bgr.shape[:2]
    return cv2.resize(bgr, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def encode_jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes with no EXIF or other metadata (Pillow writes none unless asked)."""
    buf = io.BytesIO()
    to_pil(bgr).save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()
