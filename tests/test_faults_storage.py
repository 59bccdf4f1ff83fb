"""Storage faults: the station killed mid-capture, and a data dir that fills up or turns
read-only under a running station.

1. SIGKILL at random moments during many captures (tests/capture_child.py runs the station's
   capture path in a loop): every row's files exist and are whole JPEGs; nothing the row does
   not reference survives the next start-up; no row or file is stored twice.
2. The disk fills (a real tmpfs, or a file size limit where nothing may be mounted) or the
   photos folder turns read-only (a read-only bind mount), before or in the middle of a
   capture: the visitor sees "The photo could not be saved", no QR code, no row and no partial
   file is left, the station keeps running, and once the room is back the next photo is saved
   and its QR code opens it.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from booth.camera.files import VideoFileSource
from booth.station.events import Event, Press, Quit
from booth.station.loop import PhotoMaker, Station
from booth.station.machine import Machine, State
from booth.station.outputs.store import StoreOutput
from booth.station.renderer import Renderer
from booth.station.screens import Screens
from booth.store import TMP_PREFIX, Store
from booth.wiring import load_pipeline
from tests.conftest import PLATE, ROOT, asset, plate_config, read_qr

VIDEO = "video/intel_asl_book.mp4"
CHILD = ROOT / "tests" / "capture_child.py"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform != "linux", reason="SIGKILL, mounts and rlimits "
                                 "as Linux has them")]


def _rows(data: Path) -> list[tuple[int, str, str | None, str]]:
    """(id, filename, thumb_filename, token_hash) of every row, with a connection of our own."""
    db = sqlite3.connect(data / "booth.sqlite3")
    try:
        return db.execute("SELECT id, filename, thumb_filename, token_hash FROM captures"
                          " ORDER BY id").fetchall()
    finally:
        db.close()


def _whole_jpeg(path: Path) -> bool:
    if not path.is_file():
        return False
    data = path.read_bytes()
    return (data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
            and cv2.imread(str(path)) is not None)


def _token_hash(link: str) -> str:
    return hashlib.sha256(link.rsplit("/", 1)[1].encode("ascii")).hexdigest()


# --- 1. SIGKILL --------------------------------------------------------------------------------

ROUNDS = 40
PER_DIR = 3  # rounds on one data dir (a station restarted after each crash), then a fresh one
FRAME_SPAN = 36  # each round's child uses its own frames: no two photos of a dir are alike
# Long enough for a few photos (about 0.2 s each without the matting model, more on a loaded
# machine), so that the check that photos were saved has enough of them.
ANYTIME = 1.2


def _kill_round(data: Path, first_frame: int, aimed: bool, rng: random.Random,
                publish_s: list[float]) -> list[str]:
    """Start the capture loop, SIGKILL it at a random moment; returns its output lines.

    Not aimed: at a random moment of the first ANYTIME s of captures (mostly cutting out,
    compositing and encoding: a publish takes a few ms of the 0.2-0.6 s a photo takes).
    Aimed at Store.publish: a random delay into the k-th publish, up to about as long as a
    publish takes here (measured as the rounds go), so that writes, renames and commits are
    all cut short."""
    # Without the matting model (a path that does not exist: MediaPipe alone, after one
    # warning line): what is killed here is the store's writing, and a photo then takes
    # about 0.2 s rather than 0.6 s, so the rounds take half the time.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BOOTH_MODNET": str(data / "no-model.onnx")}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(data), str(asset(VIDEO)), str(asset(PLATE)),
         str(first_frame)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    watchdog = threading.Timer(90, proc.kill)
    watchdog.start()
    lines: list[str] = []
    try:
        lines.append(proc.stdout.readline().decode().strip())
        if lines[0] == "ready":
            if not aimed:
                time.sleep(rng.uniform(0.0, ANYTIME))
            else:
                k, seen, started = rng.randint(1, 3), 0, 0.0
                while seen < k:
                    line = proc.stdout.readline().decode().strip()
                    lines.append(line)
                    if line == "publishing":
                        seen, started = seen + 1, time.perf_counter()
                    elif line == "published":
                        publish_s.append(time.perf_counter() - started)
                    elif not line.startswith("saved "):
                        break  # done, failed or gone: the checks below say which
                window = float(np.median(publish_s)) if publish_s else 0.01
                time.sleep(rng.uniform(0.0, 1.2 * window))
    finally:
        proc.kill()
        out, err = proc.communicate()
        watchdog.cancel()
    lines = [ln for ln in lines + out.decode().splitlines() if ln]
    assert lines[:1] == ["ready"], err.decode(errors="replace")
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")
    assert not any(ln.startswith(("failed", "done")) for ln in lines), (lines, err.decode())
    return lines


def test_sigkill_at_random_moments_leaves_whole_referenced_photos(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    publish_s: list[float] = []
    checked: dict[str, bytes] = {}  # file name -> its bytes' digest (files are never rewritten)
    tally = {"saved": 0, "tmp debris": 0, "orphan debris": 0, "aimed": 0, "anytime": 0}
    started = time.monotonic()
    for rnd in range(ROUNDS):
        data = tmp_path / f"data{rnd // PER_DIR}"
        known = _rows(data) if (data / "booth.sqlite3").exists() else []
        how = "aimed" if rnd % 2 else "anytime"
        lines = _kill_round(data, (rnd % PER_DIR) * FRAME_SPAN, how == "aimed", rng,
                            publish_s)
        tally[how] += 1
        where = f"seed {seed}, round {rnd} ({how}): {lines}"

        # Right after the kill, before anything sweeps: every committed row is whole.
        rows = _rows(data)
        assert rows[:len(known)] == known, f"rows from earlier rounds changed; {where}"
        names = [r[1] for r in rows] + [r[2] for r in rows]
        assert None not in names, f"a row without its thumbnail; {where}"
        assert len(names) == len(set(names)), f"two rows share a file; {where}"
        for name in names:
            if name not in checked:
                path = data / "photos" / name
                assert _whole_jpeg(path), f"row points at a missing or torn {name}; {where}"
                checked[name] = hashlib.sha256(path.read_bytes()).digest()
        photos = [checked[r[1]] for r in rows]
        assert len(photos) == len(set(photos)), f"one photo stored twice; {where}"
        new = rows[len(known):]
        saved = [ln.split()[1] for ln in lines if ln.startswith("saved ")]
        attempts = lines.count("publishing")
        assert len(saved) <= len(new) <= attempts, \
            f"{len(new)} rows from {attempts} publishes, {len(saved)} shown; {where}"
        hashes = {r[3] for r in new}
        assert all(_token_hash(link) in hashes for link in saved), \
            f"a link shown on screen has no row; {where}"
        tally["saved"] += len(saved)

        # The next start-up sweeps: exactly the rows' files remain, and every row stays.
        before = os.listdir(data / "photos")
        tally["tmp debris"] += any(n.startswith(TMP_PREFIX) for n in before)
        tally["orphan debris"] += any(not n.startswith(TMP_PREFIX) and n not in names
                                      for n in before)
        store = Store(data)
        try:
            assert store.count() == len(rows), where
        finally:
            store.close()
        assert _rows(data) == rows, f"the sweep dropped a whole row; {where}"
        assert sorted(os.listdir(data / "photos")) == sorted(names), \
            f"temp or unreferenced file survived the start-up; {where}"
        assert not [n for n in os.listdir(data) if n.startswith(TMP_PREFIX)], where
        if rnd % PER_DIR == PER_DIR - 1:
            shutil.rmtree(data)
            checked.clear()
    elapsed = time.monotonic() - started
    print(f"\n{ROUNDS} kills in {elapsed:.0f} s, seed {seed}: {tally}; publish takes "
          f"{1000 * float(np.median(publish_s)) if publish_s else float('nan'):.1f} ms here")
    # Not vacuous: photos were saved, and kills landed mid-publish, before and after the
    # rename (a temp file left, or a whole photo whose row was never committed).
    assert tally["saved"] >= ROUNDS // 2, f"seed {seed}: {tally}"
    assert tally["tmp debris"] >= 1 and tally["orphan debris"] >= 1, f"seed {seed}: {tally}"


# --- 2. A full or read-only disk under a running station -------------------------------------

def _free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


class Mounts:
    """Mounts made by one test, undone in reverse at its end (even when it fails)."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def run(self, *args: str) -> None:
        proc = subprocess.run(["mount", *args], capture_output=True, text=True)
        if proc.returncode:
            raise OSError(f"mount {' '.join(args)}: {proc.stderr.strip()}")

    def mount(self, *args: str, point: Path) -> None:
        self.run(*args, str(point))
        self.points.append(point)

    def umount(self, point: Path) -> None:
        subprocess.run(["umount", str(point)], check=True, capture_output=True)
        self.points.remove(point)

    def close(self) -> None:
        for point in reversed(self.points):
            if subprocess.run(["umount", str(point)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(point)], capture_output=True)
        self.points.clear()


@pytest.fixture
def mounts(tmp_path: Path):
    """A place to mount things; skips (saying why) where this process may not mount."""
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount/umount command")
    m = Mounts()
    probe = tmp_path / "mount-probe"
    probe.mkdir()
    try:
        m.mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", point=probe)
    except OSError as exc:
        pytest.skip(f"mounting is not permitted here ({exc}); the file size limit variant "
                    "covers a full disk without mounts")
    try:
        m.umount(probe)
        yield m
    finally:
        m.close()


class Fault:
    """Takes the room to save away (start) and gives it back (stop)."""

    reason = ""  # what the station's log says the problem was

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError


class FullTmpfs(Fault):
    """The data dir is on a small tmpfs; start() fills it with a file, leaving `leave` bytes.
    A file write then fails with ENOSPC; SQLite says "database or disk is full"."""

    def __init__(self, root: Path, leave: int = 0, reason: str = "No space left on device"
                 ) -> None:
        self.filler, self.leave, self.reason = root / "filler", leave, reason

    def start(self) -> None:
        todo = _free_bytes(self.filler.parent) - self.leave
        chunk = b"\0" * (1 << 20)
        with open(self.filler, "ab", buffering=0) as f:
            while todo > 0:
                try:
                    todo -= f.write(chunk[:todo])
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
        assert _free_bytes(self.filler.parent) <= self.leave

    def stop(self) -> None:
        self.filler.unlink(missing_ok=True)


class ReadOnlyPhotos(Fault):
    """The photos folder becomes a read-only bind mount of itself. (The whole data dir cannot
    be remounted read-only under a running station: the kernel refuses while its database is
    open for writing.)"""

    reason = "Read-only file system"

    def __init__(self, mounts: Mounts, photos: Path) -> None:
        self.mounts, self.photos = mounts, photos

    def start(self) -> None:
        self.mounts.mount("--bind", str(self.photos), point=self.photos)
        self.mounts.run("-o", "remount,bind,ro", str(self.photos))

    def stop(self) -> None:
        if self.photos in self.mounts.points:
            self.mounts.umount(self.photos)


class FileSizeLimit(Fault):
    """No mount needed: RLIMIT_FSIZE makes the kernel refuse to grow any file of this process
    past `limit` bytes (EFBIG, "File too large"); the photo is cut off part way, as on a full
    disk. Started and stopped on the main thread (SIGXFSZ must be ignored, or it kills us)."""

    reason = "File too large"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.saved: tuple[int, int] | None = None
        self.handler = None

    def start(self) -> None:
        assert threading.current_thread() is threading.main_thread()
        self.handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self.saved = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, self.saved[1]))

    def stop(self) -> None:
        if self.saved is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, self.saved)
            signal.signal(signal.SIGXFSZ, self.handler)
            self.saved = None


class FaultyStore(Store):
    """The real store. A fault armed for a moment inside publish() starts right then: after
    the photo is written ("after photo": its thumbnail hits the fault) or after both files are
    ("after files": the database commit hits it). Also notes each temp file a failed write
    left behind, so the test knows a partial file really existed."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.armed: tuple[str, Callable[[], None]] | None = None
        self.partial: list[int] = []  # sizes of the temp files cut short by failed writes

    def _write_file(self, data: bytes, name: str, written: list[Path]) -> Path:
        try:
            path = super()._write_file(data, name, written)
        except OSError:
            if written and written[-1].name.startswith(TMP_PREFIX) and written[-1].exists():
                self.partial.append(written[-1].stat().st_size)
            raise
        moment = "after files" if name.endswith("-thumb.jpg") else "after photo"
        if self.armed is not None and self.armed[0] == moment:
            start, self.armed = self.armed[1], None
            start()
        return path


class Visitor:
    """The display, and the visitor in front of it. Three captures: one saved, one made while
    the fault is on, one after the room is back. Presses to leave the result and failed
    screens; records what the screen showed in each state (a few frames per state)."""

    def __init__(self, store: FaultyStore, fault: Fault, moment: str,
                 seconds: float = 30.0) -> None:
        self.store, self.fault, self.moment = store, fault, moment
        self.station: Station | None = None
        self.phase = 0  # 0: before the fault, 1: fault on, 2: room back
        self.shown: list[tuple[int, State, np.ndarray]] = []
        self.before: tuple[int, list[str]] = (-1, [])
        self.during: dict[str, object] = {}
        self.deadline = time.monotonic() + seconds
        self.timed_out = False
        self._events: list[Event] = []
        self._state: State | None = None
        self._since = self._kept = 0.0

    def show(self, screen: np.ndarray) -> None:
        now, state = time.monotonic(), self.station.machine.state
        if state is not self._state:
            self._state, self._since, self._kept = state, now, 0.0
        if now - self._kept >= 0.05:  # keep one frame per 50 ms of each state
            self._kept = now
            self.shown.append((self.phase, state, screen.copy()))
        viewed = now - self._since
        if self.phase == 0 and state is State.RESULT and viewed >= 0.2:
            self.before = (self.store.count(), sorted(os.listdir(self.store.photos)))
            if self.moment == "before capture":
                self.fault.start()
            else:
                self.store.armed = (self.moment, self.fault.start)
            self.phase = 1
            self._events.append(Press())
        elif self.phase == 1 and state is State.RESULT:
            self._events.append(Quit())  # saved despite the fault: the test says so
        elif self.phase == 1 and state is State.FAILED and viewed >= 0.5:
            # While the fault is still on: what the failed capture left.
            self.during = {"count": self.store.count(),
                           "files": sorted(os.listdir(self.store.photos)),
                           "data": sorted(os.listdir(self.store.data_dir))}
            self.fault.stop()
            self.phase = 2
            self._events.append(Press())
        elif self.phase == 2 and state is State.RESULT and viewed >= 0.2:
            self._events.append(Quit())

    def poll(self, wait_ms: int) -> list[Event]:
        time.sleep(wait_ms / 1000)
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return [Quit()]
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def rig():
    pipeline = load_pipeline(plate_config(), mirror=True)
    return pipeline, Screens(1280, 720, pipeline.plate, pipeline.scene, countdown=1)


def _qr(screen: np.ndarray) -> str:
    text = read_qr(screen)
    return text


def _run_with_fault(rig, log: list[str], data: Path, fault: Fault, moment: str,
                    partial: int | None) -> None:
    """One station run: a saved capture, one with the fault on (started `moment`), one after;
    log: the station's log lines (the station_log fixture). partial: the failed capture cut
    a temp file short at this many bytes or more (and must have removed it); None: no file
    write was cut short."""
    pipeline, screens = rig
    store = FaultyStore(data)
    visitor = Visitor(store, fault, moment)
    out = io.StringIO()
    source = VideoFileSource(asset(VIDEO))
    source.start()
    station = Station(source, Renderer(pipeline, screens),
                      PhotoMaker(pipeline, screens, [StoreOutput(store, "http://booth.test")],
                                 retention_hours=1),
                      Machine(countdown_seconds=0.5, result_seconds=30,
                              auto_capture_seconds=0.2),
                      out=out)
    visitor.station = station
    try:
        station.run(visitor)
    finally:
        source.close()
        fault.stop()  # (already stopped unless the run went wrong)
    try:
        _check_run(screens, store, visitor, fault, out.getvalue().split(), log, partial)
    finally:
        store.close()


def _check_run(screens: Screens, store: FaultyStore, visitor: Visitor, fault: Fault,
               links: list[str], log: list[str], partial: int | None) -> None:
    states = {phase: [s for p, s, _ in visitor.shown if p == phase] for phase in (0, 1, 2)}
    assert not visitor.timed_out, f"stuck; states shown: {states}, log: {log}"
    assert State.RESULT not in states[1], f"saved although the disk was {fault.reason}: {log}"
    assert State.FAILED in states[1] and visitor.phase == 2, states
    failures = [m for m in log if m.startswith("capture failed")]
    assert len(failures) == 1, log
    assert failures[0] == f"capture failed: could not save the photo: {fault.reason}"
    assert len(links) == 2, (links, log)  # the first and the last capture, nothing between

    # The failed screen: the panel is exactly the "photo could not be saved" text.
    lay = screens.layout
    failed = screens.base.copy()
    screens.draw(failed, screens.failed_panel)
    panel = (slice(None), slice(lay.panel_x, None))
    for other in (screens.processing_panel, screens.countdown_panel, screens.attract):
        drawn = screens.base.copy()
        screens.draw(drawn, other)
        assert not np.array_equal(drawn[panel], failed[panel])
    failed_screens = [img for p, s, img in visitor.shown if p == 1 and s is State.FAILED]
    assert len(failed_screens) >= 2
    for img in failed_screens:
        assert np.array_equal(img[panel], failed[panel]), "failed panel not shown as drawn"
    # No QR code anywhere while the photo could not be saved (not the last visitor's either):
    # the first frame of each state, and every third after.
    faulty = [(s, img) for p, s, img in visitor.shown if p == 1]
    for i, (state, img) in enumerate(faulty):
        if i % 3 == 0 or faulty[i - 1][0] is not state:
            assert _qr(img) == "", f"a QR code on the {state.value} screen of a lost photo"

    # Nothing of the failed capture stayed: no row, no temp or partial file. Only where the
    # folder turned read-only after the photo was written can that whole photo not be removed
    # yet; it must be gone once the folder is writable again (checked below).
    count, files = visitor.before
    assert visitor.during["count"] == count, "a row for the photo that was not saved"
    left = set(visitor.during["files"]) - set(files)
    stuck = isinstance(fault, ReadOnlyPhotos) and visitor.moment == "after photo"
    assert len(left) == (1 if stuck else 0), f"the failed capture left {left}"
    assert not [n for n in visitor.during["files"] + visitor.during["data"]
                if n.startswith(TMP_PREFIX)], "a temp file outlived the failed capture"
    if partial is None:
        assert store.partial == []
    else:  # the partial file really existed (else "no partial file" would prove nothing)
        assert len(store.partial) == 1 and store.partial[0] >= partial, store.partial

    # Room back: the next capture is saved, shown with a QR code that opens it.
    assert store.count() == count + 1
    capture = store.resolve(links[-1].rsplit("/", 1)[1])
    assert capture is not None, "the link on the screen has no photo"
    assert _whole_jpeg(capture.path) and _whole_jpeg(capture.thumb_path)
    results = [img for p, s, img in visitor.shown if p == 2 and s is State.RESULT]
    assert results and all(_qr(img) == links[-1] for img in results[:3])
    # Every file is a row's; every row's files are whole.
    rows = _rows(store.data_dir)
    names = sorted([r[1] for r in rows] + [r[2] for r in rows])
    assert sorted(os.listdir(store.photos)) == names, "a file no row references"
    assert all(_whole_jpeg(store.photos / n) for n in names)


DISK_CASES = {
    # name: (the fault, given the tmpfs and the mounts; when it starts; partial, as above)
    "full before the capture": (lambda root, m: FullTmpfs(root), "before capture", 0),
    "room for part of the photo": (lambda root, m: FullTmpfs(root, leave=200_000),
                                   "before capture", 100_000),
    "full after the photo, before its thumbnail": (lambda root, m: FullTmpfs(root),
                                                   "after photo", 0),
    "full after the files, before the commit": (
        lambda root, m: FullTmpfs(root, reason="database or disk is full"), "after files",
        None),
    "photos read-only before the capture": (
        lambda root, m: ReadOnlyPhotos(m, root / "data" / "photos"), "before capture", None),
    "photos read-only after the photo": (
        lambda root, m: ReadOnlyPhotos(m, root / "data" / "photos"), "after photo", None),
}


@pytest.mark.parametrize("case", list(DISK_CASES))
def test_disk_full_or_read_only_mid_capture(rig, mounts: Mounts, tmp_path: Path,
                                            case: str, station_log: list[str]) -> None:
    root = tmp_path / "disk"
    root.mkdir()
    mounts.mount("-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", point=root)
    make, moment, partial = DISK_CASES[case]
    _run_with_fault(rig, station_log, root / "data", make(root, mounts), moment, partial)


def test_file_size_limit_mid_photo_without_mounts(rig, tmp_path: Path,
                                                  station_log: list[str]) -> None:
    """Where nothing may be mounted: the kernel cuts the photo's file off at 64 kB."""
    _run_with_fault(rig, station_log, tmp_path / "data", FileSizeLimit(64 * 1024),
                    "before capture", partial=64 * 1024)
