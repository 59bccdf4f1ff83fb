"""What happens to a capture once it is made: a list of outputs, each in a module of its own.

The station makes one Product per press of the shutter (today a photo: its JPEG, thumbnail and
optional raw frame) and hands it to each output in turn, in the order `[outputs] enabled` names
them; booth.wiring.make_outputs builds that list from the configuration. An output may give
back a Delivered (a link for the QR code, and until when it opens): the result screen, which
the station shows after the outputs ran, is made from the first one given.

A new output (a printer, a wall screen) is one new module here with a class that has
`deliver(product) -> Delivered | None`, its name among booth.config.OUTPUTS, and one line in
booth.wiring.make_outputs. An output that raises BoothError fails the capture (the visitor
sees the failed screen): right for the store, without which there is no link; an output whose
failure should cost the visitor nothing (a printer out of paper) logs it and returns None.

Modules: store (publishes the product to the store and gives its link), printer (prints
photos through CUPS in the background; the result screen's Print button asks it), page (the
printed page: the photo laid out on the paper at 300 dpi, as an sRGB PDF), cups (lp, lpstat
and lpoptions, each with a timeout).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np


class Kind(enum.Enum):
    """What a capture is; each output decides what it does with each kind. The values are
    the store's (booth.store.captures)."""

    PHOTO = "photo"  # `file` is the photo's JPEG
    CLIP = "clip"  # a boomerang: `file` is its MP4, `poster` its first frame as a JPEG


@dataclass(frozen=True)
class Product:
    """What one press of the shutter made, with what every output needs to know of it."""

    kind: Kind
    file: bytes  # what the visitor downloads
    thumb: bytes  # a small JPEG for the staff's gallery
    picture: np.ndarray  # what the result screen shows (BGR, with its caption band)
    taken_at: datetime  # the shutter's local time: the date on the caption band
    retention_hours: float  # how long it is kept
    raw: bytes | None = None  # the camera's own frame as a JPEG ([station] keep_raw)
    poster: bytes | None = None  # a clip's first frame as a JPEG (no EXIF); None for a photo


@dataclass(frozen=True)
class Delivered:
    """What an output gives the result screen: where the visitor fetches the capture."""

    link: str  # what the QR code opens
    expires: datetime  # when it stops opening (local time)
    capture_id: str = ""  # a short id for the log, never the link's token


class Output(Protocol):
    def deliver(self, product: Product) -> Delivered | None:
        """Do this output's work with the product (on the station's photo worker, never the
        screen's thread); raise BoothError to fail the capture."""
        ...
