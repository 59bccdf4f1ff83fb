"""`booth backup` and `booth restore`: the data dir's store (the SQLite database, secrets/
and photos/) copied while the booth runs, and put back.

The database is copied by SQLite's online backup API in one step: one read transaction, so
one consistent snapshot, which in WAL mode never holds up the station's writes. Then every
file a row of that copy names is copied; a photo deleted since (by its visitor, a purge)
takes its row out of the copy, so every row of a backup has its files. All of it is written
into a temp folder beside DIR, with the manifest (each file's size and SHA-256) last, and
the folder is renamed to DIR at the end: a folder named DIR is a whole backup.

A restore checks the whole backup against its manifest first, refuses while a process has
the database open, and where there is data already unless forced. It writes the photos, then
the secrets, then the database, each file whole: cut short, it leaves photos no row names,
which the store's start-up sweep removes. The store is then opened once: an older backup's
schema is migrated, and the replaced data's photos are swept away.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from booth.errors import BoothError
from booth.store.files import PRIVATE_FILE, TMP_PREFIX, fsync_dir, make_private_dir, reason
from booth.store.schema import PASSWORD_FILE, SCHEMA_VERSION, check_integrity

MANIFEST = "manifest.json"
FORMAT = 1  # of the backup folder, in its manifest
DB = "booth.sqlite3"
PHOTOS, SECRETS = "photos", "secrets"
_CHUNK = 1 << 20


def _copy_file(src: Path, dst: Path | None) -> dict:
    """src to the new file dst (0600, synced; None: only read); src's size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    with contextlib.ExitStack() as stack:
        f_in = stack.enter_context(src.open("rb"))
        f_out = None if dst is None else stack.enter_context(os.fdopen(os.open(
            dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
            PRIVATE_FILE), "wb"))
        while chunk := f_in.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if f_out is not None:
                f_out.write(chunk)
        if f_out is not None:
            f_out.flush()
            os.fsync(f_out.fileno())
    return {"size": size, "sha256": digest.hexdigest()}


def _file_columns(db: sqlite3.Connection) -> list[str]:
    """The captures table's file-name columns, whatever its schema: `filename` (the photo's
    JPEG, a clip's MP4) first, then its thumbnail, raw frame, poster."""
    return sorted((row[1] for row in db.execute("PRAGMA table_info(captures)")
                   if row[1].endswith("filename")), key=lambda name: name != "filename")


def _snapshot(db_path: Path, out: Path) -> int:
    """The live database copied to `out` as one consistent snapshot; its schema version."""
    src = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        src.execute("PRAGMA busy_timeout = 5000")
        version = src.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise BoothError(f"database {db_path} is from a newer selfie-booth (schema "
                             f"{version}); back it up with that version")
        os.close(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        copy = sqlite3.connect(out, isolation_level=None)
        try:
            src.backup(copy)  # all pages in one step: one snapshot
            copy.execute("PRAGMA journal_mode = DELETE")  # the backup is one file
            check_integrity(copy)
        finally:
            copy.close()
    finally:
        src.close()
    return version


def _copy_photos(data_dir: Path, tmp: Path, files: dict[str, dict]) -> tuple[int, int]:
    """Each file the snapshot's rows name; a row whose photo was deleted since leaves the
    copy (a missing extra file, a thumbnail, is forgotten, as the sweep does). Returns how
    many captures the backup holds and how many were left out."""
    make_private_dir(tmp / PHOTOS)
    db = sqlite3.connect(tmp / DB, isolation_level=None)
    try:
        columns = _file_columns(db)
        rows = db.execute(f"SELECT id, {', '.join(columns)} FROM captures").fetchall()
        left_out = 0
        for id_, *names in rows:
            for column, name in zip(columns, names, strict=True):
                if not name:
                    continue
                try:
                    files[f"{PHOTOS}/{name}"] = _copy_file(data_dir / PHOTOS / name,
                                                          tmp / PHOTOS / name)
                except FileNotFoundError:
                    if column == "filename":  # deleted since the snapshot (nothing of it
                        db.execute("DELETE FROM captures WHERE id = ?", (id_,))  # copied yet)
                        left_out += 1
                        break
                    db.execute(f"UPDATE captures SET {column} = NULL WHERE id = ?", (id_,))
        return len(rows) - left_out, left_out
    finally:
        db.close()


def _copy_secrets(data_dir: Path, tmp: Path, files: dict[str, dict]) -> None:
    make_private_dir(tmp / SECRETS)
    folder = data_dir / SECRETS
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        if entry.is_file() and not entry.name.startswith(TMP_PREFIX):
            files[f"{SECRETS}/{entry.name}"] = _copy_file(entry, tmp / SECRETS / entry.name)


def backup(data_dir: Path, dest: Path) -> str:
    """Copy the data dir's store into the new folder `dest`; one line saying what it did."""
    from booth import __version__

    db_path = data_dir / DB
    if not db_path.is_file():
        raise BoothError(f"no booth database in {data_dir}; pass --data-dir (or --config) as "
                         "the booth has it. On the shared store, back up PostgreSQL and the "
                         "bucket instead (docs/season.md)")
    dest = dest.absolute()
    if dest.exists() and not (dest.is_dir() and not any(dest.iterdir())):
        raise BoothError(f"{dest} exists already; give a new folder for the backup")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}backup-", dir=dest.parent))  # 0700
    except OSError as exc:
        raise BoothError(f"cannot write in {dest.parent}: {reason(exc)}; give a folder you "
                         "can write to") from None
    try:
        files: dict[str, dict] = {}
        version = _snapshot(db_path, tmp / DB)
        captures, left_out = _copy_photos(data_dir, tmp, files)
        files[DB] = _copy_file(tmp / DB, None)
        _copy_secrets(data_dir, tmp, files)
        manifest = {"format": FORMAT, "booth": __version__, "schema": version,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime()),
                    "data_dir": str(data_dir.absolute()), "captures": captures,
                    "left_out": left_out, "files": files}
        fd = os.open(tmp / MANIFEST, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        for folder in (tmp / PHOTOS, tmp / SECRETS, tmp):
            fsync_dir(folder)
        if dest.is_dir():
            dest.rmdir()  # the empty folder it was given
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise BoothError(f"backup failed, nothing was written to {dest}: "
                             f"{reason(exc)}") from None
        if isinstance(exc, sqlite3.Error):
            raise BoothError(f"backup failed, nothing was written to {dest}: the database "
                             f"{db_path} cannot be read ({exc})") from None
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):  # Ctrl-C, SIGTERM: not a success
            raise BoothError(f"backup stopped, nothing was written to {dest}") from None
        raise
    size = sum(f["size"] for f in files.values()) / 1e6
    note = f"; {left_out} deleted meanwhile left out" if left_out else ""
    return (f"backed up {captures} capture(s) and {len(files)} file(s), {size:.1f} MB, to "
            f"{dest}{note}")


def _manifest(src: Path) -> dict:
    """The backup's manifest, after every file it lists was checked against it."""
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest["format"] != FORMAT or DB not in files:
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        raise BoothError(f"{src} is not a booth backup (no readable {MANIFEST}); give the "
                         "folder `booth backup` made") from None
    for name, expected in files.items():
        parts = Path(name).parts
        if name != DB and not (len(parts) == 2 and parts[0] in (PHOTOS, SECRETS)
                               and not parts[1].startswith(".")):
            raise BoothError(f"backup {src} names a file outside the data folder ({name!r}); "
                             "nothing was restored")
        try:
            digest = _copy_file(src / name, None)["sha256"]
        except OSError:
            digest = None
        if not isinstance(expected, dict) or digest != expected.get("sha256"):
            raise BoothError(f"backup {src} is damaged: {name} is missing or differs from "
                             "its manifest; nothing was restored; use another backup")
    if manifest.get("schema", 0) > SCHEMA_VERSION:
        raise BoothError(f"backup {src} is from a newer selfie-booth (schema "
                         f"{manifest['schema']}); upgrade this booth first")
    return manifest


def _processes_using(path: Path) -> list[str]:
    """The other processes that hold the database open (a running booth does)."""
    import psutil

    names = {os.path.realpath(f"{path}{end}") for end in ("", "-wal", "-shm")}
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error, OSError):  # gone, or another user's
            if proc.pid != os.getpid() and any(f.path in names for f in proc.open_files()):
                command = " ".join((proc.info["cmdline"] or [])[:3]) or proc.info["name"]
                found.append(f"{proc.pid} ({command})")
    return found


def _existing_data(data_dir: Path) -> str | None:
    """What data the folder holds already (None: nothing a restore would lose). Without a
    database there is none: its photos are swept at the next start anyway (a restore cut
    short leaves just that)."""
    db_path = data_dir / DB
    if not db_path.is_file():
        return None
    photos = data_dir / PHOTOS
    if photos.is_dir() and any(e.is_file() for e in photos.iterdir()):
        return f"photos in {photos}"
    if (data_dir / SECRETS / PASSWORD_FILE).is_file():
        return "a staff password"
    try:
        with contextlib.closing(sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro",
                                                uri=True)) as db:
            if db.execute("SELECT COUNT(*) FROM captures").fetchone()[0]:
                return f"captures in {db_path}"
    except sqlite3.Error:
        return f"a database, {db_path}, that cannot be read"
    return None


def _put(src: Path, dst: Path) -> None:
    """src copied to dst whole: a temp file beside it, then a rename."""
    tmp = dst.with_name(f"{TMP_PREFIX}{dst.name}")
    tmp.unlink(missing_ok=True)
    _copy_file(src, tmp)
    os.replace(tmp, dst)


def restore(src: Path, data_dir: Path, *, force: bool = False) -> str:
    """Put the backup in `src` back into data_dir; one line saying what it did."""
    from booth.store import Store

    src, data_dir = src.absolute(), data_dir.absolute()
    manifest = _manifest(src)
    users = _processes_using(data_dir / DB)
    if users:
        raise BoothError(f"the booth seems to be running on {data_dir} (process "
                         f"{', '.join(users)} has its database open); stop it, then restore")
    existing = _existing_data(data_dir)
    if existing and not force:
        raise BoothError(f"{data_dir} holds data already ({existing}); restore into another "
                         "--data-dir, or add --force to replace it")
    try:
        for folder in (data_dir, data_dir / PHOTOS, data_dir / SECRETS):
            make_private_dir(folder)
        for end in ("", "-wal", "-shm"):  # from here on, the old photos are unreferenced
            Path(f"{data_dir / DB}{end}").unlink(missing_ok=True)
        names = sorted(manifest["files"], key=lambda n: (n == DB, n.startswith(SECRETS)))
        for name in names:  # the photos, the secrets, the database last
            _put(src / name, data_dir / (f"{TMP_PREFIX}restore" if name == DB else name))
        for old in (data_dir / SECRETS).iterdir():
            if f"{SECRETS}/{old.name}" not in manifest["files"]:
                old.unlink()
        fsync_dir(data_dir / PHOTOS)
        fsync_dir(data_dir / SECRETS)
        os.replace(data_dir / f"{TMP_PREFIX}restore", data_dir / DB)
        fsync_dir(data_dir)
    except OSError as exc:
        raise BoothError(f"restore into {data_dir} failed: {reason(exc)}; free space or "
                         "pick another --data-dir, then run it again") from None
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, SIGTERM: the next start sweeps the rest
        raise BoothError(f"restore stopped before its end; {data_dir} holds no database now: "
                         "run it again") from None
    store = Store(data_dir)  # migrated to this booth's schema; the replaced photos swept
    try:
        count = store.count()
    finally:
        store.close()
    return (f"restored {count} capture(s) from {src} (made {manifest.get('created', '?')}) "
            f"into {data_dir}")
