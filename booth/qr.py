"""QR codes for download links, rendered crisp (whole pixels per module) at a given size."""

from __future__ import annotations

import numpy as np
import qrcode
from qrcode.constants import ERROR_CORRECT_M


def qr_matrix(text: str) -> np.ndarray:
    """Modules as a bool array (True = dark), with the standard 4-module quiet zone."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4)
    code.add_data(text)
    code.make(fit=True)
    return np.array(code.get_matrix(), dtype=bool)


def qr_image(text: str, max_size: int) -> np.ndarray:
    """BGR image of the code, at most max_size pixels square, dark on white."""
    modules = qr_matrix(text)
    scale = max(1, max_size // modules.shape[0])
    gray = np.where(modules, 0, 255).astype(np.uint8)
    gray = np.kron(gray, np.ones((scale, scale), np.uint8))
    return np.repeat(gray[:, :, None], 3, axis=2)
