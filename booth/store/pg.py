"""The shared store's metadata in PostgreSQL (psycopg 3), with the interface of SQLite's
(booth.store.interface), so the capture, settings and session code runs on either.

Statements are written once, with SQLite's `?` placeholders; they are turned into
psycopg's `%s` here. A pool of connections serves the web threads, the station's uploader
and the janitor; an unreachable server surfaces as StoreUnavailable (a clean 503 page on the
web, a retry in the uploader), never as a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import psycopg_pool

from booth.config import redacted_url
from booth.errors import BoothError, StoreUnavailable, first_line
from booth.store.schema import migrate_pg

CONNECT_TIMEOUT = 5  # seconds for a new connection: an unreachable server says so quickly
WAIT = 3.0  # seconds a request waits for a pooled connection before its 503 page
# The pool retries a lost server with a doubling delay, until this many seconds; then the
# next request starts over at one second. Short, so a server back after a long outage is
# used again within seconds, not after the delay has doubled to minutes.
RECONNECT_WINDOW = 10.0


def _sql(statement: str) -> str:
    if "%" in statement:  # psycopg would read it as a placeholder
        raise ValueError("SQL for both databases must not contain %")
    return statement.replace("?", "%s")


class _Cursor:
    """What Database's callers use of a cursor: fetchone, fetchall, rowcount."""

    def __init__(self, cursor: psycopg.Cursor) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount

    def fetchone(self):
        return self._cursor.fetchone()

    def fetchall(self):
        return self._cursor.fetchall()


class _Transaction:
    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, args: tuple = ()) -> _Cursor:
        return _Cursor(self._conn.execute(_sql(sql), args))


class PgDatabase:
    """booth.store.interface.SharedDatabase on a pool of PostgreSQL connections."""

    def __init__(self, url: str, *, max_connections: int = 10) -> None:
        self.url = url
        self.where = redacted_url(url)
        try:
            # One connection first: its error says why (refused, no such database, a wrong
            # password) at once, where the pool would log every retry and then only say
            # that it timed out.
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.Error as exc:
            raise BoothError(f"database {self.where} cannot be reached ({first_line(exc)}); "
                             "check [store] database_url, the server and PGPASSWORD") from None
        self.pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=max_connections, timeout=WAIT, open=False,
            reconnect_timeout=RECONNECT_WINDOW,
            # A connection broken by a restart of the server is replaced, not handed out.
            check=psycopg_pool.ConnectionPool.check_connection,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT,
                    "application_name": "selfie-booth"})
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT + 1)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self.pool.close()
            raise BoothError(f"database {self.where} cannot be reached ({first_line(exc)}); "
                             "check [store] database_url, the server and PGPASSWORD") from None
        try:
            with self.pool.connection() as conn:
                migrate_pg(conn, self.where)
        except BaseException as exc:
            self.pool.close()
            if isinstance(exc, psycopg.Error):
                raise BoothError(f"database {self.where} cannot be used ({first_line(exc)}); "
                                 "the user needs to create tables in it") from None
            raise

    def error(self, exc: Exception) -> BoothError:
        return StoreUnavailable(f"database {self.where}: {first_line(exc)}")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError,
                psycopg_pool.PoolTimeout) as exc:
            raise self.error(exc) from None

    def execute(self, sql: str, args: tuple = ()) -> _Cursor:
        with self._connection() as conn:
            return _Cursor(conn.execute(_sql(sql), args))

    def one(self, sql: str, args: tuple = ()) -> tuple | None:
        with self._connection() as conn:
            return conn.execute(_sql(sql), args).fetchone()

    def all(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._connection() as conn:
            return conn.execute(_sql(sql), args).fetchall()

    @contextlib.contextmanager
    def write(self) -> Iterator[_Transaction]:
        """One transaction, committed at the end, rolled back on any error."""
        with self._connection() as conn, conn.transaction():
            yield _Transaction(conn)

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Whether this process holds the cluster-wide lock `name` (a PostgreSQL advisory
        lock) for the block: several janitors may run, one sweeps at a time."""
        with self._connection() as conn:
            key = conn.execute("SELECT hashtext(%s)", (f"selfie-booth:{name}",)).fetchone()[0]
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            try:
                yield got
            finally:
                if got:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        self.pool.close()
