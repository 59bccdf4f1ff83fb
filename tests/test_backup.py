"""`booth backup` and `booth restore`: a consistent copy while a station captures, every row
of it with its files, and a restore that refuses what would lose or corrupt data."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from booth.errors import BoothError
from booth.store import Store
from booth.store import backup as backup_module
from booth.store.backup import backup, restore
from booth.store.passwords import check_password, set_password
from tests.conftest import ROOT


def booth(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "booth", *map(str, args)], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)


def jpeg(i: int, size: int = 2000) -> bytes:
    return b"\xff\xd8" + hashlib.sha256(str(i).encode()).digest() * (size // 32) + b"\xff\xd9"


def backup_rows_have_files(folder: Path) -> int:
    """In the backup itself, before any restore (whose sweep would hide a gap): every file
    its rows name is in its photos/; returns how many rows."""
    with contextlib.closing(sqlite3.connect(folder / "booth.sqlite3")) as db:
        rows = db.execute("SELECT filename, thumb_filename FROM captures").fetchall()
    for names in rows:
        for name in filter(None, names):
            assert (folder / "photos" / name).is_file(), name
    return len(rows)


def assert_whole(data_dir: Path) -> dict[str, bytes]:
    """Open the store as the booth does: every row names files that are there, and every
    file is named by a row. Returns each photo's bytes by file name."""
    store = Store(data_dir)
    try:
        assert store.sweep() == 0  # nothing to remove: no file without a row, no row without
        captures = store.captures(limit=100_000)
        photos = {}
        for capture in captures:
            assert capture.path.is_file() and capture.thumb_path.is_file()
            photos[capture.filename] = capture.path.read_bytes()
        on_disk = {p.name for p in (data_dir / "photos").iterdir()}
        assert on_disk == {n for c in captures for n in (c.filename, c.thumb_filename)}
        return photos
    finally:
        store.close()


@pytest.mark.slow  # about 4 s: a station writing while `booth backup` runs four times
def test_backup_while_the_station_captures(tmp_path: Path):
    """A station (its real store, publishing a photo with a thumbnail every 50 ms, far
    faster than the issue's one a second) and a visitor deleting a photo now and then keep
    going while `booth backup` runs four times; each backup restores into a store that
    opens, whose every row has its files, byte for byte the station's."""
    live = tmp_path / "live"
    station = Store(live)
    for i in range(60):  # a morning's photos, so each backup takes a while
        station.publish(jpeg(i, 200_000), thumb_jpeg=jpeg(-i), ttl_seconds=86400)
    stop, written, errors = threading.Event(), [], []

    def capture_every_50_ms() -> None:
        i = 1000
        while not stop.wait(0.05):
            try:
                capture = station.publish(jpeg(i, 200_000), thumb_jpeg=jpeg(-i),
                                          ttl_seconds=86400)
                written.append(capture.filename)
                if i % 4 == 0:  # a visitor deletes an earlier photo
                    station.delete([capture.id - 3])
            except Exception as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
            i += 1

    writer = threading.Thread(target=capture_every_50_ms)
    writer.start()
    try:
        runs = [booth("backup", tmp_path / f"backup-{n}", "--data-dir", live, cwd=tmp_path)
                for n in range(4)]
    finally:
        stop.set()
        writer.join()
        station.close()
    assert not errors
    assert len(written) >= 10, "the station wrote too little during the backups to prove much"
    seen_new = set()
    for n, run in enumerate(runs):
        assert run.returncode == 0, run.stderr
        assert f"to {tmp_path / f'backup-{n}'}" in run.stdout
        assert backup_rows_have_files(tmp_path / f"backup-{n}") >= 45
        restored = tmp_path / f"restored-{n}"
        assert "restored" in restore(tmp_path / f"backup-{n}", restored)
        photos = assert_whole(restored)
        assert len(photos) >= 45
        seen_new |= set(photos) & set(written)
        for name, data in photos.items():  # the station's bytes, where it still has them
            if (live / "photos" / name).exists():
                assert data == (live / "photos" / name).read_bytes()
    assert seen_new, "no backup caught a photo taken while the backups ran"
    assert not list(tmp_path.glob(".tmp-*")), "a temp folder was left beside the backups"


def test_a_photo_deleted_during_the_backup_leaves_its_row_out(tmp_path: Path, monkeypatch):
    """The snapshot has the row, the photo is gone by the time its file is copied (a visitor
    deleted it): the backup drops the row rather than keep a row without its file."""
    store = Store(tmp_path / "live")
    kept = store.publish(jpeg(1), thumb_jpeg=jpeg(-1), ttl_seconds=3600)
    gone = store.publish(jpeg(2), thumb_jpeg=jpeg(-2), ttl_seconds=3600)
    copy_photos = backup_module._copy_photos

    def deleted_after_the_snapshot(*args):
        store.delete([gone.id])
        return copy_photos(*args)

    monkeypatch.setattr(backup_module, "_copy_photos", deleted_after_the_snapshot)
    said = backup(tmp_path / "live", tmp_path / "backup")
    store.close()
    assert "1 capture(s)" in said and "1 deleted meanwhile left out" in said
    restore(tmp_path / "backup", tmp_path / "restored")
    assert set(assert_whole(tmp_path / "restored")) == {kept.filename}


def test_restore_brings_back_the_staff_password_and_every_photo_and_clip(tmp_path: Path):
    store = Store(tmp_path / "live")
    capture = store.publish(jpeg(1), thumb_jpeg=jpeg(-1), ttl_seconds=3600)
    clip = store.publish(b"\x00\x00\x00\x18ftypmp42 a boomerang", kind="clip",
                         poster_jpeg=jpeg(3), ttl_seconds=3600)
    store.record_download(capture.id)
    set_password(store, "correct horse battery")
    store.close()
    backup(tmp_path / "live", tmp_path / "backup")
    restore(tmp_path / "backup", tmp_path / "restored")
    store = Store(tmp_path / "restored")
    try:
        found = store.resolve(capture.token)
        assert found is not None and found.downloads == 1
        assert found.path.read_bytes() == jpeg(1)
        boomerang = store.resolve(clip.token)
        with store.open_file(boomerang).stream as mp4, store.open_photo(boomerang).stream as poster:
            assert (mp4.read(), poster.read()) == (b"\x00\x00\x00\x18ftypmp42 a boomerang", jpeg(3))
        assert check_password(store, "correct horse battery")
    finally:
        store.close()
    backup_dir = tmp_path / "backup"
    assert (backup_dir / "manifest.json").stat().st_mode & 0o077 == 0  # private, as the data
    assert (backup_dir / "booth.sqlite3").stat().st_mode & 0o077 == 0
    assert backup_dir.stat().st_mode & 0o077 == 0


def test_restore_refuses_a_running_booth(tmp_path: Path):
    """A booth (here this test's process) has the database open: restoring under it would
    corrupt it, so the restore refuses, even with --force, in one line."""
    backup_store = Store(tmp_path / "old")
    backup_store.publish(jpeg(1), thumb_jpeg=jpeg(-1), ttl_seconds=3600)
    backup_store.close()
    backup(tmp_path / "old", tmp_path / "backup")
    running = Store(tmp_path / "live")
    try:
        proc = booth("restore", tmp_path / "backup", "--data-dir", tmp_path / "live", "--force",
                     cwd=tmp_path)
    finally:
        running.close()
    assert proc.returncode == 1
    assert proc.stderr.startswith("booth: error: the booth seems to be running on ")
    assert f"{os.getpid()} (" in proc.stderr and "stop it, then restore" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_restore_refuses_data_unless_forced_and_then_leaves_none_of_it(tmp_path: Path):
    old = Store(tmp_path / "old")
    restored_photo = old.publish(jpeg(1), thumb_jpeg=jpeg(-1), ttl_seconds=3600)
    old.close()
    backup(tmp_path / "old", tmp_path / "backup")
    live = Store(tmp_path / "live")
    replaced = live.publish(jpeg(2), thumb_jpeg=jpeg(-2), ttl_seconds=3600)
    live.close()
    with pytest.raises(BoothError, match=r"holds data already \(photos in .*--force"):
        restore(tmp_path / "backup", tmp_path / "live")
    assert (tmp_path / "live" / "photos" / replaced.filename).is_file()  # untouched
    restore(tmp_path / "backup", tmp_path / "live", force=True)
    # The replaced photos are gone with their rows: no photo escapes the purges.
    assert set(assert_whole(tmp_path / "live")) == {restored_photo.filename}


def test_a_damaged_or_foreign_backup_is_refused_before_anything_changes(tmp_path: Path):
    store = Store(tmp_path / "live")
    capture = store.publish(jpeg(1), thumb_jpeg=jpeg(-1), ttl_seconds=3600)
    store.close()
    backup(tmp_path / "live", tmp_path / "backup")
    photo = tmp_path / "backup" / "photos" / capture.filename
    photo.write_bytes(photo.read_bytes()[:-10])  # cut short, as by a full USB stick
    proc = booth("restore", tmp_path / "backup", "--data-dir", tmp_path / "new", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"is damaged: photos/{capture.filename} is missing or differs" in proc.stderr
    assert not (tmp_path / "new").exists()
    proc = booth("restore", tmp_path, "--data-dir", tmp_path / "new", cwd=tmp_path)
    assert proc.returncode == 1 and "is not a booth backup" in proc.stderr
    manifest = tmp_path / "backup" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"photos/{capture.filename}"',
                                                     '"../../etc/cron.d/x"'))
    with pytest.raises(BoothError, match="names a file outside the data folder"):
        restore(tmp_path / "backup", tmp_path / "new")


@pytest.mark.parametrize("cut", [OSError(28, "No space left on device"), SystemExit(0)],
                         ids=["disk-full", "sigterm"])
def test_a_backup_cut_short_leaves_nothing_and_fails(tmp_path: Path, monkeypatch, cut):
    """A full disk, or SIGTERM (which the booth turns into SystemExit(0)): no folder, no temp
    folder, and an error (a nightly script must not take it for a backup)."""
    store = Store(tmp_path / "live")
    store.publish(jpeg(1), thumb_jpeg=jpeg(-1), ttl_seconds=3600)
    store.close()

    def cut_short(*args):
        raise cut

    monkeypatch.setattr(backup_module, "_copy_secrets", cut_short)
    with pytest.raises(BoothError, match="nothing was written to "):
        backup(tmp_path / "live", tmp_path / "out" / "backup")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_restore_cut_short_fails_and_the_next_start_keeps_no_half(tmp_path: Path,
                                                                    monkeypatch):
    """SIGTERM half-way through the photos: an error, no database yet (the booth's next
    start would sweep the photos no row names), and running it again, as the message says,
    restores it all."""
    store = Store(tmp_path / "old")
    for i in range(3):
        store.publish(jpeg(i), thumb_jpeg=jpeg(-i), ttl_seconds=3600)
    store.close()
    backup(tmp_path / "old", tmp_path / "backup")
    put, done = backup_module._put, []

    def stopped_after_two(src, dst):
        if len(done) == 2:
            raise SystemExit(0)
        put(src, dst)
        done.append(dst)

    monkeypatch.setattr(backup_module, "_put", stopped_after_two)
    with pytest.raises(BoothError, match="restore stopped before its end; .* run it again"):
        restore(tmp_path / "backup", tmp_path / "new")
    assert not (tmp_path / "new" / "booth.sqlite3").exists()
    monkeypatch.setattr(backup_module, "_put", put)
    assert "restored 3 capture(s)" in restore(tmp_path / "backup", tmp_path / "new")  # again
    assert len(assert_whole(tmp_path / "new")) == 3


def test_backup_says_what_to_do_without_a_database_or_with_a_taken_folder(tmp_path: Path):
    proc = booth("backup", tmp_path / "b", "--data-dir", tmp_path / "none", cwd=tmp_path)
    assert proc.returncode == 1 and "no booth database in" in proc.stderr
    assert "PostgreSQL and the bucket" in proc.stderr and "Traceback" not in proc.stderr
    Store(tmp_path / "live").close()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(BoothError, match="exists already; give a new folder"):
        backup(tmp_path / "live", tmp_path / "taken")
