"""Where the photo files live, behind one small interface (booth.store.interface.PhotoFiles):
a folder on this machine (PhotoDir) or an S3-compatible bucket (booth.store.bucket.Bucket)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from booth.store.files import fsync_dir, remove, write_file


@dataclass
class Photo:
    """An open photo: read it from `stream` (closed by whoever reads it)."""

    stream: BinaryIO
    length: int


class PhotoDir:
    """data_dir/photos: complete, synced, private files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, name: str, data: bytes) -> None:
        write_file(self.folder, name, data, [])
        fsync_dir(self.folder)

    def open(self, name: str) -> Photo | None:
        try:
            f = (self.folder / name).open("rb")
        except OSError:  # deleted a moment ago
            return None
        return Photo(f, os.fstat(f.fileno()).st_size)

    def delete(self, name: str) -> bool:
        return remove(self.folder / name)

    def listing(self) -> dict[str, float]:
        names = {}
        for entry in os.scandir(self.folder):
            if not entry.is_dir():
                try:
                    names[entry.name] = entry.stat().st_mtime
                except OSError:  # gone since the scan
                    continue
        return names
