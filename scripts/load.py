"""The web app under phones: one load tool, three modes, one HTTP client (devtools/loadclient.py:
each phone a thread with keep-alive connections from its own loopback address, 127.0.0.10,
.11, ..., so the per-client rate limit sees distinct visitors). Contacts loopback only.

    python scripts/load.py downloads             # 20 phones x 10 downloads of their ~1 MB photo
    python scripts/load.py two-process           # a station and `booth serve` on one data dir
    python scripts/load.py shared SCENARIO       # the shared store: load, outage, sigkill,
                                                 # purge, presigned or all
    python scripts/load.py MODE --json           # one JSON object instead of a table

downloads: `booth serve` (waitress, 8 threads, as in production) on a store holding one
full-size composite per phone (1920x1532 JPEGs of 0.8-1.4 MB made from the shared photos);
each phone downloads its own through /p/<token>/download --rounds times, and every body is
compared with the stored file. Bounded: a request times out after --timeout seconds and none
starts after --max-seconds.

two-process: `booth serve` and a station process on one data dir, the station looping the
shared video headless: with `--station fast` (default) the real station loop with a
countdown and result short enough for a photo about every second; with `--station run` the
real `booth run --headless --auto-capture 1` (countdown 1 s, result 3 s: a photo about every
5.5 s). The station prints each photo's link; the phones download the newest photos (image,
download, page), the owner of every third photo deletes it with the real form while others
may still be downloading it, and a member of staff, logged in, reloads the gallery and opens
thumbnails and photos. Errors: any unexpected status (a 404 only for a photo being deleted);
a body that is not its file's bytes; a photo still on disk or served after its delete;
"database is locked", a traceback or a failed capture in either process's stderr; a process
that died; a station that took under a third of the photos it should.

shared: see scripts/load_shared.py (real PostgreSQL 15 and SeaweedFS, devtools/services.py).

Exit status 1 on any error, 2 if the shared media are missing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import load_shared
from common import (
    PLATE,
    ROOT,
    VIDEO,
    Proc,
    add_assets_argument,
    composites,
    finish,
    machine,
    serve,
)

from devtools.loadclient import (
    FAILURES,
    Link,
    Photo,
    Shared,
    check_image,
    cookie_of,
    latency_ms,
    phone,
    sha256,
)

PEOPLE = ("people/p3m_p_a09f6d7a.jpg", "people/p3m_p_bd6af989.jpg", "people/rembg_girl-1.jpg",
          "people/rembg_girl-2.jpg", "people/rembg_girl-3.jpg", "people/bgm_0001_img.png",
          "people/skimage_astronaut.png")
QUALITIES = (98, 99, 100)  # 0.8-1.4 MB at 1920x1532; the station saves ~0.55 MB (q 90)
PRODUCTION_LIMIT = 60  # [server] photo_requests_per_minute's default
PASSWORD = "load test password"
STDERR_ERRORS = re.compile(r"database is locked|Traceback|unexpected error|capture failed|"
                           r"could not save|purging expired photos failed|malformed|"
                           r"Exception|Error:", re.IGNORECASE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = ap.add_subparsers(dest="mode", required=True, metavar="MODE")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--phones", type=int, default=20, help="phones at once (default: 20)")
    common.add_argument("--json", action="store_true", help="print one JSON object")
    common.add_argument("--logs", type=Path, metavar="DIR",
                        help="save each `booth` process's stderr in DIR")
    add_assets_argument(common)

    dl = modes.add_parser("downloads", parents=[common],
                          help="phones downloading their own photo through `booth serve`")
    dl.add_argument("--rounds", type=int, default=10, help="downloads per phone (default: 10)")
    dl.add_argument("--timeout", type=float, default=30.0,
                    help="seconds one request may take (default: 30)")
    dl.add_argument("--max-seconds", type=float, default=180.0,
                    help="start no request after this many seconds (default: 180)")

    two = modes.add_parser("two-process", parents=[common],
                           help="a station and `booth serve` on one data dir under phones")
    two.add_argument("--seconds", type=float, default=180.0,
                     help="how long the phones run (default: 180)")
    two.add_argument("--station", choices=("fast", "run"), default="fast",
                     help="fast: the station loop, a photo about every second (default); "
                          "run: the real `booth run`, a photo about every 5.5 s")
    # The station process `--station fast` starts (not for direct use).
    two.add_argument("--station-process", action="store_true", help=argparse.SUPPRESS)
    two.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    two.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    two.add_argument("--base-url", help=argparse.SUPPRESS)

    load_shared.add_arguments(modes.add_parser(
        "shared", parents=[common], help="stations and servers on one PostgreSQL and bucket"))
    args = ap.parse_args(argv)
    if not 1 <= args.phones <= 200:
        ap.error("--phones must be between 1 and 200")
    return args


def save_logs(logs: Path | None, procs: list[Proc], prefix: str = "") -> None:
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        for p in procs:
            (logs / f"{prefix}{p.name.split()[-1]}.log").write_text("\n".join(p.stderr) + "\n")


# --- downloads --------------------------------------------------------------------------------


def downloads(args: argparse.Namespace) -> dict:
    from booth.station.photo import encode_jpeg
    from booth.store import Store

    # Production's per-client limit, unless the rounds need more (a phone would hit 429).
    limit = max(PRODUCTION_LIMIT, args.rounds + 5)
    shared, skipped = Shared(args.phones), [0]
    with tempfile.TemporaryDirectory(prefix="booth-downloads-") as tmp:
        tmp = Path(tmp)
        people = [(PEOPLE[i % len(PEOPLE)], (i // len(PEOPLE)) % 2 == 1)
                  for i in range(args.phones)]
        photos = [encode_jpeg(p, QUALITIES[i % len(QUALITIES)]) for i, p in
                  enumerate(composites("load", args.assets, people, tmp / "cache"))]
        store = Store(tmp / "data")
        tokens = [store.publish(photo, ttl_seconds=3600).token for photo in photos]
        store.close()
        (tmp / "booth.toml").write_text(f"[server]\nphoto_requests_per_minute = {limit}\n")
        server, port = serve(tmp / "data", tmp / "booth.toml")
        start = threading.Barrier(args.phones + 1)

        def download(n: int) -> None:
            link = Link(port, f"127.0.0.{10 + n}", timeout=args.timeout)
            start.wait()
            for _ in range(args.rounds):
                if time.monotonic() > stop_at:
                    with shared.lock:
                        skipped[0] += 1
                    continue
                try:
                    status, _, body, seconds = link.request("GET", f"/p/{tokens[n]}/download")
                except FAILURES as exc:
                    shared.error(f"phone {n}: {type(exc).__name__}: {exc}")
                    continue
                with shared.lock:
                    shared.received += len(body)
                    shared.latencies.append(seconds)
                if status != 200 or body != photos[n]:
                    shared.error(f"phone {n}: HTTP {status}, {len(body)} bytes of "
                                 f"{len(photos[n])}")
            link.close()

        try:
            threads = [threading.Thread(target=download, args=(n,), daemon=True)
                       for n in range(args.phones)]
            for t in threads:
                t.start()
            stop_at = time.monotonic() + args.max_seconds
            start.wait()
            began = time.perf_counter()
            for t in threads:
                t.join(timeout=args.max_seconds + args.timeout + 5)
            wall = time.perf_counter() - began
            hung = sum(t.is_alive() for t in threads)
        finally:
            server.stop()
            save_logs(args.logs, [server])
    errors = list(shared.errors)
    errors += [f"{hung} phones still waiting at the end"] if hung else []
    errors += [f"{skipped[0]} downloads not started: --max-seconds was over"] if skipped[0] else []
    sizes = [len(p) for p in photos]
    return {"phones": args.phones, "rounds": args.rounds, "server": "booth serve, 8 threads",
            "rate_limit_per_minute": limit,
            "photo_mb": [round(min(sizes) / 1e6, 2), round(max(sizes) / 1e6, 2)],
            "requests": len(shared.latencies), "latency_ms": latency_ms(shared.latencies),
            "wall_seconds": round(wall, 2),
            "throughput_mb_s": round(shared.received / 1e6 / wall, 1),
            "requests_per_second": round(len(shared.latencies) / wall, 1),
            "machine": machine(), "error_count": len(errors), "errors": errors[:10]}


# --- two-process ------------------------------------------------------------------------------


def station_process(args: argparse.Namespace) -> int:
    """booth.wiring.run_station's station, but with a machine that takes a photo about every
    second: 0.05 s of attract, a 0.25 s countdown, the 0.35 s flash, the photo, 0.25 s of
    result. Everything else is as `booth run --headless` has it."""
    from booth.camera.sources import open_source
    from booth.config import load_config
    from booth.station.display import HeadlessDisplay
    from booth.station.machine import Machine
    from booth.store import Store
    from booth.wiring import StatusReporter, assemble_station, load_pipeline, start_web

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # finally: blocks run
    cfg = load_config(str(args.config))
    cfg.data_dir = str(args.data_dir)
    cfg.server.host, cfg.server.port = "127.0.0.1", 0  # its own web app: loopback only
    store = Store(cfg.data_path())
    frames = web = janitor = None
    try:
        pipeline = load_pipeline(cfg, mirror=cfg.station.mirror)
        frames = open_source(str(args.assets / VIDEO), width=cfg.camera.width,
                             height=cfg.camera.height, fps=cfg.camera.fps,
                             stall_seconds=cfg.camera.stall_seconds)
        frames.start()
        web, janitor = start_web(cfg, store)  # as `booth run`: its own web app and janitor
        station = assemble_station(cfg, pipeline, frames, store, args.base_url,
                                   machine=Machine(0.25, 0.25, 0.05),
                                   report=StatusReporter(store))
        return station.run(HeadlessDisplay())
    finally:
        if web is not None:
            web.close()
            janitor.stop()
        if frames is not None:
            frames.close()
        store.close()


def staff(port: int, shared: Shared, stop_at: float) -> None:
    """Log in, then reload the gallery and open the newest thumbnails and photos, about once
    a second."""
    link = Link(port, "127.0.0.9")
    try:
        _, headers, page, _ = link.request("GET", "/staff")
        status, headers, _, _ = link.post_form("/staff/login", page, cookie_of(headers),
                                               password=PASSWORD)
        if status != 303:
            shared.error(f"staff login: HTTP {status}")
            return
        cookie = {"Cookie": cookie_of(headers)}
        while time.monotonic() < stop_at:
            status, _, body, _ = link.request("GET", "/staff", headers=cookie)
            with shared.lock:
                shared.staff_requests += 1
                by_id = {p.id: p for p in shared.photos}
            if status != 200:
                shared.error(f"staff gallery: HTTP {status}")
                continue
            ids = list(dict.fromkeys(int(i) for i in re.findall(
                r'name="ids" value="(\d+)"', body.decode())))[:4]
            for capture_id in ids:
                for kind in ("thumb", "photo"):
                    status, _, data, _ = link.request(
                        "GET", f"/staff/{kind}/{capture_id}.jpg", headers=cookie)
                    with shared.lock:
                        shared.staff_requests += 1
                        photo = by_id.get(capture_id)
                        gone = photo is None or photo.deleting
                    if status == 200:
                        if kind == "photo" and photo is not None:
                            check_image(shared, photo, data, "staff photo")
                        elif data[:3] != b"\xff\xd8\xff" or data[-2:] != b"\xff\xd9":
                            shared.error(f"staff {kind} {capture_id}: not a complete JPEG")
                    elif not (status == 404 and gone):
                        shared.error(f"staff {kind} {capture_id}: HTTP {status}")
            time.sleep(1.0)
    except FAILURES as exc:
        shared.error(f"staff: {type(exc).__name__}: {exc}")


def two_process(args: argparse.Namespace) -> dict:
    shared = Shared(args.phones)
    with tempfile.TemporaryDirectory(prefix="booth-2proc-") as tmp:
        tmp = Path(tmp)
        data, config = tmp / "data", tmp / "booth.toml"
        os.environ["BOOTH_CACHE_DIR"] = str(tmp / "cache")
        os.environ["BOOTH_PLATE"] = str(args.assets / PLATE)

        def write_config(public_url: str = "") -> None:
            config.write_text(
                "[server]\nphoto_requests_per_minute = 100000\n"  # phones in a tight loop
                f'public_url = "{public_url}"\n'
                "[station]\ncountdown_seconds = 1\nresult_seconds = 3\n")

        write_config()
        setup = subprocess.run([sys.executable, "-m", "booth", "passwd", "--stdin",
                                "--data-dir", str(data)], input=PASSWORD + "\n",
                               capture_output=True, text=True, timeout=60, cwd=ROOT,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)))
        if setup.returncode != 0:
            raise SystemExit(f"load: booth passwd failed: {setup.stderr}")
        server, port = serve(data, config)
        base_url = f"http://127.0.0.1:{port}"
        db = sqlite3.connect(f"file:{data / 'booth.sqlite3'}?mode=ro", uri=True,
                             check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 5000")
        db_lock = threading.Lock()

        def on_link(line: str) -> None:
            """A printed link: its photo looked up read-only, its file read once."""
            found = re.fullmatch(re.escape(base_url) + r"/p/([A-Za-z0-9_-]+)", line)
            if not found:
                shared.error(f"station printed {line[:80]!r}, not a link to `booth serve`")
                return
            token = found.group(1)
            try:
                with db_lock:
                    row = db.execute("SELECT id, filename FROM captures WHERE token_hash = ?",
                                     (hashlib.sha256(token.encode()).hexdigest(),)).fetchone()
                if row is None:
                    raise LookupError("no row for a printed link")
                path = data / "photos" / row[1]
                content = path.read_bytes()
            except (sqlite3.Error, OSError, LookupError) as exc:
                shared.error(f"looking up a new photo: {type(exc).__name__}: {exc}")
                return
            with shared.lock:
                shared.photos.append(Photo(len(shared.photos), token, row[0], path,
                                           sha256(content), len(content)))

        if args.station == "fast":
            cmd = [sys.executable, str(Path(__file__).resolve()), "two-process",
                   "--station-process", "--data-dir", str(data), "--config", str(config),
                   "--base-url", base_url, "--assets", str(args.assets)]
            interval = 1.0
        else:
            write_config(base_url)
            cmd = [sys.executable, "-m", "booth", "run", "--headless", "--source",
                   str(args.assets / VIDEO), "--auto-capture", "1", "--host", "127.0.0.1",
                   "--port", "0", "--data-dir", str(data), "--config", str(config)]
            interval = 5.5
        station = Proc("the station", cmd, on_line=on_link)
        began = time.monotonic()
        try:
            while not shared.photos:  # the first photo: the phones start with it
                if station.proc.poll() is not None or time.monotonic() - began > 90:
                    raise SystemExit("load: the station took no photo:\n"
                                     + "\n".join(station.stderr[-20:]))
                time.sleep(0.05)
            start = time.monotonic()
            stop_at = start + args.seconds
            threads = [threading.Thread(target=phone, args=(n, [port], shared, stop_at),
                                        daemon=True) for n in range(args.phones)]
            threads.append(threading.Thread(target=staff, args=(port, shared, stop_at),
                                            daemon=True))
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.seconds + 120)
            wall = time.monotonic() - start
            hung = sum(t.is_alive() for t in threads)
            alive = {"booth serve": server.proc.poll() is None,
                     "the station": station.proc.poll() is None}
        finally:
            codes = {"the station": station.stop(), "booth serve": server.stop()}
            db.close()
        captured = len(shared.photos)

    procs = [server, station]
    save_logs(args.logs, procs)
    errors = list(shared.errors)
    errors += [f"{name} died during the run" for name, ok in alive.items() if not ok]
    errors += [f"{hung} clients still running at the end"] if hung else []
    errors += [f"{p.name}: {line}" for p in procs for line in p.stderr
               if STDERR_ERRORS.search(line)]
    expected = wall / interval
    if captured < expected / 3:
        errors.append(f"the station took {captured} photos in {wall:.0f} s; expected about "
                      f"{expected:.0f}")
    if shared.downloads == 0 or shared.deletes == 0:
        errors.append(f"{shared.downloads} downloads and {shared.deletes} deletes: no load")
    return {"seconds": round(wall, 1), "phones": args.phones,
            "station": "station loop, a photo about every second" if args.station == "fast"
            else "booth run --headless --auto-capture 1",
            "photos_taken": captured, "photos_per_second": round(captured / wall, 2),
            "downloads": shared.downloads, "photo_pages": shared.pages,
            "deletes": shared.deletes, "expected_404": shared.expected_404,
            "staff_requests": shared.staff_requests,
            "mb_downloaded": round(shared.received / 1e6, 1),
            "latency_ms": latency_ms(shared.latencies), "exit_status": codes,
            "stderr_lines": {p.name: len(p.stderr) for p in procs},
            "machine": machine(), "error_count": len(errors), "errors": errors[:10]}


def table(result: dict) -> list[tuple[str, str]]:
    """Any mode's report as rows of a table: one per figure."""
    def rows(prefix: str, values: dict):
        for key, value in values.items():
            if isinstance(value, dict) and prefix == "":
                yield from rows(f"{key}.", value)
            elif key != "errors":
                yield f"{prefix}{key}", str(value)
    return list(rows("", result))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if getattr(args, "station_process", False):
        return station_process(args)
    run = {"downloads": downloads, "two-process": two_process,
           "shared": load_shared.run}[args.mode]
    media = [PLATE, *PEOPLE] if args.mode == "downloads" else [PLATE, VIDEO]
    return finish("load", args, media, run, table, "errors")


if __name__ == "__main__":
    sys.exit(main())
