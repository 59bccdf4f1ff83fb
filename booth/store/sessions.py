"""Staff sessions, held server-side: the cookie carries a random id, the database only its
SHA-256 and when it started. Logout deletes the row, a new password deletes them all, so an
old cookie opens nothing; a copy of the database holds no id a cookie could carry."""

from __future__ import annotations

import hashlib
import secrets
import time

from booth.store.interface import Database


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class StaffSessions:
    """Mixed into Store: needs self.db."""

    db: Database

    def start_session(self, now: float | None = None) -> str:
        """A new staff session; returns its id (for the signed cookie only)."""
        session_id = secrets.token_urlsafe(32)
        now = time.time() if now is None else now
        self.db.execute("INSERT INTO staff_sessions (id_hash, created_at) VALUES (?, ?)",
                        (_hash(session_id), now))
        return session_id

    def session_started(self, session_id: object) -> float | None:
        """When a live session began, or None for an unknown or ended one."""
        if not isinstance(session_id, str):
            return None
        row = self.db.one("SELECT created_at FROM staff_sessions WHERE id_hash = ?",
                          (_hash(session_id),))
        return None if row is None else row[0]

    def end_session(self, session_id: object) -> None:
        if isinstance(session_id, str):
            self.db.execute("DELETE FROM staff_sessions WHERE id_hash = ?", (_hash(session_id),))

    def end_sessions(self, older_than: float | None = None) -> int:
        """End every staff session (a new password), or those started before older_than."""
        where, args = ("created_at < ?", (older_than,)) if older_than is not None else ("1 = 1", ())
        return self.db.execute(f"DELETE FROM staff_sessions WHERE {where}", args).rowcount
