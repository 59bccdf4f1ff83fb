"""Printing's rows: how many prints each CUPS queue made each day (its daily limit holds across
processes and stations: a station's Print button and staff's reprints count in one row), and
staff's print requests, which the station with the printer takes (the web app may run on
another machine; it never talks to CUPS)."""

from __future__ import annotations

import time

from booth.store.interface import Database


class PrintRows:
    """Mixed into Store: needs self.db."""

    db: Database

    def claim_prints(self, printer: str, day: str, copies: int, limit: int) -> bool:
        """Count `copies` prints on the queue today if they stay within `limit` (0: none);
        False when they would not. One conditional UPDATE: the database makes parallel
        claims wait for each other (SQLite's one writer, PostgreSQL's row lock, whose WHERE
        is checked again on the row as the other claim left it), so N is never exceeded."""
        with self.db.write() as tx:
            tx.execute("INSERT INTO print_days (printer, day, used) VALUES (?, ?, 0) "
                       "ON CONFLICT (printer, day) DO NOTHING", (printer, day))
            claimed = tx.execute("UPDATE print_days SET used = used + ? WHERE printer = ? AND "
                                 "day = ? AND (? = 0 OR used + ? <= ?)",
                                 (copies, printer, day, limit, copies, limit))
            return claimed.rowcount == 1

    def give_back_prints(self, printer: str, day: str, copies: int) -> None:
        """Prints claimed that CUPS did not take (the queue paused, gone, CUPS down)."""
        self.db.execute("UPDATE print_days SET used = CASE WHEN used > ? THEN used - ? ELSE 0 "
                        "END WHERE printer = ? AND day = ?", (copies, copies, printer, day))

    def prints_on(self, printer: str, day: str) -> int:
        row = self.db.one("SELECT used FROM print_days WHERE printer = ? AND day = ?",
                          (printer, day))
        return row[0] if row else 0

    def request_print(self, capture_id: int, now: float | None = None) -> None:
        """Staff want this capture printed (again): the station takes it within seconds."""
        self.db.execute("INSERT INTO print_requests (capture_id, requested_at) VALUES (?, ?) "
                        "ON CONFLICT (capture_id) DO NOTHING",
                        (capture_id, time.time() if now is None else now))

    def take_print_requests(self) -> list[int]:
        """The captures staff asked to print, oldest first, each given to one taker only."""
        taken = []
        for (capture_id,) in self.db.all("SELECT capture_id FROM print_requests "
                                         "ORDER BY requested_at"):
            if self.db.execute("DELETE FROM print_requests WHERE capture_id = ?",
                               (capture_id,)).rowcount == 1:
                taken.append(capture_id)
        return taken

    def waiting_prints(self) -> set[int]:
        """Captures whose print request no station has taken yet."""
        return {row[0] for row in self.db.all("SELECT capture_id FROM print_requests")}
