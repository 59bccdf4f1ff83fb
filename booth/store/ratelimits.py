"""The web app's rate limits on the shared store: fixed-window counters in PostgreSQL's
rate_limits table, so every `booth serve` process behind one public address counts into the
same windows (a phone or an attacker gets the limits once in total, not once per server).

Each count is one statement, atomic under concurrent requests on any server: the row is
locked by the upsert, so of N parallel hits exactly the first `limit` see a count within it.
Times are the callers' wall clock (seconds since the epoch): servers are assumed to keep
time by NTP, a skew of a second only moves a window's edge by that much.

The keys name a client address: expired rows are deleted every minute by the janitor
(booth.webapp.server), so an address stays in the database no longer than its longest window
(an hour) and a minute.
"""

from __future__ import annotations

from booth.store.interface import Database


class RateCounts:
    def __init__(self, db: Database) -> None:
        self.db = db  # PostgreSQL: the statements are its own

    def hit(self, key: str, seconds: float, amount: int, now: float) -> int:
        """Count `amount` hits in key's window (a new one of `seconds` if there is none or it
        has ended); returns the window's count."""
        # In SET every column still reads the row as it was, so both CASEs test the old end.
        row = self.db.one(
            """INSERT INTO rate_limits AS r (key, window_end, hits) VALUES (?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET
                 hits = CASE WHEN r.window_end <= ? THEN excluded.hits
                             ELSE r.hits + excluded.hits END,
                 window_end = CASE WHEN r.window_end <= ? THEN excluded.window_end
                                   ELSE r.window_end END
               RETURNING hits""",
            (key, now + seconds, amount, now, now))
        return row[0]

    def give_back(self, key: str, amount: int, now: float) -> int:
        """Take back hits from key's live window (none from an ended one); returns its count."""
        row = self.db.one("UPDATE rate_limits SET hits = GREATEST(hits - ?, 0) "
                          "WHERE key = ? AND window_end > ? RETURNING hits", (amount, key, now))
        return row[0] if row else 0

    def window(self, key: str, now: float) -> tuple[int, float]:
        """(hits, end) of key's live window; (0, now) if it has none."""
        row = self.db.one("SELECT hits, window_end FROM rate_limits "
                          "WHERE key = ? AND window_end > ?", (key, now))
        return (row[0], row[1]) if row else (0, now)

    def clear(self, key: str | None = None) -> int:
        """Forget key's window, or every window."""
        if key is None:
            return self.db.execute("DELETE FROM rate_limits").rowcount
        return self.db.execute("DELETE FROM rate_limits WHERE key = ?", (key,)).rowcount

    def purge(self, now: float) -> int:
        """Delete the windows that have ended (the janitor, every minute, in every process:
        a window restarted meanwhile by a hit has a new end and stays)."""
        return self.db.execute("DELETE FROM rate_limits WHERE window_end <= ?", (now,)).rowcount
