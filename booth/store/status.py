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
                         backlog=int(row.get("backlog", cls.backlog)))
        except (ValueError, TypeError):
            return None
        return status if math.isfinite(status.updated_at) else None

    def save(self, store: Store) -> None:
        store.set_setting(KEY, self.to_json())

    @classmethod
    def load(cls, store: Store) -> StationStatus | None:
        return cls.from_json(store.get_setting(KEY))
