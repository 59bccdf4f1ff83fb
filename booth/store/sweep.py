"""The start-up sweep: every file in photos/ is referenced by a row, so a purge of rows
reaches every photo (a crash can leave a temp file or a published file with no row)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from booth.store.db import Database
from booth.store.files import TMP_PREFIX, remove

# What a live system's sweep leaves alone: another process may be writing it right now.
_GENTLE_TMP_AGE = 600.0
_GENTLE_FILE_AGE = 120.0


def _young(entries: list[os.DirEntry], now: float) -> set[str]:
    young = set()
    for e in entries:
        limit = _GENTLE_TMP_AGE if e.name.startswith(TMP_PREFIX) else _GENTLE_FILE_AGE
        with contextlib.suppress(OSError):
            if now - e.stat().st_mtime < limit:
                young.add(e.name)
    return young


def sweep(db: Database, data_dir: Path, photos: Path, gentle: bool = False) -> int:
    """Delete temp files, files no row references and rows whose photo is missing.

    Returns how many files and rows it removed. Holds the database write lock throughout,
    so a publisher in another process cannot commit a row for a file being deleted.
    gentle: spare files young enough that another process may still be writing them.
    """
    removed = 0
    now = time.time()
    with db.write() as conn:
        rows = conn.execute(
            "SELECT id, filename, raw_filename, thumb_filename FROM captures").fetchall()
        entries = [e for e in os.scandir(photos) if not e.is_dir()]
        present = {e.name for e in entries}
        young = _young(entries, now) if gentle else set()
        referenced = set()
        for id_, filename, raw_name, thumb_name in rows:
            if filename not in present:
                conn.execute("DELETE FROM captures WHERE id = ?", (id_,))
                removed += 1
                continue  # its raw and thumbnail files are now unreferenced
            referenced.add(filename)
            for column, name in (("raw_filename", raw_name), ("thumb_filename", thumb_name)):
                if name is None:
                    continue
                if name in present:
                    referenced.add(name)
                else:
                    conn.execute(f"UPDATE captures SET {column} = NULL WHERE id = ?", (id_,))
                    removed += 1
        for name in present - referenced - young:
            removed += remove(photos / name)
        # The writability probes and secret temp files of a start-up killed at that moment.
        for probe in [*data_dir.glob(TMP_PREFIX + "*"),
                      *(data_dir / "secrets").glob(TMP_PREFIX + "*")]:
            with contextlib.suppress(OSError):  # gone already: another sweep
                if not gentle or now - probe.stat().st_mtime >= _GENTLE_TMP_AGE:
                    removed += remove(probe)
    return removed
