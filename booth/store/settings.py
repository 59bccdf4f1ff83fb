"""Small shared values (e.g. the station's status for the staff page), as key/value rows.
Nothing secret goes here: see booth.store.keys."""

from __future__ import annotations

from booth.store.interface import Database


class Settings:
    """Mixed into Store: needs self.db."""

    db: Database

    def get_setting(self, key: str) -> str | None:
        row = self.db.one("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else row[0]

    def set_setting(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO "
                        "UPDATE SET value = excluded.value", (key, value))
