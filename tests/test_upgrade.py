"""An upgrade from every earlier schema: a database made by the first k steps (for every k
below the current step count, so a step added later is covered without a change here),
holding rows in every table, opened by the current code: every row is still there, every
photo still opens by its link, and the schema is the current one."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from booth.store import Store
from booth.store.captures import CaptureRows, token_hash
from booth.store.keys import SecretFiles
from booth.store.pg import PgDatabase
from booth.store.schema import (
    MIGRATIONS,
    PASSWORD_FILE,
    PG_MIGRATIONS,
    PG_SCHEMA_VERSION,
    SCHEMA_VERSION,
)

NOW = time.time()


def _value(table: str, column: str, kind: str, i: int):
    """A value of the column's type, different for each row and table."""
    kind = kind.upper()
    if "INT" in kind or "SERIAL" in kind:
        return 100 + i
    if any(word in kind for word in ("REAL", "DOUBLE", "FLOAT", "NUMERIC")):
        return NOW + 3600 + i
    return f"{table}-{column}-{i}"


def _captures(i: int, photos: Path | None) -> dict:
    """A capture as the first step's table has it (every later step keeps these columns);
    its photo written where the store looks for it."""
    token = f"upgrade-token-{i:08d}-abcdefgh"
    filename = f"{i:032x}.jpg"
    if photos is not None:
        (photos / filename).write_bytes(b"\xff\xd8photo %d\xff\xd9" % i)
    return {"id": 1 + i, "token_hash": token_hash(token), "filename": filename,
            "created_at": NOW - 60, "expires_at": NOW + 3600, "downloads": i, "_token": token}


def fill(tables: dict[str, list[tuple[str, str, bool]]], insert, photos: Path | None
         ) -> dict[str, list[dict]]:
    """Two rows in every table (columns: name, type, required); what was inserted."""
    rows: dict[str, list[dict]] = {}
    for table, columns in tables.items():
        for i in range(2):
            if table == "captures":
                row = _captures(i, photos)
            else:  # the required columns, and the others too where a value is cheap
                row = {name: _value(table, name, kind, i) for name, kind, _ in columns}
            insert(table, {k: v for k, v in row.items() if not k.startswith("_")})
            rows.setdefault(table, []).append(row)
    return rows


def check(rows: dict[str, list[dict]], select) -> None:
    for table, inserted in rows.items():
        for row in inserted:
            columns = [k for k in row if not k.startswith("_")]
            assert tuple(row[c] for c in columns) in select(table, columns), (table, row)


@pytest.mark.parametrize("steps", range(1, SCHEMA_VERSION), ids=lambda k: f"sqlite-{k}")
def test_every_earlier_sqlite_schema_upgrades(tmp_path: Path, steps: int):
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    secrets = SecretFiles(data / "secrets")
    db = sqlite3.connect(data / "booth.sqlite3", isolation_level=None)
    for step in MIGRATIONS[:steps]:
        step(db, secrets)
    db.execute(f"PRAGMA user_version = {steps}")
    tables = {
        name: [(c[1], c[2], bool(c[3])) for c in db.execute(f"PRAGMA table_info({name})")]
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND "
                                  "name NOT LIKE 'sqlite_%'")}
    rows = fill(tables, lambda t, r: db.execute(
        f"INSERT INTO {t} ({', '.join(r)}) VALUES ({', '.join('?' * len(r))})",
        tuple(r.values())), data / "photos")
    if steps < 2:  # before step 2 the staff password's hash was a setting
        db.execute("INSERT INTO settings VALUES ('staff_password_hash', '$argon2id$old')")
    db.close()

    store = Store(data)
    try:
        version = store.db.one("PRAGMA user_version")[0]
        assert version == SCHEMA_VERSION
        check(rows, lambda t, cols: set(store.db.all(f"SELECT {', '.join(cols)} FROM {t}")))
        for row in rows["captures"]:
            capture = store.resolve(row["_token"])
            assert capture is not None and capture.kind == "photo"
            photo = store.open_photo(capture)
            with photo.stream:
                assert photo.stream.read() == b"\xff\xd8photo %d\xff\xd9" % row["downloads"]
        if steps < 2:
            assert secrets.read(PASSWORD_FILE) == "$argon2id$old"
    finally:
        store.close()


class _PgRows(CaptureRows):
    """The current capture code on the upgraded database (no bucket needed to find rows)."""

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        self.photos = self.photo_files = self.outbox = self.uploader = None
        self._leftovers = set()


@pytest.mark.parametrize("steps", range(1, PG_SCHEMA_VERSION), ids=lambda k: f"pg-{k}")
def test_every_earlier_postgresql_schema_upgrades(pg_url: str, steps: int):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for step in PG_MIGRATIONS[:steps]:
            conn.execute(step)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (%s)", (steps,))
        tables: dict[str, list[tuple[str, str, bool]]] = {}
        for table, column, kind, nullable in conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable FROM "
                "information_schema.columns WHERE table_schema = 'public' AND "
                "table_name <> 'schema_version' ORDER BY table_name, ordinal_position"):
            tables.setdefault(table, []).append((column, kind, nullable == "NO"))
        rows = fill(tables, lambda t, r: conn.execute(
            f"INSERT INTO {t} ({', '.join(r)}) VALUES ({', '.join(['%s'] * len(r))})",
            tuple(r.values())), None)

    db = PgDatabase(pg_url)
    try:
        assert db.one("SELECT version FROM schema_version") == (PG_SCHEMA_VERSION,)
        check(rows, lambda t, cols: set(db.all(f"SELECT {', '.join(cols)} FROM {t}")))
        for row in rows["captures"]:
            capture = _PgRows(db).resolve(row["_token"])
            assert capture is not None and capture.kind == "photo"
            assert (capture.filename, capture.downloads) == (row["filename"], row["downloads"])
    finally:
        db.close()
