"""The shared store's metadata in PostgreSQL (psycopg 3), with the interface of SQLite's
(booth.store.interface), so the capture, settings and session code runs on either.

Statements are written once, with SQLite's `?` placeholders; they are turned into
psycopg's `%s` here. A pool of connections serves the web threads, the station's uploader
and the janitor; an unreachable server surfaces as StoreUnavailable (a clean 503 page on the
web, a retry in the uploader), never as a traceback.

A server that is hung rather than refusing (stopped, a stuck disk, a lost network) must not
hold a caller for long either, so every call is bounded: connect_timeout for a new
connection, statement_timeout for a slow statement (the server cancels it), TCP keepalives
and tcp_user_timeout for a peer that is gone from the network, and a watchdog for what none
of those sees: a server whose own machine still acknowledges every packet (its process
stopped) never answers, so past CALL_DEADLINE the watchdog shuts the connection's socket
down and the call fails as a lost connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import psycopg_pool

from booth.config import redacted_url
from booth.errors import BoothError, StoreUnavailable, first_line
from booth.store.schema import migrate_pg

CONNECT_TIMEOUT = 5  # seconds for the first connection at start-up
POOL_CONNECT_TIMEOUT = 3  # seconds for the pool's later ones (libpq's least is 2)
# Seconds a request waits for a pooled connection before its 503 page. Not less: a server
# back after an outage gets new connections from the pool at its retry pace (about 2 s).
WAIT = 3.0
# A call on the web path (and the janitor's) is over in milliseconds; a request must answer
# within about 4 s even while the server hangs, so a statement has STATEMENT_TIMEOUT on the
# server and CALL_DEADLINE in all (a block of statements, or a check of a pooled connection
# with CHECK_DEADLINE) before its socket is cut.
STATEMENT_TIMEOUT = 2.0
CALL_DEADLINE = 2.5
CHECK_DEADLINE = 1.0
# Libpq's TCP settings: a peer that vanished from the network is noticed within seconds
# (keepalives while idle; tcp_user_timeout while data waits unacknowledged).
TCP = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2,
       "tcp_user_timeout": 5000}
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


class _Watchdog:
    """Shuts down the socket of a connection whose call outlives its deadline (one thread for
    all the calls of a process). The socket is duplicated while armed, so a connection that
    libpq closes in the meantime never lets the watchdog cut another one's socket."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[int, tuple[float, socket.socket]] = {}
        self._next = 0
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def deadline(self, conn: psycopg.Connection, seconds: float) -> Iterator[None]:
        try:
            sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        except (OSError, psycopg.Error):  # closed already: the call fails on its own
            yield
            return
        with self._cond:
            key = self._next = self._next + 1
            self._armed[key] = (time.monotonic() + seconds, sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pg-watchdog",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._armed.pop(key, None)
            sock.close()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key, (due, sock) in list(self._armed.items()):
                    if due <= now:
                        del self._armed[key]
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                dues = [due for due, _ in self._armed.values()]
                self._cond.wait(min(dues) - now if dues else None)


_WATCHDOG = _Watchdog()
log = logging.getLogger(__name__)


def _conninfo(url: str) -> dict:
    """The pool's connection settings: the URL's own, and the timeouts above."""
    options = psycopg.conninfo.conninfo_to_dict(url).get("options") or ""
    return {"autocommit": True, "connect_timeout": POOL_CONNECT_TIMEOUT,
            "application_name": "selfie-booth", **TCP,
            "options": f"{options} -c statement_timeout={int(STATEMENT_TIMEOUT * 1000)}".strip()}


def _check(conn: psycopg.Connection) -> None:
    # A connection broken by a restart of the server is replaced, not handed out.
    with _WATCHDOG.deadline(conn, CHECK_DEADLINE):
        psycopg_pool.ConnectionPool.check_connection(conn)


# What a server that answered says when it is only busy for a moment (a restart, a full
# house): the booth starts without it and waits, as for a server that does not answer.
_TRANSIENT = ("starting up", "shutting down", "recovery", "too many", "not yet accepting")


def unreachable(exc: psycopg.Error) -> bool:
    """Whether a failed connection is the network's or the server's absence (the booth
    starts without it) rather than a setting that is wrong (refused at start): a server
    that answered FATAL (a wrong password, no such role or database) or wants a password
    is wrong settings, a refused or silent address, or a name that does not resolve while
    the network is down, is absence. (psycopg gives no SQLSTATE for a failed connection.)"""
    message = str(exc)
    if isinstance(exc, psycopg.ProgrammingError) or "password" in message:
        return False
    return "FATAL:" not in message or any(word in message for word in _TRANSIENT)


class PgDatabase:
    """booth.store.interface.SharedDatabase on a pool of PostgreSQL connections.

    A server that cannot be reached at start (the museum's network down while the kiosk
    boots) is not an error: the database starts `offline` (the reason, for the log), every
    call raises StoreUnavailable until the pool's background connection gets through, and
    the first call after that applies the schema's migrations."""

    def __init__(self, url: str, *, max_connections: int = 10) -> None:
        self.url = url
        self.where = redacted_url(url)
        self.offline = ""
        try:
            # One connection first: its error says why (refused, no such database, a wrong
            # password) at once, where the pool would log every retry and then only say
            # that it timed out.
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.Error as exc:
            if not unreachable(exc):
                raise BoothError(f"database {self.where} refuses this booth "
                                 f"({first_line(exc)}); check [store] database_url and "
                                 "PGPASSWORD") from None
            self.offline = f"database {self.where} cannot be reached ({first_line(exc)})"
        self.pool = psycopg_pool.ConnectionPool(
            url, min_size=1, max_size=max_connections, timeout=WAIT, open=False,
            reconnect_timeout=RECONNECT_WINDOW, check=_check, kwargs=_conninfo(url))
        self._current = False  # whether the schema is up to date (migrated)
        self._migrating = threading.Lock()
        if self.offline:
            self.pool.open(wait=False)  # it connects in the background when it can
            return
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT + 1)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            self.pool.close()
            raise BoothError(f"database {self.where} cannot be reached ({first_line(exc)}); "
                             "check [store] database_url, the server and PGPASSWORD") from None
        try:
            self._migrate()
        except BaseException as exc:
            self.pool.close()
            if isinstance(exc, psycopg.Error):
                raise _cannot_use(self.where, exc) from None
            raise

    def _migrate(self) -> None:
        with self.pool.connection() as conn:
            migrate_pg(conn, self.where)
        self._current = True

    def _ensure_current(self) -> None:
        """A database out of reach at start: its migrations once it answers, before any
        other call; until then every call raises StoreUnavailable."""
        if self._current:
            return
        with self._migrating:
            if self._current:
                return
            try:
                self._migrate()
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                raise self.error(exc) from None
            except psycopg.Error as exc:  # it answers, but will not take the schema
                raise StoreUnavailable(str(_cannot_use(self.where, exc))) from None
            except BoothError as exc:  # a newer booth's schema
                raise StoreUnavailable(str(exc)) from None
            log.info("database %s answers; its schema is current", self.where)

    def error(self, exc: Exception) -> BoothError:
        return StoreUnavailable(f"database {self.where}: {first_line(exc)}")

    @contextlib.contextmanager
    def _connection(self, deadline: float | None = CALL_DEADLINE
                    ) -> Iterator[psycopg.Connection]:
        self._ensure_current()
        try:
            with self.pool.connection() as conn:
                if deadline is None:
                    yield conn
                else:
                    with _WATCHDOG.deadline(conn, deadline):
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
        lock) for the block: several janitors may run, one sweeps at a time. The block may
        take long (it lists the bucket): only the lock's own statements have deadlines."""
        with self._connection(deadline=None) as conn:
            with _WATCHDOG.deadline(conn, CALL_DEADLINE):
                key = conn.execute("SELECT hashtext(%s)", (f"selfie-booth:{name}",)).fetchone()[0]
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
            try:
                yield got
            finally:
                if got:
                    with contextlib.suppress(psycopg.Error), \
                            _WATCHDOG.deadline(conn, CALL_DEADLINE):
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        self.pool.close()


def _cannot_use(where: str, exc: psycopg.Error) -> BoothError:
    return BoothError(f"database {where} cannot be used ({first_line(exc)}); the user needs "
                      "to create tables in it")
