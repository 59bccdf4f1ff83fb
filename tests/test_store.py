"""The photo store, against real SQLite and real files."""

from __future__ import annotations

import hashlib
import inspect
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from booth.errors import BoothError
from booth.store import Capture, Store

REPO = Path(__file__).resolve().parents[1]


def _payload(n: int) -> bytes:
    """300 kB framed like a JPEG, derived from n so any file can be checked byte for byte."""
    body = hashlib.shake_128(n.to_bytes(8, "big")).digest(300_000 - 12)
    return b"\xff\xd8" + n.to_bytes(8, "big") + body + b"\xff\xd9"


def _rows(data: Path) -> list[tuple[str, str | None, str]]:
    """(filename, raw_filename, token_hash) of every row, read with a separate connection."""
    db = sqlite3.connect(data / "booth.sqlite3")
    try:
        return db.execute(
            "SELECT filename, raw_filename, token_hash FROM captures ORDER BY id").fetchall()
    finally:
        db.close()


def test_publish_then_resolve(store: Store) -> None:
    jpeg, raw = _payload(1), _payload(2)
    cap = store.publish(jpeg, ttl_seconds=60, raw_jpeg=raw, now=1000.0)
    assert cap.token and cap.created_at == 1000.0 and cap.expires_at == 1060.0
    assert cap.path == store.photos / cap.filename and cap.path.read_bytes() == jpeg

    got = store.resolve(cap.token, now=1001.0)
    assert got == Capture(cap.id, None, cap.filename, cap.path, 1000.0, 1060.0, 0)
    assert store.count() == 1

    [(filename, raw_name, _)] = _rows(store.data_dir)
    assert filename == cap.filename and raw_name == cap.filename[:-4] + "-raw.jpg"
    assert (store.photos / raw_name).read_bytes() == raw
    assert sorted(os.listdir(store.photos)) == sorted([filename, raw_name])


def test_publish_uses_the_clock_by_default(store: Store) -> None:
    cap = store.publish(b"\xff\xd8x\xff\xd9", ttl_seconds=60)
    assert abs(cap.created_at - time.time()) < 5
    assert store.resolve(cap.token) is not None


def test_database_holds_no_plain_token(store: Store) -> None:
    caps = [store.publish(_payload(i), ttl_seconds=60) for i in range(5)]
    hashes = {row[2] for row in _rows(store.data_dir)}
    assert hashes == {hashlib.sha256(c.token.encode()).hexdigest() for c in caps}
    db = sqlite3.connect(store.db_path)
    text = repr(db.execute("SELECT * FROM captures").fetchall())
    db.close()
    assert not any(c.token in text for c in caps)

    def db_bytes() -> bytes:
        return b"".join(p.read_bytes() for p in store.data_dir.glob("booth.sqlite3*"))

    # While open the rows may sit in the WAL; close checkpoints them into the main file.
    assert not any(c.token.encode() in db_bytes() for c in caps)
    store.close()
    assert not any(c.token.encode() in db_bytes() for c in caps)


def test_tokens_have_at_least_128_bits(store: Store) -> None:
    tokens = [store.publish(b"x", ttl_seconds=60).token for _ in range(50)]
    assert len(set(tokens)) == 50
    for t in tokens:
        assert len(t) >= 22  # 22 base64 characters carry 132 bits, 16 random bytes
        assert set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_expired_capture_is_not_resolved(store: Store) -> None:
    cap = store.publish(b"x", ttl_seconds=10, now=1000.0)
    assert store.resolve(cap.token, now=1009.999) is not None
    assert store.resolve(cap.token, now=1010.0) is None
    assert store.resolve(cap.token, now=5000.0) is None


@pytest.mark.parametrize("token", [
    "", "a" * 10_000, "ünïcødé-tøkén-ünïcødé", "\ud800" * 30, "../x", "../../etc/passwd",
    "A" * 22, "x' OR '1'='1", "%00", "\x00" * 22, "aaaaaaaaaaaaaaaaaaaaaa\n",
])
def test_garbage_tokens_resolve_to_none(store: Store, token: str) -> None:
    store.publish(b"x", ttl_seconds=60)
    assert store.resolve(token) is None


def test_near_miss_tokens_resolve_to_none(store: Store) -> None:
    token = store.publish(b"x", ttl_seconds=60).token
    for bad in (token[:-1], token + "A", token + "\n", " " + token, token.swapcase()):
        assert store.resolve(bad) is None
    assert store.resolve(token) is not None


def test_sweep_removes_leftovers_and_keeps_referenced(store: Store) -> None:
    kept = store.publish(b"kept", ttl_seconds=60, raw_jpeg=b"kept raw")
    gone = store.publish(b"gone", ttl_seconds=60)
    (store.photos / ".tmp-abc123.jpg").write_bytes(b"half a photo")
    (store.photos / "0123456789abcdef0123456789abcdef.jpg").write_bytes(b"orphan")
    gone.path.unlink()  # its row now points at nothing

    assert store.sweep() == 3  # the temp file, the orphan, the dangling row
    assert store.resolve(gone.token) is None
    assert store.resolve(kept.token) is not None and kept.path.read_bytes() == b"kept"
    [(filename, raw_name, _)] = _rows(store.data_dir)
    assert sorted(os.listdir(store.photos)) == sorted([filename, raw_name])
    assert store.sweep() == 0


def test_sweep_runs_at_start_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(data)
    cap = store.publish(b"kept", ttl_seconds=60)
    store.close()
    (data / "photos" / ".tmp-xyz.jpg").write_bytes(b"half")
    (data / "photos" / "stray-raw.jpg").write_bytes(b"orphan")
    store = Store(data)
    try:
        assert os.listdir(data / "photos") == [cap.filename]
        assert store.resolve(cap.token) is not None
    finally:
        store.close()


def test_failed_commit_removes_the_files(store: Store) -> None:
    blocker = sqlite3.connect(store.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    store.db.conn.execute("PRAGMA busy_timeout = 50")  # fail fast instead of after 5 s
    try:
        with pytest.raises(BoothError, match="could not save the photo: database is locked"):
            store.publish(b"x", ttl_seconds=60, raw_jpeg=b"raw")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert os.listdir(store.photos) == [] and store.count() == 0
    assert store.publish(b"x", ttl_seconds=60).path.exists()  # the store is still usable


def test_threads_share_one_store(store: Store) -> None:
    caps: list[Capture] = []

    def work(k: int) -> None:
        caps.extend(store.publish(_payload(k * 100 + i), ttl_seconds=60) for i in range(10))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 40 == len({c.filename for c in caps})
    for c in caps:
        assert store.resolve(c.token).path.read_bytes() == c.path.read_bytes()


def test_unwritable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    # A regular file as parent stops even root, for whom chmod is no obstacle.
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(BoothError) as err:
        Store(tmp_path / "file" / "data")
    msg = str(err.value)
    assert "\n" not in msg and "not writable" in msg and "--data-dir" in msg
    assert str(tmp_path / "file" / "data") in msg


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="needs POSIX, not root")
def test_read_only_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "photos").chmod(0o500)
    try:
        with pytest.raises(BoothError, match="not writable .*Permission denied"):
            Store(data)
    finally:
        (data / "photos").chmod(0o700)


def test_corrupt_database_is_refused_and_photos_are_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "photos" / "someone.jpg").write_bytes(b"photo")
    (data / "booth.sqlite3").write_bytes(random.Random(7).randbytes(8192))
    with pytest.raises(BoothError) as err:
        Store(data)
    msg = str(err.value)
    assert "\n" not in msg and "is not a booth database or is corrupt" in msg
    assert "move it aside" in msg
    assert os.listdir(data / "photos") == ["someone.jpg"]  # no sweep against a bad database


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "booth.sqlite3")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(BoothError, match="newer selfie-booth"):
        Store(tmp_path)


# The schema of the first release (user_version 1), as that release created it.
_V1_SCHEMA = """
CREATE TABLE IF NOT EXISTS captures (
    id INTEGER PRIMARY KEY,
    token_hash TEXT UNIQUE NOT NULL,
    filename TEXT NOT NULL,
    raw_filename TEXT,
    thumb_filename TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    downloads INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS captures_created ON captures (created_at);
CREATE INDEX IF NOT EXISTS captures_expires ON captures (expires_at);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = 1;
"""


def test_a_first_release_database_upgrades_in_place(tmp_path: Path) -> None:
    """A v1 database (the old schema, written here as that release wrote it, 0644, with the
    session key and the password hash in its settings) opens as the current schema: its
    photo still opens by its link, the password still works, and the secrets have left
    the database (the old session key is dropped, so no cookie it signed is accepted)."""
    from argon2 import PasswordHasher

    from booth.store import SCHEMA_VERSION
    from booth.store.passwords import check_password

    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "photos" / "a.jpg").write_bytes(b"\xff\xd8photo\xff\xd9")
    token = "T" * 22
    now = time.time()
    hashed = PasswordHasher().hash("correct horse battery")
    db = sqlite3.connect(data / "booth.sqlite3")
    db.executescript(_V1_SCHEMA)
    db.execute("INSERT INTO captures (id, token_hash, filename, created_at, expires_at, "
               "downloads) VALUES (7, ?, 'a.jpg', ?, ?, 2)",
               (hashlib.sha256(token.encode()).hexdigest(), now, now + 3600))
    db.executemany("INSERT INTO settings VALUES (?, ?)", [
        ("secret_key", "ab" * 32), ("staff_password_hash", hashed),
        ("staff_session_epoch", "epoch"), ("last_capture_id", "9"),
        ("station_status", '{"camera": "ok"}')])
    db.commit()
    db.close()
    os.chmod(data / "booth.sqlite3", 0o644)

    store = Store(data)
    try:
        capture = store.resolve(token)
        assert capture is not None and capture.id == 7 and capture.downloads == 2
        assert not capture.pending
        assert capture.path.read_bytes() == b"\xff\xd8photo\xff\xd9"
        assert check_password(store, "correct horse battery")
        assert store.get_setting("station_status") == '{"camera": "ok"}'
        assert store.publish(b"x", ttl_seconds=60).id == 10  # ids are still never reused
        session_id = store.start_session()
        assert store.session_started(session_id) is not None
    finally:
        store.close()
    db = sqlite3.connect(data / "booth.sqlite3")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
        # The statistics' counts start with the upgrade (the old photos were not counted).
        assert db.execute("SELECT event, n FROM counts").fetchall() == [("capture:photo", 1)]
        keys = {k for (k,) in db.execute("SELECT key FROM settings")}
        assert keys == {"last_capture_id", "station_status"}
    finally:
        db.close()
    assert (data / "secrets" / "staff-password").read_text() == hashed
    if os.name != "nt":
        assert oct(os.stat(data / "booth.sqlite3").st_mode & 0o777) == "0o600"
    Store(data).close()  # opening again changes nothing
    assert (data / "secrets" / "staff-password").read_text() == hashed


def test_a_failed_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    """All the missing steps in one transaction: a v1 database whose upgrade fails (here a
    table the step creates is in the way) is still a v1 database afterwards."""
    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "booth.sqlite3")
    db.executescript(_V1_SCHEMA + "CREATE TABLE staff_sessions (x);")
    db.close()
    with pytest.raises(BoothError, match="cannot be used"):
        Store(data)
    db = sqlite3.connect(data / "booth.sqlite3")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        db.close()


_PUBLISHER = f"""
import hashlib, sys
from pathlib import Path
from booth.store import Store

{inspect.getsource(_payload)}
store = Store(Path(sys.argv[1]))
n = int(sys.argv[2])
print("ready", flush=True)
while True:
    store.publish(_payload(n), ttl_seconds=3600, raw_jpeg=_payload(n + 1) if n % 4 else None)
    n += 2
"""


def _check_rows(data: Path, checked: dict[str, int]) -> list[tuple]:
    """Right after the kill, before any sweep: every committed row's files are whole."""
    rows = _rows(data)
    names = [r[0] for r in rows] + [r[1] for r in rows if r[1] is not None]
    assert len(names) == len(set(names)), "two rows share a file"
    for filename, raw_name, _ in rows:
        for name in (filename, raw_name):
            if name is None or name in checked:
                continue  # published files are never rewritten: check each once
            path = data / "photos" / name
            assert path.is_file(), f"a committed row points at a missing {name}"
            content = path.read_bytes()
            checked[name] = n = int.from_bytes(content[2:10], "big")
            assert content == _payload(n), f"{name} is torn or corrupt"
        if raw_name is not None:
            assert checked[raw_name] == checked[filename] + 1, "raw frame of another capture"
    assert len(set(checked.values())) == len(checked), "a photo was stored twice"
    return rows


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
@pytest.mark.slow
def test_sigkill_during_publish_leaves_only_whole_referenced_files(tmp_path: Path) -> None:
    rounds, per_dir = 30, 5  # a fresh folder every few rounds keeps the disk use bounded
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    published = swept = 0
    checked: dict[str, int] = {}
    for rnd in range(rounds):
        data = tmp_path / f"data{rnd // per_dir}"
        proc = subprocess.Popen(
            [sys.executable, "-c", _PUBLISHER, str(data), str(rnd * 10**7)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            ready = proc.stdout.readline()
            if ready == b"ready\n":
                time.sleep(rng.uniform(0.05, 0.4))
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            _, err = proc.communicate()
        assert ready == b"ready\n", err.decode(errors="replace")
        assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")

        known = len(checked)
        rows = _check_rows(data, checked)
        published += len(checked) - known
        before = set(os.listdir(data / "photos"))
        store = Store(data)  # the start-up sweep must leave exactly the rows' files
        try:
            assert store.count() == len(rows) and _rows(data) == rows
        finally:
            store.close()
        after = set(os.listdir(data / "photos"))
        assert after == {n for r in rows for n in r[:2] if n}, "temp, orphan or missing file"
        swept += len(before - after)
        if rnd % per_dir == per_dir - 1:
            shutil.rmtree(data)
            checked.clear()
    # The test must have exercised something: photos stored, and kills that left debris.
    assert published > 0, f"seed {seed}"
    assert swept > 0, f"seed {seed}: no kill ever landed mid-publish"


def test_sweep_removes_a_writability_probe_left_in_the_data_dir(tmp_path: Path) -> None:
    """A start-up killed between creating and deleting its probe file leaves it behind."""
    data = tmp_path / "data"
    Store(data).close()
    left = data / ".tmp-probe"
    left.write_bytes(b"")
    fresh = data / ".tmp-another-start"  # another process opening the data dir right now
    fresh.write_bytes(b"")
    os.utime(left, (time.time() - 61, time.time() - 61))
    Store(data).close()
    assert not left.exists() and fresh.exists()


def test_two_processes_opening_one_data_dir_at_once_both_open(tmp_path: Path) -> None:
    """One's start-up sweep must not take the other's writability probe or session key
    from under it (seen as "data dir ... not writable (No such file or directory)")."""
    code = ("import sys; from booth.store import Store; "
            "[Store(__import__('pathlib').Path(sys.argv[1])).close() for _ in range(30)]")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "data")],
                              env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
