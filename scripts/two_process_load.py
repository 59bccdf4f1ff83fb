"""Two processes on one data dir: a station taking photos while 20 phones download and delete.

Starts the web app as `booth serve` (its own process), and a station in another process on
the same data dir, looping a shared video headless:

- `--station fast` (default): the real station loop (booth.wiring's parts: Station,
  PhotoMaker, Store, the station's own web server and janitor, its status reports), with a
  countdown and a result screen short enough that it takes a photo about every second;
- `--station run`: the real `booth run --headless --auto-capture 1` with countdown_seconds = 1
  and result_seconds = 3 (a photo about every 5.5 s).

The station prints each photo's link on stdout; its photo is looked up read-only in the
database and read once from disk (files are never rewritten). Then --clients phones, threads
each bound to its own loopback address (127.0.0.10, .11, ...), download the newest photos
(/p/<token>/photo.jpg, /download, the page) over keep-alive connections, and the owner of
every third photo deletes it with the real form (GET the confirmation page, take its
csrf_token, POST it with the session cookie) while others may still be downloading it. A
member of staff, logged in with `booth passwd`'s password, reloads the gallery and opens
thumbnails and photos meanwhile.

    python scripts/two_process_load.py                  # 180 s, 20 phones, a summary
    python scripts/two_process_load.py --seconds 25 --json

Errors: any 5xx; any other unexpected status (a 404 only for a photo whose delete began, a
429 never); a photo body that is not a complete JPEG equal to the file's bytes; a photo
still on disk or still served after its delete; "database is locked", a traceback, a failed
capture or a failed purge in either process's stderr; a process that died. Exit status 1 on
any error, or if the station took fewer photos than a third of what it should. Contacts
loopback only.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

from common import (
    CSRF,
    PLATE,
    ROOT,
    VIDEO,
    Link,
    Photo,
    Proc,
    Shared,
    add_assets_argument,
    check_image,
    finish,
    percentile,
    phone,
    serve,
)

PASSWORD = "load test password"
STDERR_ERRORS = re.compile(r"database is locked|Traceback|unexpected error|capture failed|"
                           r"could not save|purging expired photos failed|malformed|"
                           r"Exception|Error:", re.IGNORECASE)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=180.0,
                    help="how long the phones run (default: 180)")
    ap.add_argument("--clients", type=int, default=20, help="phones at once (default: 20)")
    ap.add_argument("--station", choices=("fast", "run"), default="fast",
                    help="fast: the station loop, a photo about every second (default); "
                         "run: the real `booth run`, a photo about every 5.5 s")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--logs", type=Path, metavar="DIR",
                    help="save each process's stderr in DIR (serve.log, station.log)")
    add_assets_argument(ap)
    # The station process this script starts for --station fast (not for direct use).
    ap.add_argument("--station-process", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not 1 <= args.clients <= 200:
        ap.error("--clients must be between 1 and 200")
    if not args.seconds > 0:
        ap.error("--seconds must be positive")
    return args


# --- the station process (--station fast) -------------------------------------------------


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


# --- the harness -----------------------------------------------------------------------------


def staff(port: int, shared: Shared, stop_at: float) -> None:
    """Reload the gallery, open the newest thumbnails and a photo, about once a second."""
    link = Link(port, "127.0.0.9")
    try:
        status, headers, body, _ = link.request("GET", "/staff")
        cookie = headers.get("set-cookie", "").split(";")[0]
        token = CSRF.search(body.decode()).group(1)
        form = f"csrf_token={quote(token)}&password={quote(PASSWORD)}".encode()
        status, headers, _, _ = link.request(
            "POST", "/staff/login", body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        if status != 303:
            shared.error(f"staff login: HTTP {status}")
            return
        cookie = headers["set-cookie"].split(";")[0]
        while time.monotonic() < stop_at:
            status, _, body, _ = link.request("GET", "/staff", headers={"Cookie": cookie})
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
                    status, headers, data, _ = link.request(
                        "GET", f"/staff/{kind}/{capture_id}.jpg", headers={"Cookie": cookie})
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
    except (OSError, http.client.HTTPException, AttributeError, KeyError) as exc:
        shared.error(f"staff: {type(exc).__name__}: {exc}")


def run(args: argparse.Namespace) -> dict:
    shared = Shared(args.clients)
    with tempfile.TemporaryDirectory(prefix="booth-2proc-") as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        config = tmp / "booth.toml"
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
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)))
        if setup.returncode != 0:
            raise SystemExit(f"two_process_load: booth passwd failed: {setup.stderr}")
        server, port = serve(data, config)
        base_url = f"http://127.0.0.1:{port}"
        db = sqlite3.connect(f"file:{data / 'booth.sqlite3'}?mode=ro", uri=True,
                             check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 5000")
        db_lock = threading.Lock()

        def on_link(line: str) -> None:
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
                                           hashlib.sha256(content).hexdigest(), len(content)))

        if args.station == "fast":
            cmd = [sys.executable, str(Path(__file__).resolve()), "--station-process",
                   "--data-dir", str(data), "--config", str(config), "--base-url", base_url,
                   "--assets", str(args.assets)]
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
                    raise SystemExit("two_process_load: the station took no photo:\n"
                                     + "\n".join(station.stderr[-20:]))
                time.sleep(0.05)
            start = time.monotonic()
            stop_at = start + args.seconds
            threads = [threading.Thread(target=phone, args=(n, [port], shared, stop_at),
                                        daemon=True) for n in range(args.clients)]
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
            station_rc = station.stop()
            server_rc = server.stop()
            db.close()
        captured = len(shared.photos)

    errors = list(shared.errors)
    errors += [f"{name} died during the run" for name, ok in alive.items() if not ok]
    errors += [f"{hung} clients still running at the end"] if hung else []
    logs = {"booth serve": server.stderr, "the station": station.stderr}
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
        for name, lines in logs.items():
            (args.logs / f"{name.split()[-1]}.log").write_text("\n".join(lines) + "\n")
    log_errors = [f"{name}: {line}" for name, lines in logs.items() for line in lines
                  if STDERR_ERRORS.search(line)]
    errors += log_errors
    expected = wall / interval
    if captured < expected / 3:
        errors.append(f"the station took {captured} photos in {wall:.0f} s; expected about "
                      f"{expected:.0f}")
    if shared.downloads == 0 or shared.deletes == 0:
        errors.append(f"{shared.downloads} downloads and {shared.deletes} deletes: no load")
    lat = shared.latencies
    return {
        "seconds": round(wall, 1),
        "clients": args.clients,
        "station": "station loop, a photo about every second" if args.station == "fast"
        else "booth run --headless --auto-capture 1",
        "photos_taken": captured,
        "photos_per_second": round(captured / wall, 2),
        "downloads": shared.downloads,
        "photo_pages": shared.pages,
        "deletes": shared.deletes,
        "expected_404": shared.expected_404,
        "staff_requests": shared.staff_requests,
        "mb_downloaded": round(shared.received / 1e6, 1),
        "latency_ms": {"median": round(statistics.median(lat) * 1000, 1) if lat else None,
                       "p95": round(percentile(lat, 0.95) * 1000, 1) if lat else None,
                       "max": round(max(lat) * 1000, 1) if lat else None},
        "exit_status": {"booth serve": server_rc, "the station": station_rc},
        "errors": len(errors),
        "error_samples": errors[:10],
        "stderr_lines": {name: len(lines) for name, lines in logs.items()},
        "stderr_samples": {name: list(dict.fromkeys(re.sub(r"\d+", "N", line)
                                                    for line in lines))[:5]
                           for name, lines in logs.items()},
    }


def table(result: dict) -> list[tuple[str, str]]:
    lat = result["latency_ms"]
    """The report as rows of a table."""
    return [
        ("run", f"{result['seconds']} s, {result['clients']} phones + 1 staff, "
                f"{result['station']}"),
        ("photos taken", f"{result['photos_taken']} ({result['photos_per_second']}/s)"),
        ("downloads", f"{result['downloads']} ({result['mb_downloaded']} MB), "
                      f"{result['photo_pages']} photo pages, {result['staff_requests']} "
                      "staff requests"),
        ("deletes", f"{result['deletes']} (404s where expected: "
                    f"{result['expected_404']})"),
        ("latency", f"median {lat['median']} ms, p95 {lat['p95']} ms, max {lat['max']} ms"),
        ("exit status", ", ".join(f"{k} {v}" for k, v in result["exit_status"].items())),
        ("errors", str(result["errors"])),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.station_process:
        return station_process(args)
    return finish("two_process_load", args, [PLATE, VIDEO], run, table, "error_samples")


if __name__ == "__main__":
    sys.exit(main())
