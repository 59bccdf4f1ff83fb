"""Stop `booth run` at random moments, many times over, in each camera state (issue 23, point 6:
"200 SIGTERMs at random moments in each camera state: 200 exits with status 0").

Each run starts `python -m booth run --headless` on a fresh data dir, waits a random time
(uniform from --min-delay to --max-delay seconds after the process was started: start-up
with its imports and model loading, then the running station) and sends SIGTERM; in one
run of four a second signal (SIGINT) follows within 0.5 s, as an impatient technician's
Ctrl-C would. The --min-delay (0.2 s) skips Python's own start: until it runs the booth's
first line (about 15 ms on an idle machine, up to 80 ms under load) a signal kills the
process by the default action (status -15; systemd counts that as a clean stop), nothing
having been started. The states:

    none          no camera: camera index 97, which is not there (the watchdog reopens it)
    reconnecting  a network camera that does not answer (http://127.0.0.1:9/...): reopened
                  through FFmpeg with backoff
    live          the shared video as the camera, taking a photo or a boomerang (at random)
                  every few seconds: stops land in the countdown, the capture and the result
    shared        live, on the shared store (a real PostgreSQL and SeaweedFS, started here):
                  stops land during uploads

A run fails when its status is not 0, stderr holds "terminate called", "Fatal Python error"
or a traceback, it did not end within 60 s of the signal, it had to leave without Python's
finalization (a thread that would not end, booth.station.stops.leave), a temp file is left
in its data dir, or a row is left without its file (data dir: the store's start-up sweep
finds something to remove; shared: a row whose object is not in the bucket, or an object
no row names).

    python scripts/stop_stress.py                          # 200 runs per state, a table
    python scripts/stop_stress.py --runs 10 --states none  # a short look
    python scripts/stop_stress.py --json                   # one JSON object

Exit status 1 if any run failed. --jobs runs that many at once (each booth takes most of a
core while it starts).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from common import PLATE, ROOT, VIDEO, add_assets_argument

STATES = ("none", "reconnecting", "live", "shared")
SOURCES = {"none": "97", "reconnecting": "http://127.0.0.1:9/video.mjpg"}
# The latest signal, seconds after the start: the camera states start in about 3 s on a
# loaded 2-core machine; the capturing ones take a photo or clip only after about 6 s.
MAX_DELAY = {"none": 8.0, "reconnecting": 8.0, "live": 14.0, "shared": 14.0}
SECOND_SIGNAL_SHARE = 0.25
STOP_LIMIT = 60.0  # seconds from the signal to the exit before a run counts as hung
BAD = re.compile(r"terminate called|Fatal Python error|Traceback \(most recent call last\)")
FORCED = "leaving without Python's finalization"


@dataclass
class Run:
    state: str
    delay: float
    second: bool
    status: int | None = None  # None: hung (killed)
    stop_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    moments: list[str] = field(default_factory=list)  # where the stop landed, from the log


class Shared:
    """PostgreSQL and SeaweedFS for the shared state: a fresh database and bucket a run."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        from devtools.services import postgres_server, s3_server

        self.pg = stack.enter_context(postgres_server())
        self.s3 = stack.enter_context(s3_server())
        self.lock = threading.Lock()

    def new(self) -> tuple[str, str, str]:
        with self.lock:
            return (self.pg.new_database(), f"s3://{self.s3.new_bucket()}/photos",
                    self.s3.endpoint_url)


def _config(path: Path, state: str, shared: tuple[str, str, str] | None) -> Path:
    text = "[station]\ncountdown_seconds = 1\nresult_seconds = 3\nboomerang = true\n"
    if shared is not None:
        db, photos, endpoint = shared
        text += (f'[store]\ndatabase_url = "{db}"\nphotos_url = "{photos}"\n'
                 f's3_endpoint_url = "{endpoint}"\nupload_wait_seconds = 2\n')
    path.write_text(text)
    return path


def _command(state: str, assets: Path, config: Path, data: Path) -> list[str]:
    source = SOURCES.get(state, str(assets / VIDEO))
    command = [sys.executable, "-m", "booth", "run", "--headless", "--source", source,
               "--config", str(config), "--data-dir", str(data), "--host", "127.0.0.1",
               "--port", "0"]
    if state in ("live", "shared"):
        kind = "boomerang" if state == "live" and random.random() < 0.5 else "photo"
        command += ["--auto-capture", "0.3", "--capture-kind", kind]
    return command


def _env(assets: Path, cache: Path, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), BOOTH_CACHE_DIR=str(cache), **extra)
    env["BOOTH_PLATE"] = str(assets / PLATE)
    modnet = ROOT / ".models" / "modnet.onnx"
    if modnet.is_file() and "BOOTH_MODNET" not in os.environ:
        env["BOOTH_MODNET"] = str(modnet)
    return env


def one_run(state: str, delays: tuple[float, float], assets: Path, cache: Path,
            shared: Shared | None) -> Run:
    run = Run(state, random.uniform(*delays), random.random() < SECOND_SIGNAL_SHARE)
    work = Path(tempfile.mkdtemp(prefix="stop-stress-"))
    try:
        settings = shared.new() if shared is not None and state == "shared" else None
        extra = shared.s3.env if settings is not None else {}
        config = _config(work / "booth.toml", state, settings)
        proc = subprocess.Popen(_command(state, assets, config, work / "data"),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                env=_env(assets, cache, extra))
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        time.sleep(run.delay)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        if run.second:
            time.sleep(random.uniform(0.0, 0.5))
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        try:
            run.status = proc.wait(timeout=STOP_LIMIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            run.problems.append("hung")
        run.stop_seconds = time.monotonic() - sent
        reader.join(10)
        stderr = "".join(lines)
        run.stderr_tail = stderr[-3000:]
        if run.status not in (0, None):
            run.problems.append(f"status {run.status}")
        if BAD.search(stderr):
            run.problems.append(BAD.search(stderr).group(0))
        if FORCED in stderr:
            run.problems.append("forced exit")
        run.problems += _half_written(work / "data", settings, extra)
        run.moments = _moments(stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return run


def _moments(stderr: str) -> list[str]:
    """Where the stop landed, as the booth's log tells: in the start-up (before the web app
    was up) or in the running station, after its first capture (the station then cycles
    countdown, capture, result; the log does not say which the stop met); photos left to
    upload at the stop."""
    before, _, after = stderr.partition("SIGTERM: stopping")
    moments = ["running" if "web app on http" in before else "start-up"]
    if "saved in" in before:
        moments.append("after a capture")
    if "uploading the last photos" in after or "wait in the outbox" in after:
        moments.append("mid-upload")
    return moments


def _half_written(data: Path, settings: tuple[str, str, str] | None,
                  env: dict[str, str]) -> list[str]:
    """What a stop must never leave: temp files, rows without their files (and files no row
    names)."""
    if not data.exists():
        return []
    problems = [f"temp file {p.relative_to(data)}" for p in data.rglob(".tmp-*")]
    if settings is None:
        if (data / "booth.sqlite3").exists():
            problems += _swept(data)
        return problems
    from booth.store import Shared as SharedSettings
    from booth.store import Store

    with _environ(env):
        store = Store(data, shared=SharedSettings(*settings))
        try:
            rows = store.db.all("SELECT filename, thumb_filename, poster_filename, pending "
                                "FROM captures")
            listing = store.photo_files.listing()
        except Exception as exc:  # a station stopped before it made its tables
            return problems if "captures" in str(exc) else [*problems, f"check failed: {exc}"]
        finally:
            store.close()
    named = set()
    for *names, pending in rows:
        if not pending and names[0] not in listing:
            problems.append("a row whose photo is not in the bucket")
        named.update(n for n in names if n)
    problems += [f"object {name} no row names" for name in listing if name not in named]
    return problems


def _swept(data: Path) -> list[str]:
    """The data dir's store, opened as the next start would: its sweep must find nothing."""
    from booth.store import Store

    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger("booth.store")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        Store(data).close()
    finally:
        logger.removeHandler(handler)
    return [line for line in said if line.startswith("sweep: removed")]


@contextlib.contextmanager
def _environ(changes: dict[str, str]):
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def summary(runs: list[Run]) -> dict:
    stops = [r.stop_seconds for r in runs if r.status is not None]
    return {"runs": len(runs), "exit_0": sum(r.status == 0 for r in runs),
            "clean": sum(not r.problems for r in runs),
            "second_signal": sum(r.second for r in runs),
            "latest_signal_seconds": round(max((r.delay for r in runs), default=0.0), 2),
            "statuses": dict(Counter(str(r.status) for r in runs)),
            "problems": dict(Counter(p for r in runs for p in r.problems)),
            "moments": dict(Counter(m for r in runs for m in r.moments)),
            "stop_seconds_median": round(statistics.median(stops), 2) if stops else None,
            "stop_seconds_max": round(max(stops), 2) if stops else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200, help="runs per state (default 200)")
    ap.add_argument("--states", default=",".join(STATES),
                    help=f"comma-separated, of {', '.join(STATES)} (default: all)")
    ap.add_argument("--min-delay", type=float, default=0.2,
                    help="the earliest moment of the signal, seconds after the start "
                         "(default 0.2)")
    ap.add_argument("--max-delay", type=float,
                    help="the latest moment of the signal, seconds after the start (default: "
                         + ", ".join(f"{k} {v:g}" for k, v in MAX_DELAY.items()) + ")")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    ap.add_argument("--until", metavar="HH:MM", help="start no run after this time (UTC or "
                    "local, as the clock says); the report says how many ran")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    add_assets_argument(ap)
    args = ap.parse_args()
    # Stopped itself (SIGTERM or Ctrl-C): the runs under way end, the servers are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    states = [s for s in args.states.split(",") if s]
    if unknown := set(states) - set(STATES):
        ap.error(f"unknown state(s): {', '.join(sorted(unknown))}")
    if not (args.assets / VIDEO).is_file():
        print(f"stop_stress: the shared video {args.assets / VIDEO} is missing; pass --assets",
              file=sys.stderr)
        return 2
    deadline = _deadline(args.until)
    with contextlib.ExitStack() as stack:
        cache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stop-cache-")))
        shared = Shared(stack) if "shared" in states else None
        results = _runs(states, args, cache, shared, deadline)
    report = {state: summary(runs) for state, runs in results.items()}
    failed = [r for runs in results.values() for r in runs if r.problems]
    if args.json:
        print(json.dumps({"min_delay": args.min_delay, "states": report}, indent=1))
    else:
        print(f"{'state':13} {'runs':>5} {'exit 0':>7} {'clean':>6} {'2nd sig':>7} "
              f"{'stop s (med/max)':>17}  problems; where the stops landed")
        for state, s in report.items():
            print(f"{state:13} {s['runs']:5} {s['exit_0']:7} {s['clean']:6} "
                  f"{s['second_signal']:7} {s['stop_seconds_median']!s:>8}/"
                  f"{s['stop_seconds_max']!s:<8}  {s['problems'] or '-'}; {s['moments']}")
    for run in failed[:5]:
        print(f"\n--- {run.state}, signal at {run.delay:.2f} s: {', '.join(run.problems)}\n"
              f"{run.stderr_tail}", file=sys.stderr)
    return 1 if failed else 0


def _deadline(until: str | None) -> float | None:
    if not until:
        return None
    hours, minutes = (int(part) for part in until.split(":"))
    now = time.localtime()
    target = time.mktime((now.tm_year, now.tm_mon, now.tm_mday, hours, minutes, 0, 0, 0, -1))
    return target if target > time.time() else target + 86400


def _runs(states: list[str], args: argparse.Namespace, cache: Path, shared: Shared | None,
          deadline: float | None) -> dict[str, list[Run]]:
    """--runs of each state, the states taking turns (so a run cut short by --until has as
    many of each)."""
    done: dict[str, list[Run]] = {state: [] for state in states}

    def one(state: str) -> None:
        if deadline is not None and time.time() >= deadline:
            return
        run = one_run(state, (args.min_delay, args.max_delay or MAX_DELAY[state]), args.assets,
                      cache, shared)
        done[state].append(run)
        mark = "ok" if not run.problems else ", ".join(run.problems)
        print(f"{state} {len(done[state])}/{args.runs} at {run.delay:.2f} s: {mark}",
              flush=True, file=sys.stderr if args.json else sys.stdout)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        list(pool.map(one, [state for _ in range(args.runs) for state in states]))
    return done


if __name__ == "__main__":
    sys.exit(main())
