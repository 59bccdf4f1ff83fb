"""The store's SQLite connection: opened private (0600), checked, migrated, in WAL mode,
shared by the station thread and the web threads under one lock."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from booth.errors import BoothError
from booth.store.files import PRIVATE_FILE
from booth.store.keys import SecretFiles
from booth.store.schema import check_integrity, migrate


def _db_error(path: Path, exc: sqlite3.Error) -> BoothError:
    if isinstance(exc, sqlite3.OperationalError):  # cannot open, read-only, locked
        return BoothError(f"database {path} cannot be used ({exc}); check that it is "
                          "writable and no other program holds it, or pass --data-dir with "
                          "another folder")
    return BoothError(f"database {path} is not a booth database or is corrupt ({exc}); move "
                      "it aside (its photos are then swept at the next start) or pass "
                      "--data-dir with another folder")


def _make_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use the umask, 0644); its
    -wal and -shm files take the database file's mode. Older installs are tightened."""
    with contextlib.suppress(OSError):  # unusable: sqlite3.connect says why
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            os.chmod(name, PRIVATE_FILE)


class SqliteDatabase:
    """booth.store.interface.Database on one SQLite connection; `self.lock` serialises its
    use (a sqlite3 connection must not run two calls at once)."""

    def __init__(self, path: Path, secrets: SecretFiles) -> None:
        self.path = path
        self.lock = threading.Lock()
        _make_private(path)
        try:
            self.conn = sqlite3.connect(path, check_same_thread=False,
                                        isolation_level=None)  # we issue BEGIN ourselves
        except sqlite3.Error as exc:
            raise _db_error(path, exc) from None
        try:
            self.conn.execute("PRAGMA busy_timeout = 5000")
            check_integrity(self.conn)
            # WAL: web threads and other processes can read while the station writes.
            self.conn.execute("PRAGMA journal_mode = WAL")
            # A committed row must survive a power cut, or its visitor's link would break.
            self.conn.execute("PRAGMA synchronous = FULL")
            migrate(self.conn, secrets, str(path))
        except BaseException as exc:
            self.conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise self.error(exc) from None
            raise

    def error(self, exc: sqlite3.Error) -> BoothError:
        return _db_error(self.path, exc)

    def execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        """One statement on its own (SQLite commits it at once)."""
        with self.lock:
            return self.conn.execute(sql, args)

    def one(self, sql: str, args: tuple = ()) -> tuple | None:
        with self.lock:
            return self.conn.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.lock:
            return self.conn.execute(sql, args).fetchall()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, begun IMMEDIATE so that a read-then-write cannot fail with
        SQLITE_BUSY_SNAPSHOT; committed at the end, rolled back on any error."""
        with self.lock:
            db = self.conn
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self.lock:
            self.conn.close()
