"""The database's schema as numbered migrations, applied in order when a store opens.

SQLite (the station's own store): PRAGMA user_version holds the number of the last step
applied. PostgreSQL (the shared store): its own list of steps, numbered in a schema_version
table. A step is added at the end and never changed once released, so every older database
upgrades in place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from booth.errors import BoothError
from booth.store.keys import SecretFiles

PASSWORD_FILE = "staff-password"  # the argon2id hash (see booth.store.passwords)


def _v1_captures_and_settings(db: sqlite3.Connection, secrets: SecretFiles) -> None:
    db.execute("""CREATE TABLE IF NOT EXISTS captures (
        id INTEGER PRIMARY KEY,
        token_hash TEXT UNIQUE NOT NULL,
        filename TEXT NOT NULL,
        raw_filename TEXT,
        thumb_filename TEXT,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        downloads INTEGER NOT NULL DEFAULT 0)""")
    db.execute("CREATE INDEX IF NOT EXISTS captures_created ON captures (created_at)")
    db.execute("CREATE INDEX IF NOT EXISTS captures_expires ON captures (expires_at)")
    db.execute("CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _v2_staff_sessions_and_secrets_out(db: sqlite3.Connection, secrets: SecretFiles) -> None:
    """Staff sessions become rows (logout deletes one, a new password all of them); the
    session key and the password hash leave the database. The old key is dropped, not
    moved: a copy of an old database must not sign cookies this booth accepts."""
    db.execute("""CREATE TABLE staff_sessions (
        id_hash TEXT PRIMARY KEY,
        created_at REAL NOT NULL)""")
    row = db.execute("SELECT value FROM settings WHERE key = 'staff_password_hash'").fetchone()
    if row and row[0] and secrets.read(PASSWORD_FILE) is None:
        secrets.write(PASSWORD_FILE, row[0])
    db.execute("DELETE FROM settings WHERE key IN "
               "('secret_key', 'staff_session_epoch', 'staff_password_hash')")


def _v3_pending(db: sqlite3.Connection, secrets: SecretFiles) -> None:
    """A capture whose photo is still on its way from a station (shared store only; the
    column keeps the two schemas alike)."""
    db.execute("ALTER TABLE captures ADD COLUMN pending INTEGER NOT NULL DEFAULT 0")


def _v4_clips(db: sqlite3.Connection, secrets: SecretFiles) -> None:
    """A capture is a photo or a clip (its file an MP4, with a poster JPEG beside it); every
    capture made before is a photo."""
    db.execute(_ADD_KIND)
    db.execute(_ADD_POSTER)


def _v5_prints(db: sqlite3.Connection, secrets: SecretFiles) -> None:
    """Printing (booth.store.prints): each queue's prints a day, and staff's print requests
    waiting for the station."""
    for statement in _PRINTS.split(";"):
        db.execute(statement)


# Both databases take these as they are.
_PRINTS = """CREATE TABLE print_days (printer TEXT NOT NULL, day TEXT NOT NULL,
                                      used INTEGER NOT NULL, PRIMARY KEY (printer, day));
    CREATE TABLE print_requests (capture_id BIGINT PRIMARY KEY,
                                 requested_at DOUBLE PRECISION NOT NULL)"""


def _v6_counts(db: sqlite3.Connection, secrets: SecretFiles) -> None:
    """The statistics' counts (booth.store.counts): events per hour, kept through purges."""
    db.execute(_COUNTS)


_COUNTS = """CREATE TABLE counts (hour BIGINT NOT NULL, event TEXT NOT NULL,
    n BIGINT NOT NULL, PRIMARY KEY (hour, event))"""
_ADD_KIND = "ALTER TABLE captures ADD COLUMN kind TEXT NOT NULL DEFAULT 'photo'"
_ADD_POSTER = "ALTER TABLE captures ADD COLUMN poster_filename TEXT"

MIGRATIONS: tuple[Callable[[sqlite3.Connection, SecretFiles], None], ...] = (
    _v1_captures_and_settings,
    _v2_staff_sessions_and_secrets_out,
    _v3_pending,
    _v4_clips,
    _v5_prints,
    _v6_counts,
)
SCHEMA_VERSION = len(MIGRATIONS)


def check_integrity(db: sqlite3.Connection) -> None:
    """A damaged page (in an index, or the settings table) would otherwise pass the start-up
    sweep and fail later: every photo link, or the web app's start, with a traceback. The
    check reads every page once: milliseconds for a day of photos."""
    problems = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        lines = [line for p in problems for line in p.splitlines()
                 if line.strip() and not line.startswith("***")]
        raise sqlite3.DatabaseError("database disk image is malformed: "
                                    + (lines[0][:200] if lines else "quick_check failed"))


def migrate(db: sqlite3.Connection, secrets: SecretFiles, where: str) -> None:
    """Apply the missing steps in one transaction: all of them or none."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise BoothError(f"database {where} is from a newer selfie-booth (schema "
                             f"{version}); upgrade, or pass --data-dir with another folder")
        for step in MIGRATIONS[version:]:
            step(db, secrets)
        if version < SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


# The shared store. Ids come from a sequence (never reused, as in SQLite's settings row);
# pending is 1 from a station's first report of a photo until its files are in the bucket.
# Secrets are rows here: every server must sign and check the same staff cookies.
# rate_limits: the web app's fixed windows, counted by every server (booth.store.ratelimits).
# tombstones: a deleted photo's link says "not found" until it would have expired, never "on
# its way" (a station's link carries its expiry, so an unknown token may be a photo not up yet).
PG_MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE captures (
        id BIGSERIAL PRIMARY KEY,
        token_hash TEXT UNIQUE NOT NULL,
        filename TEXT NOT NULL,
        raw_filename TEXT,
        thumb_filename TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        downloads INTEGER NOT NULL DEFAULT 0,
        pending SMALLINT NOT NULL DEFAULT 0);
    CREATE INDEX captures_created ON captures (created_at);
    CREATE INDEX captures_expires ON captures (expires_at);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE staff_sessions (id_hash TEXT PRIMARY KEY,
                                 created_at DOUBLE PRECISION NOT NULL);
    CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE rate_limits (key TEXT PRIMARY KEY, window_end DOUBLE PRECISION NOT NULL,
                              hits INTEGER NOT NULL);
    CREATE TABLE tombstones (token_hash TEXT PRIMARY KEY,
                             expires_at DOUBLE PRECISION NOT NULL)""",
    # Objects of deleted photos that the bucket did not take at the time (it was down):
    # the janitors delete them once it is back (booth.store.sweep.DeletionQueue); due_at
    # is when a janitor may next try one (later while another one is trying it).
    """CREATE TABLE pending_deletes (name TEXT PRIMARY KEY,
                                     due_at DOUBLE PRECISION NOT NULL)""",
    # 3: clips (see _v4_clips).
    f"{_ADD_KIND}; {_ADD_POSTER}",
    _PRINTS,  # 4: printing (see _v5_prints)
    _COUNTS,  # 5: the statistics' counts (see _v6_counts)
)
PG_SCHEMA_VERSION = len(PG_MIGRATIONS)
_PG_LOCK = 0x5E1F1E  # advisory lock key: one process migrates at a time


def migrate_pg(conn, where: str) -> None:
    """Apply the missing steps in one transaction, under an advisory lock, so that stations
    and servers starting at once do not race (conn: a psycopg connection in autocommit)."""
    with conn.transaction():
        # Waiting for another process's migration may outlast a web call's statement_timeout.
        conn.execute("SET LOCAL statement_timeout = 0")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if version > PG_SCHEMA_VERSION:
            raise BoothError(f"database {where} is from a newer selfie-booth (schema "
                             f"{version}); upgrade this one")
        for step in PG_MIGRATIONS[version:]:
            conn.execute(step)
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (%s)", (PG_SCHEMA_VERSION,))
        else:
            conn.execute("UPDATE schema_version SET version = %s", (PG_SCHEMA_VERSION,))
