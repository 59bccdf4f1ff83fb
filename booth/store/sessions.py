"""Staff sessions, held server-side: the cookie carries a random id, the database only its
SHA-256 and when it started. Logout deletes the row, a new password deletes them all, so an
old cookie opens nothing; a copy of the database holds no id a cookie could carry.

A logout while the shared database is out of reach still ends the session: this process
refuses it from then on, and a thread deletes its row as soon as the database answers
(within RETRY_SECONDS of its return), so every other server refuses it too."""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time

from booth.errors import StoreUnavailable
from booth.store.interface import Database

RETRY_SECONDS = 1.0
_DELETE = "DELETE FROM staff_sessions WHERE id_hash = ?"
_OWED_LOCK = threading.Lock()  # makes one _OwedLogouts per store
log = logging.getLogger(__name__)


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class _OwedLogouts:
    """Sessions logged out while the database was out of reach (their hashes): refused by
    this process, and deleted by a thread of their own that tries every RETRY_SECONDS."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.hashes: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, hashed: str) -> None:
        with self._lock:
            self.hashes.add(hashed)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="logouts", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(RETRY_SECONDS):
            with self._lock:
                owed = list(self.hashes)
                if not owed:
                    self._thread = None
                    return
            try:
                for hashed in owed:
                    self.db.execute(_DELETE, (hashed,))
                    with self._lock:
                        self.hashes.discard(hashed)
            except StoreUnavailable:
                continue
            log.info("the database is back: %d staff logout(s) made meanwhile are recorded",
                     len(owed))

    def stop(self) -> None:
        self._stop.set()


class StaffSessions:
    """Mixed into Store: needs self.db."""

    db: Database
    _owed: _OwedLogouts | None = None

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
        hashed = _hash(session_id)
        if self._owed is not None and hashed in self._owed.hashes:
            return None  # logged out while the database was out of reach
        row = self.db.one("SELECT created_at FROM staff_sessions WHERE id_hash = ?", (hashed,))
        return None if row is None else row[0]

    def end_session(self, session_id: object) -> bool:
        """Ends a session, even while the shared database is out of reach (see above);
        whether there was one to end (True if the database could not say)."""
        if not isinstance(session_id, str):
            return False
        hashed = _hash(session_id)
        try:
            return self.db.execute(_DELETE, (hashed,)).rowcount > 0
        except StoreUnavailable:
            with _OWED_LOCK:
                if self._owed is None:
                    self._owed = _OwedLogouts(self.db)
            self._owed.add(hashed)
            log.warning("staff logout while the database is out of reach: the session is "
                        "refused here now, everywhere once the database is back")
            return True

    def stop_owed_logouts(self) -> None:
        """At close: no more tries (a logout still owed then is refused by the other servers
        only once its shift is over)."""
        if self._owed is not None:
            self._owed.stop()

    def end_sessions(self, older_than: float | None = None) -> int:
        """End every staff session (a new password), or those started before older_than."""
        where, args = ("created_at < ?", (older_than,)) if older_than is not None else ("1 = 1", ())
        return self.db.execute(f"DELETE FROM staff_sessions WHERE {where}", args).rowcount
