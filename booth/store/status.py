"""The station's health as the staff page sees it: the station writes a StationStatus into a
settings row every 2 s, the web app (maybe another process, maybe another machine on the
shared store) reads it. Here, beside the store both use, so that the web app never imports
the station's camera or vision code for it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from booth.store import Store

KEY = "station_status"  # the settings row


@dataclass(frozen=True)
class StationStatus:
    camera: str = "unknown"  # "ok", or "reconnecting" while the camera delivers nothing
    fps: float = 0.0  # preview frames per second
    updated_at: float = 0.0  # Unix time of writing; the default is a status long stale
    backlog: int = 0  # captures in the station's outbox, not in the shared store yet
    offline: bool = False  # the station's uploader cannot reach the shared store

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> StationStatus | None:
        """The status a row holds; a key missing (a row from an older booth) takes its
        default; None for no row or one that is garbled."""
        try:
            row = json.loads(text or "null")
            if not isinstance(row, dict):
                return None
            status = cls(camera=str(row.get("camera", cls.camera)),
                         fps=float(row.get("fps", cls.fps)),
                         updated_at=float(row.get("updated_at", cls.updated_at)),
                         backlog=int(row.get("backlog", cls.backlog)),
                         offline=bool(row.get("offline", cls.offline)))
        except (ValueError, TypeError):
            return None
        return status if math.isfinite(status.updated_at) else None

    def save(self, store: Store) -> None:
        store.set_setting(KEY, self.to_json())

    @classmethod
    def load(cls, store: Store) -> StationStatus | None:
        return cls.from_json(store.get_setting(KEY))


PRINTER_KEY = "printer_status"  # the settings row the station with a printer writes


@dataclass(frozen=True)
class PrinterStatus:
    """The station's CUPS queue as staff see it (booth.station.outputs.printer writes it every
    few seconds): its state as CUPS reports it, the last print that failed and why, and
    today's prints against the daily limit."""

    queue: str = ""
    state: str = "unknown"  # "idle", "printing", "paused", "rejecting jobs", "missing", ...
    message: str = ""  # the queue's own message and alerts (e.g. "media-empty")
    last_error: str = ""  # the last print that failed, with when
    printed_today: int = 0
    daily_limit: int = 0  # 0: none
    updated_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state in ("idle", "printing")

    def save(self, store: Store) -> None:
        store.set_setting(PRINTER_KEY, json.dumps(asdict(self)))

    @classmethod
    def load(cls, store: Store) -> PrinterStatus | None:
        """None for no row, or one this booth cannot read."""
        try:
            row = json.loads(store.get_setting(PRINTER_KEY) or "null")
            return cls(**row) if isinstance(row, dict) else None
        except (ValueError, TypeError):
            return None
