"""What a visitor (or staff) does at the station, as the display reports it: one small type
per kind of input, so a display produces them and the loop matches on them (`match event:
case Tap(x, y): ...`) instead of parsing strings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Press:
    """The shutter button or a key standing for it (Space, Enter)."""


@dataclass(frozen=True)
class Boomerang:
    """The Boomerang button's key (B): a clip instead of a photo, where one is offered."""


@dataclass(frozen=True)
class PrintPhoto:
    """The Print button's key (P): the result screen's photo printed, where printing is on."""


@dataclass(frozen=True)
class Tap:
    """A touch or click at pixel (x, y) of the station's screen (not of the window: a display
    that scales the screen maps the point back). A language button, the Photo, Boomerang or
    Print button, or else the shutter."""

    x: int
    y: int


@dataclass(frozen=True)
class NextLanguage:
    """The language after the one shown (Tab, L)."""


@dataclass(frozen=True)
class PickLanguage:
    """The n-th language button, counting from 1 (keys 1-9)."""

    n: int


@dataclass(frozen=True)
class Quit:
    """Stop the station (Esc, q, the window closed)."""


Event = Press | Boomerang | PrintPhoto | Tap | NextLanguage | PickLanguage | Quit
