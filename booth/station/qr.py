"""QR codes rendered crisp (whole pixels per module) at a given size: the download links, and
the `WIFI:` code that joins a phone to the booth's network."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import qrcode
from qrcode.constants import ERROR_CORRECT_M


def qr_matrix(text: str) -> np.ndarray:
    """Modules as a bool array (True = dark), with the standard 4-module quiet zone."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    return np.array(code.get_matrix(), dtype=bool)


def qr_image(modules: np.ndarray, max_size: int) -> np.ndarray:
    """BGR image of a code's modules (qr_matrix), dark on white, as many whole pixels a
    module as fit in max_size pixels square (shown as it is: resized to another size, its
    modules would come out of uneven widths)."""
    scale = max(1, max_size // modules.shape[0])
    gray = np.where(modules, 0, 255).astype(np.uint8)
    gray = np.kron(gray, np.ones((scale, scale), np.uint8))
    return np.repeat(gray[:, :, None], 3, axis=2)


def paste_code(screen: np.ndarray, qr: np.ndarray, x: int, y: int, size: int,
               card: int) -> None:
    """A QR code (its modules, see qr_matrix) on a white card `size` pixels square, its top
    left at (x, y), centred on it at whole pixels a module."""
    code = qr_image(qr, size - 2 * card)
    at = (size - code.shape[0]) // 2
    screen[y:y + size, x:x + size] = 255
    screen[y + at:y + at + code.shape[0], x + at:x + at + code.shape[1]] = code


# The characters the WIFI: scheme (ZXing's, read by Android's and iOS's cameras) escapes.
_SPECIAL = re.compile(r'([\\;,:"])')


@dataclass(frozen=True)
class Wifi:
    """A Wi-Fi network a phone joins by scanning a code."""

    ssid: str
    password: str = ""  # empty: an open network
    hidden: bool = False

    @property
    def payload(self) -> str:
        """The code's text: WIFI:T:WPA;S:<name>;P:<password>;; (T:nopass and no P for an open
        network, H:true for a hidden one), with \\ ; , : and " escaped by a backslash."""
        def esc(text: str) -> str:
            return _SPECIAL.sub(r"\\\1", text)
        fields = [f"T:{'WPA' if self.password else 'nopass'}", f"S:{esc(self.ssid)}"]
        if self.password:
            fields.append(f"P:{esc(self.password)}")
        if self.hidden:
            fields.append("H:true")
        return "WIFI:" + "".join(field + ";" for field in fields) + ";"
