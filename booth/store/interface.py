"""What the store's two back-ends share, declared once: the rows (SQLite's SqliteDatabase in
booth.store.db, PostgreSQL's PgDatabase in booth.store.pg) and the photo files (PhotoDir in
booth.store.photos, Bucket in booth.store.bucket). The capture, settings, session and
sweep code is written against these, so it runs on either; tests/test_store_interface.py
checks that each implementation has every member."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from booth.errors import BoothError

if TYPE_CHECKING:
    from booth.store.photos import Photo


@runtime_checkable
class Cursor(Protocol):
    """What callers use of a statement's result (sqlite3.Cursor has it too)."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


@runtime_checkable
class Transaction(Protocol):
    """A write transaction's connection (sqlite3.Connection has it too). Statements use
    SQLite's `?` placeholders on both databases."""

    def execute(self, sql: str, args: tuple = (), /) -> Cursor: ...


@runtime_checkable
class Database(Protocol):
    """The rows: captures, settings, staff sessions, secrets, tombstones, rate limits."""

    def execute(self, sql: str, args: tuple = ()) -> Cursor:
        """One statement on its own, committed at once."""

    def one(self, sql: str, args: tuple = ()) -> tuple | None: ...

    def all(self, sql: str, args: tuple = ()) -> list[tuple]: ...

    def write(self) -> AbstractContextManager[Transaction]:
        """A transaction: committed at the end of the block, rolled back on any error."""

    def error(self, exc: Exception) -> BoothError:
        """The database's own error, as the message the booth shows."""

    def close(self) -> None: ...


@runtime_checkable
class SharedDatabase(Database, Protocol):
    """The shared store's database, which several processes use at once."""

    def exclusive(self, name: str) -> AbstractContextManager[bool]:
        """Whether this process holds the cluster-wide lock `name` for the block."""


@runtime_checkable
class PhotoFiles(Protocol):
    """Where the photo files live. Names are flat ("<uuid>.jpg", a clip's "<uuid>.mp4",
    "<uuid>-thumb.jpg", "<uuid>-poster.jpg"); a name is never reused."""

    def put(self, name: str, data: bytes) -> None: ...

    def open(self, name: str) -> Photo | None:
        """The photo, or None if there is no such file."""

    def delete(self, name: str) -> bool: ...

    def listing(self) -> dict[str, float]:
        """Every stored name with its modification time (seconds since the epoch)."""
