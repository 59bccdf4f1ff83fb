"""The store's two back-ends implement the interface they share (booth.store.interface),
checked on real instances: SQLite and a real PostgreSQL server, a folder and a real bucket.
A member missing, or taking other arguments, in either one fails here rather than on the
other back-end's first use."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Protocol

from booth.store.bucket import Bucket
from booth.store.db import SqliteDatabase
from booth.store.interface import Cursor, Database, PhotoFiles, SharedDatabase, Transaction
from booth.store.keys import SecretFiles
from booth.store.pg import PgDatabase
from booth.store.photos import PhotoDir


def members(protocol: type) -> set[str]:
    """What a protocol declares: its methods and attributes, its bases' included."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls in (Protocol, object) or not getattr(cls, "_is_protocol", False):
            continue
        names |= {n for n in vars(cls) if not n.startswith("_")}
        names |= set(getattr(cls, "__annotations__", {}))
    return names


def assert_implements(instance: object, protocol: type) -> None:
    assert isinstance(instance, protocol), f"{type(instance).__name__} is no {protocol.__name__}"
    for name in members(protocol):
        declared = getattr(protocol, name, None)
        if not callable(declared):
            assert hasattr(instance, name), (type(instance).__name__, name)
            continue
        wanted = list(inspect.signature(declared).parameters)[1:]  # without self
        got = list(inspect.signature(getattr(instance, name)).parameters)
        assert got == wanted, f"{type(instance).__name__}.{name}{tuple(got)}: not {wanted}"


def test_members_are_found() -> None:
    assert members(Database) == {"execute", "one", "all", "write", "error", "close"}
    assert members(SharedDatabase) == members(Database) | {"exclusive"}
    assert members(PhotoFiles) == {"put", "open", "delete", "listing"}
    assert members(Cursor) == {"rowcount", "fetchone", "fetchall"}


def test_sqlite_and_postgresql_are_one_database(tmp_path: Path, pg_url: str) -> None:
    sqlite = SqliteDatabase(tmp_path / "booth.sqlite3", SecretFiles(tmp_path / "secrets"))
    pg = PgDatabase(pg_url)
    try:
        assert_implements(sqlite, Database)
        assert_implements(pg, SharedDatabase)
        for db in (sqlite, pg):  # what their statements and transactions hand back
            assert isinstance(db.execute("SELECT 1"), Cursor)
            with db.write() as transaction:
                assert isinstance(transaction, Transaction)
                assert isinstance(transaction.execute("SELECT 1"), Cursor)
    finally:
        sqlite.close()
        pg.close()


def test_a_folder_and_a_bucket_are_one_photo_storage(tmp_path: Path, s3_bucket) -> None:
    assert_implements(PhotoDir(tmp_path), PhotoFiles)
    assert_implements(Bucket(s3_bucket.url, s3_bucket.endpoint_url), PhotoFiles)
