"""The database's schema as numbered migrations, applied in order when a store opens.

PRAGMA user_version holds the number of the last step applied. A step is added at the end
and never changed once released, so every older database upgrades in place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from booth.errors import BoothError
from booth.store.keys import SecretFiles

PASSWORD_FILE = "staff-password"  # the argon2id hash (see booth.passwords)


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


MIGRATIONS: tuple[Callable[[sqlite3.Connection, SecretFiles], None], ...] = (
    _v1_captures_and_settings,
    _v2_staff_sessions_and_secrets_out,
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
