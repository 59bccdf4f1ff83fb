"""`python scripts/load.py shared SCENARIO`: the shared store's targets, measured: stations and
`booth serve` processes on one real PostgreSQL 15 and one SeaweedFS bucket
(devtools/services.py starts both on loopback).

    python scripts/load.py shared load        # 2 stations, 2 servers, 20 phones (--seconds)
    python scripts/load.py shared outage      # the bucket, then the database, down 60 s
    python scripts/load.py shared sigkill     # a station killed mid-upload, 20 rounds
    python scripts/load.py shared purge       # deleted and expired photos: gone when?
    python scripts/load.py shared presigned   # streamed through the app vs presigned GET
    python scripts/load.py shared all --json

Stations are the real `booth run --headless --auto-capture 1` looping the shared video with
countdown_seconds = 1 and result_seconds = 3 (a photo about every 5.5 s), each on a data dir
of its own; their links, printed on stdout, are the photos the scenarios follow. A photo's
exact bytes are taken from the station's outbox as soon as its link is printed (or from the
bucket once it has left the outbox), and every download is compared with them.

load: the phones of devtools/loadclient.py (threads from 127.0.0.10, .11, ...) download the
newest uploaded photos (image, download, page) through both servers at random over
keep-alive connections; the owner of every third photo deletes it with the real form,
after which its row and its objects must be gone. Errors: any 5xx or unexpected status, a
body that is not the photo's bytes, a deleted photo still stored, a traceback in stderr.

outage: one station, one server; a watcher asks every link's page and image every 0.5 s.
The bucket is killed for --down seconds, then the database. Errors: a 404 or 500 (a 503
must carry Retry-After and the on-its-way page), a link that does not serve its exact
photo within 60 s of the service's return, a photo lost at the end.

sigkill: one station on one data dir, started --rounds times and SIGKILLed 0-0.03 s after
a new capture's record appears in its outbox, while its uploader works on it (keep_raw:
three files per photo); then a clean `booth run --max-captures 1`. Errors: a killed
capture or a printed link without exactly one uploaded row, exactly its objects and its
photo's exact bytes; a duplicated row; an orphan object after the sweep.

purge: a station with retention_hours = 0.05 (the minimum: 3 minutes) takes 4 photos; 2
are deleted through the visitor's form; the script polls the database and the bucket until
the rows and objects of all 4 are gone and reports how long after the delete, or after the
expiry time, that was (the janitor of each process runs every 60 s).

presigned: one uploaded photo, downloaded --downloads times each way in alternating
batches of 10: streamed through `booth serve` (/p/<token>/photo.jpg) and straight from
SeaweedFS with a presigned GET (boto3 generate_presigned_url); CPU seconds of `booth serve`
and of SeaweedFS per download (devtools/cpu.py).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from common import PLATE, VIDEO, Proc, machine, serve

from devtools.cpu import cpu_seconds
from devtools.loadclient import (
    FAILURES,
    Link,
    Photo,
    Shared,
    latency_ms,
    phone,
    sha256,
    visitor_delete,
)

SCENARIOS = ("load", "outage", "sigkill", "purge", "presigned")
PREFIX = "photos/"
STDERR_ERRORS = re.compile(r"Traceback|unexpected error|capture failed|could not save|"
                           r"Exception", re.IGNORECASE)
LINK = re.compile(r"https?://[^/\s]+/p/([A-Za-z0-9_-]+)(\?until=\d+)?$")  # until: on its way


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("scenario", choices=(*SCENARIOS, "all"))
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="load: how long the phones run (default: 60)")
    ap.add_argument("--stop-stations", action="store_true",
                    help="load: stop the stations (a clean exit) once they have taken 6 "
                         "photos, before the phones start: the serving path alone")
    ap.add_argument("--down", type=float, default=60.0,
                    help="outage: seconds each service is down (default: 60)")
    ap.add_argument("--rounds", type=int, default=20, help="sigkill: kills (default: 20)")
    ap.add_argument("--kill-within", type=float, default=0.03,
                    help="sigkill: seconds after the new link, at most (default: 0.03, "
                         "about an upload's time here)")
    ap.add_argument("--downloads", type=int, default=200,
                    help="presigned: downloads each way (default: 200)")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- the services and what is in them ---------------------------------------------------


class Deployment:
    """One database and one bucket on the running servers, the config files of the
    processes on them, and direct read access for the checks (never through the app)."""

    def __init__(self, pg, s3, tmp: Path, **settings: str) -> None:
        from devtools.services import s3_client

        self.pg, self.s3, self.tmp = pg, s3, tmp
        self.db_url = pg.new_database()
        self.bucket = s3.new_bucket()
        self.client = s3_client(s3.endpoint_url)
        self.settings = settings
        self.procs: list[Proc] = []

    def config(self, name: str, public_url: str = "", **more: str) -> Path:
        """A booth.toml: the shared store, phones in a tight loop (a high per-phone limit),
        a station taking a photo about every 5.5 s, and `more` ("section.key": value)."""
        values = {"store.database_url": self.db_url,
                  "store.photos_url": f"s3://{self.bucket}/{PREFIX.rstrip('/')}",
                  "store.s3_endpoint_url": self.s3.endpoint_url,
                  "server.public_url": public_url,
                  "server.photo_requests_per_minute": 100000,
                  "station.countdown_seconds": 1, "station.result_seconds": 3,
                  **self.settings, **more}
        sections: dict[str, list[str]] = {}
        for key, value in values.items():
            section, name_ = key.split(".")
            sections.setdefault(section, []).append(f"{name_} = {json.dumps(value)}")
        path = self.tmp / f"{name}.toml"
        path.write_text("".join(f"[{s}]\n" + "\n".join(lines) + "\n"
                                for s, lines in sections.items()))
        return path

    def serve(self, name: str) -> tuple[Proc, int]:
        data = self.tmp / name
        data.mkdir()
        proc, port = serve(data, self.config(name))
        proc.name = name
        self.procs.append(proc)
        return proc, port

    def station(self, name: str, public_url: str, on_link, *extra: str, assets: Path,
                **more) -> Proc:
        data = self.tmp / name
        cmd = [sys.executable, "-m", "booth", "run", "--headless", "--source",
               str(assets / VIDEO), "--auto-capture", "1", "--host", "127.0.0.1",
               "--port", "0", "--data-dir", str(data),
               "--config", str(self.config(name, public_url, **more)), *extra]
        proc = Proc(name, cmd, on_line=on_link)
        self.procs.append(proc)
        return proc

    def rows(self) -> list[tuple]:
        """(token_hash, filename, raw_filename, thumb_filename, pending, expires_at)."""
        import psycopg

        with psycopg.connect(self.db_url, connect_timeout=3) as conn:
            return conn.execute("SELECT token_hash, filename, raw_filename, thumb_filename,"
                                " pending, expires_at FROM captures").fetchall()

    def objects(self) -> dict[str, float]:
        listing = self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {o["Key"][len(PREFIX):]: o["LastModified"].timestamp() for o in listing}

    def read(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=PREFIX + name)["Body"].read()

    def stored(self, token: str) -> str:
        """Where a photo is still found: "" if neither its row nor any object is left."""
        th = token_hash(token)
        left = [r for r in self.rows() if r[0] == th]
        names = {n for r in left for n in r[1:4] if n}
        names |= {n for n in self.objects() if left and n.split(".")[0] in
                  {r[1].split(".")[0] for r in left}}
        return (("in the database " if left else "") + ("in the bucket" if names else "")
                ).strip()

    def store(self, outbox: Path | None = None):
        """The booth's own Store on this database and bucket (a station's with an outbox)."""
        from booth.store import Shared as StoreShared
        from booth.store import Store

        shared = StoreShared(self.db_url, f"s3://{self.bucket}/{PREFIX.rstrip('/')}",
                             self.s3.endpoint_url)
        return Store(outbox, shared=shared, outbox=outbox is not None)

    def stderr_errors(self) -> list[str]:
        return [f"{p.name}: {line}" for p in self.procs for line in p.stderr
                if STDERR_ERRORS.search(line)]

    def stop_all(self, logs: Path | None, scenario: str) -> dict:
        codes = {p.name: p.stop() for p in self.procs}
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            for p in self.procs:
                (logs / f"{scenario}-{p.name}.log").write_text("\n".join(p.stderr) + "\n")
        return codes


@contextlib.contextmanager
def services():
    """PostgreSQL and SeaweedFS on loopback, the S3 credentials in the environment."""
    from devtools.services import S3_ENV, postgres_server, s3_server

    os.environ.update(S3_ENV)
    with postgres_server() as pg, s3_server() as s3:
        yield pg, s3


# --- links printed by stations ----------------------------------------------------------


@dataclass
class Followed:
    token: str
    query: str  # "?until=<expiry>" while the photo was on its way, as its QR code has it
    printed: float  # monotonic
    sha: str = ""  # the photo's bytes, once known
    size: int = 0
    source: str = ""  # "outbox" or "bucket"
    working: list[float] = field(default_factory=list)  # when its image served its bytes


class Links:
    """Every link the stations print, with the photo's exact bytes: read from the station's
    outbox at once (the record names the files), or from the bucket once uploaded."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.lock = threading.Lock()
        self.all: list[Followed] = []
        self.errors: list[str] = []

    def listener(self, data_dir: Path):
        def on_line(line: str) -> None:
            found = LINK.search(line)
            if not found:
                return
            link = Followed(found.group(1), found.group(2) or "", time.monotonic())
            self._from_outbox(link, data_dir / "outbox")
            with self.lock:
                self.all.append(link)
        return on_line

    def _from_outbox(self, link: Followed, outbox: Path) -> None:
        th = token_hash(link.token)
        for record in outbox.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                entry = json.loads(record.read_text())
                if entry["token_hash"] == th:
                    data = (outbox / entry["files"]["photo"]).read_bytes()
                    link.sha, link.size, link.source = sha256(data), len(data), "outbox"
                    return

    def from_bucket(self, link: Followed) -> bool:
        """Whether the photo is uploaded (its row no longer pending); its bytes are read
        from the bucket if its outbox entry had gone already."""
        with contextlib.suppress(Exception):  # not uploaded yet, or a service down
            row = next(r for r in self.deployment.rows()
                       if r[0] == token_hash(link.token) and not r[4])
            if not link.sha:
                data = self.deployment.read(row[1])
                link.sha, link.size, link.source = sha256(data), len(data), "bucket"
            return True
        return False

    def snapshot(self) -> list[Followed]:
        with self.lock:
            return list(self.all)


def wait_for(what: str, condition, timeout: float, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for p in procs:
            if p.proc.poll() is not None:
                raise SystemExit(f"load: {p.name} exited while waiting for {what}:\n"
                                 + "\n".join(p.stderr[-15:]))
        if time.monotonic() > deadline:
            raise SystemExit(f"load: no {what} within {timeout:.0f} s")
        time.sleep(0.1)


def check_photo(link: Link, photo: Followed) -> tuple[int, str]:
    """(status of the image, what was wrong); "" when it served its exact bytes."""
    try:
        status, _, body, _ = link.request("GET", f"/p/{photo.token}/photo.jpg{photo.query}")
    finally:
        link.close()
    if status == 200 and (not photo.sha or sha256(body) != photo.sha):
        return 200, f"{len(body)} bytes that are not the photo's {photo.size}"
    return status, ""


def final_check(deployment: Deployment, links: Links, port: int) -> list[str]:
    """Every printed link: one uploaded row, exactly its objects, its exact bytes served."""
    errors = []
    rows = deployment.rows()
    objects = deployment.objects()
    by_hash: dict[str, list[tuple]] = {}
    for r in rows:
        by_hash.setdefault(r[0], []).append(r)
    for n, link in enumerate(links.snapshot()):
        found = by_hash.get(token_hash(link.token), [])
        if len(found) != 1 or found[0][4]:
            errors.append(f"link {n}: {len(found)} rows, pending {[r[4] for r in found]}")
            continue
        names = {x for x in found[0][1:4] if x}
        mine = {o for o in objects if o.split(".")[0].split("-")[0] ==
                found[0][1].split(".")[0]}
        if mine != names:
            errors.append(f"link {n}: objects {sorted(mine)}, row names {sorted(names)}")
        links.from_bucket(link)
        status, wrong = check_photo(Link(port, "127.0.0.5"), link)
        if status != 200 or wrong:
            errors.append(f"link {n}: HTTP {status} {wrong}")
    return errors


# --- load ---------------------------------------------------------------------------------


def scenario_load(args, pg, s3, tmp: Path) -> dict:
    dep = Deployment(pg, s3, tmp)
    links = Links(dep)
    (_, port_a), (_, port_b) = dep.serve("serve-a"), dep.serve("serve-b")
    shared = Shared(args.phones, still_stored=lambda p: dep.stored(p.token))
    upload_seconds: list[float] = []
    for name, port in (("station-1", port_a), ("station-2", port_b)):
        dep.station(name, f"http://127.0.0.1:{port}", links.listener(tmp / name),
                    assets=args.assets)
    stop = threading.Event()

    def publisher() -> None:
        """A photo joins the phones' list once uploaded (before, its image is a 503)."""
        seen = 0
        while not stop.is_set():
            new = links.snapshot()[seen:]
            for link in new:
                while not links.from_bucket(link) and not stop.is_set():
                    time.sleep(0.05)
                if stop.is_set():
                    return
                upload_seconds.append(time.monotonic() - link.printed)
                with shared.lock:
                    shared.photos.append(Photo(len(shared.photos), link.token, 0, None,
                                               link.sha, link.size))
                seen += 1
            time.sleep(0.05)

    watcher = threading.Thread(target=publisher, daemon=True)
    watcher.start()
    try:
        wait_for("uploaded photo", lambda: shared.photos, 120, dep.procs)
        if args.stop_stations:
            wait_for("6 uploaded photos", lambda: len(shared.photos) >= 6, 120, dep.procs)
            for proc in dep.procs:
                if proc.name.startswith("station"):
                    proc.stop()
        load_before = os.getloadavg()
        start = time.monotonic()
        stop_at = start + args.seconds
        threads = [threading.Thread(target=phone, args=(n, [port_a, port_b], shared, stop_at),
                                    daemon=True) for n in range(args.phones)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.seconds + 120)
        wall = time.monotonic() - start
        load_after = os.getloadavg()
        stop.set()
        watcher.join(timeout=10)
        alive = {p.name: p.proc.poll() is None for p in dep.procs
                 if not (args.stop_stations and p.name.startswith("station"))}
        on_disk = [str(p) for name in ("serve-a", "serve-b") for p in (tmp / name).rglob("*")
                   if p.is_file()]
    finally:
        stop.set()
        codes = dep.stop_all(args.logs, "load")
    errors = list(shared.errors) + dep.stderr_errors()
    errors += [f"{name} died during the run" for name, ok in alive.items() if not ok]
    errors += [f"a server kept files on its disk: {on_disk[:3]}"] if on_disk else []
    lat = latency_ms(shared.latencies)
    if lat["p95"] is None or lat["p95"] > 250:
        errors.append(f"p95 {lat['p95']} ms is over the 250 ms target")
    if shared.downloads == 0 or shared.deletes == 0:
        errors.append(f"{shared.downloads} downloads and {shared.deletes} deletes: no load")
    return {"seconds": round(wall, 1), "phones": args.phones,
            "stations_during_load": "stopped" if args.stop_stations else "capturing",
            "photos_taken": len(links.all), "downloads": shared.downloads,
            "photo_pages": shared.pages, "deletes": shared.deletes,
            "expected_404": shared.expected_404,
            "mb_downloaded": round(shared.received / 1e6, 1), "latency_ms": lat,
            "upload_ms": latency_ms(upload_seconds),
            "delete_to_gone_ms": latency_ms(shared.delete_seconds),
            "load_average": [round(x, 2) for x in (*load_before, *load_after)],
            "exit_status": codes, "errors": errors[:10], "error_count": len(errors)}


# --- outage -------------------------------------------------------------------------------


@dataclass
class Watch:
    """What the watcher saw: per link, when its image served its bytes; every bad answer."""

    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    refused: dict[int, list[float]] = field(default_factory=dict)  # link -> 404/429 times
    errors: list[str] = field(default_factory=list)


def watcher(port: int, links: Links, watch: Watch, stop: threading.Event) -> None:
    """Every 0.5 s, every link's page and image: 200, or a 503 on-its-way page that
    refreshes itself (Retry-After); a 404 or 500 is an error."""
    link_conn = Link(port, "127.0.0.6")
    while not stop.is_set():
        for n, link in enumerate(links.snapshot()):
            for route in ("", "/photo.jpg"):
                try:
                    status, headers, body, _ = link_conn.request(
                        "GET", f"/p/{link.token}{route}{link.query}")
                except FAILURES as exc:
                    watch.errors.append(f"link {n}{route}: {type(exc).__name__}: {exc}")
                    continue
                watch.requests += 1
                refreshes = b'http-equiv="refresh"' in body
                waiting = status == 503 and "retry-after" in headers and refreshes
                key = f"{route or 'page'} {status}{' on its way' if refreshes else ''}"
                watch.statuses[key] = watch.statuses.get(key, 0) + 1
                if status not in (200, 503) or (status == 503 and not waiting):
                    watch.errors.append(f"link {n}{route}: HTTP {status}")
                    if status in (404, 429):
                        watch.refused.setdefault(n, []).append(time.monotonic())
                if route and status == 200:
                    if not link.sha:
                        links.from_bucket(link)
                    if link.sha and sha256(body) == link.sha:
                        link.working.append(time.monotonic())
                    elif link.sha:
                        watch.errors.append(f"link {n}: {len(body)} bytes, not its photo")
        stop.wait(0.5)


def until_all_work(links: Links, since: float, timeout: float) -> float | None:
    """Seconds from `since` until every link known then served its bytes again (None if
    not within timeout)."""
    known = [link for link in links.snapshot() if link.printed <= since]
    deadline = since + timeout
    while time.monotonic() < deadline:
        firsts = [next((t for t in link.working if t >= since), None) for link in known]
        if all(f is not None for f in firsts):
            return max(firsts, default=since) - since
        time.sleep(0.2)
    return None


def scenario_outage(args, pg, s3, tmp: Path) -> dict:
    dep = Deployment(pg, s3, tmp)
    links = Links(dep)
    proc, port = dep.serve("serve")
    station = dep.station("station", f"http://127.0.0.1:{port}", links.listener(tmp / "station"),
                          assets=args.assets)
    watch, stop = Watch(), threading.Event()
    thread = threading.Thread(target=watcher, args=(port, links, watch, stop), daemon=True)
    thread.start()
    phases = []
    try:
        wait_for("2 working links", lambda: sum(bool(x.working) for x in links.snapshot()) >= 2,
                 120, dep.procs)
        for name, service in (("bucket", s3), ("database", pg)):
            before = len(links.all)
            went_down = time.monotonic()
            service.stop()
            time.sleep(args.down)
            during = len(links.all) - before
            restarting = time.monotonic()
            service.start()
            back = time.monotonic()
            took = until_all_work(links, back, 120)
            phases.append({"service": name, "down_s": round(restarting - went_down, 1),
                           "restart_s": round(back - restarting, 1),
                           "links_during_outage": during,
                           "links_known_at_return": sum(x.printed <= back for x in links.all),
                           "all_working_after_s": None if took is None else round(took, 1)})
            if took is None or took > 60:
                watch.errors.append(f"{name}: not every link worked within 60 s of its "
                                    f"return ({took})")
        stop.set()
        thread.join(timeout=30)
        station_rc = station.stop()  # a clean exit: pending uploads first
        lost = final_check(dep, links, port)
    finally:
        stop.set()
        pg.start()
        s3.start()
        codes = dep.stop_all(args.logs, "outage")
    codes["station"] = station_rc
    outbox_left = list((tmp / "station" / "outbox").iterdir())
    errors = watch.errors + lost + dep.stderr_errors()
    errors += [f"{len(outbox_left)} files left in the outbox"] if outbox_left else []
    return {"photos_taken": len(links.all), "lost": len(lost), "phases": phases,
            "watch_requests": watch.requests, "answers": watch.statuses,
            "links_refused": len(watch.refused),
            "refused_window_s": round(max((t[-1] - t[0] for t in watch.refused.values()),
                                          default=0.0), 1),
            "bytes_from": {s: sum(x.source == s for x in links.all) for s in ("outbox", "bucket")},
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "exit_status": codes, "errors": errors[:10], "error_count": len(errors)}


# --- sigkill ------------------------------------------------------------------------------


def kill_when_uploading(station: Proc, outbox: Path, delay: float, killed) -> None:
    """SIGKILL the station `delay` s after a new capture's record appears in its outbox (the
    uploader starts on it at once); killed.record: (token hash, files, photo's SHA-256)."""
    old = {p.name for p in outbox.glob("*.json")} if outbox.is_dir() else set()
    while station.proc.poll() is None:
        new = [p for p in outbox.glob("*.json") if p.name not in old] if outbox.is_dir() else []
        if new:
            killed.record = None
            with contextlib.suppress(OSError, ValueError, KeyError):  # gone already
                record = json.loads(new[0].read_text())
                killed.record = (record["token_hash"], record["files"],
                                 sha256((outbox / record["files"]["photo"]).read_bytes()))
            time.sleep(delay)
            killed.set()
            station.proc.kill()
            return
        time.sleep(0.002)


def where_killed(dep: Deployment, data: Path, th: str) -> str:
    """Which step of the upload the kill cut: from the outbox record, the row, the objects."""
    record = None
    for path in (data / "outbox").glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            entry = json.loads(path.read_text())
            if entry["token_hash"] == th:
                record = entry
    row = next((r for r in dep.rows() if r[0] == th), None)
    if record is None:
        return "after the upload" if row and not row[4] else "before the outbox record"
    if row is None:
        return "before its row"
    present = sum(n in dep.objects() for n in record["files"].values())
    if row[4]:
        return f"row pending, {present}/{len(record['files'])} objects"
    return "row uploaded, outbox entry not removed"


def scenario_sigkill(args, pg, s3, tmp: Path) -> dict:
    from booth.store.sweep import sweep_bucket

    dep = Deployment(pg, s3, tmp)
    links = Links(dep)
    data = tmp / "station"
    rng = random.Random(12)
    outcomes: dict[str, int] = {}
    shown = 0  # rounds whose link was printed before the kill
    records: list[tuple] = []  # the captures being uploaded at each kill
    proc, port = dep.serve("serve")
    try:
        follow = links.listener(data)
        for _ in range(args.rounds):
            killed, printed = threading.Event(), len(links.all)
            station = dep.station("station", f"http://127.0.0.1:{port}", follow,
                                  assets=args.assets, **{"station.keep_raw": True})
            killer = threading.Thread(target=kill_when_uploading, daemon=True, args=(
                station, data / "outbox", rng.uniform(0, args.kill_within), killed))
            killer.start()
            wait_for("a new photo in the outbox", killed.is_set, 120, [station])
            station.proc.wait()
            killer.join()
            # The link is printed once the result screen is drawn: often after the kill.
            shown += len(links.all) > printed
            dep.procs.remove(station)
            if killed.record is None:
                outcomes["record gone before it was read"] = outcomes.get(
                    "record gone before it was read", 0) + 1
                continue
            records.append(killed.record)
            where = where_killed(dep, data, killed.record[0])
            outcomes[where] = outcomes.get(where, 0) + 1
        last = dep.station("station", f"http://127.0.0.1:{port}", links.listener(data),
                           "--max-captures", "1", assets=args.assets,
                           **{"station.keep_raw": True})
        last.proc.wait(timeout=180)
        lost = final_check(dep, links, port)
        rows, objects = dep.rows(), dep.objects()
        for th, files, photo_sha in records:  # killed mid-upload: whole, once, exact
            mine = [r for r in rows if r[0] == th and not r[4]]
            names = set(files.values())
            if (len(mine) != 1 or {n for n in mine[0][1:4] if n} != names
                    or not names <= set(objects)
                    or sha256(dep.read(files["photo"])) != photo_sha):
                lost.append(f"capture {th[:8]} killed mid-upload: {len(mine)} rows, "
                            f"objects {sorted(names & set(objects))}")
        referenced = {n for r in rows for n in r[1:4] if n}
        orphans = set(objects) - referenced
        store = dep.store()
        try:
            swept = sweep_bucket(store.db, store.photo_files, time.time() + 3600)
        finally:
            store.close()
        after = set(dep.objects()) - {n for r in dep.rows() for n in r[1:4] if n}
        hashes = [r[0] for r in rows]
    finally:
        codes = dep.stop_all(args.logs, "sigkill")
    errors = lost + dep.stderr_errors()
    duplicated = len(hashes) - len(set(hashes))
    errors += [f"{duplicated} duplicated rows"] if duplicated else []
    errors += [f"{len(after)} orphan objects after the sweep"] if after else []
    if last.proc.returncode != 0:
        errors.append(f"the last start exited {last.proc.returncode}")
    return {"rounds": args.rounds, "links": len(links.all), "rows": len(rows),
            "objects": len(objects), "killed": outcomes, "lost": len(lost),
            "links_printed_before_kill": shown,
            "duplicated": duplicated, "orphans_before_sweep": len(orphans),
            "swept": swept, "orphans_after_sweep": len(after),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "exit_status": codes, "errors": errors[:10], "error_count": len(errors)}


# --- purge --------------------------------------------------------------------------------


def scenario_purge(args, pg, s3, tmp: Path) -> dict:
    dep = Deployment(pg, s3, tmp, **{"store.retention_hours": 0.05})
    links = Links(dep)
    proc, port = dep.serve("serve")
    errors: list[str] = []
    deleted_s, expired_s = [], []
    try:
        station = dep.station("station", f"http://127.0.0.1:{port}",
                              links.listener(tmp / "station"), "--max-captures", "4",
                              assets=args.assets)
        station.proc.wait(timeout=240)
        for link in links.snapshot():
            links.from_bucket(link)
        rows = {r[0]: r for r in dep.rows()}
        expiry = {x.token: rows[token_hash(x.token)][5] for x in links.all
                  if token_hash(x.token) in rows}
        if len(expiry) != 4:
            errors.append(f"{len(expiry)} of 4 photos in the database before the purges")
        doomed, expiring = links.all[:2], links.all[2:]
        for link in doomed:
            began = time.monotonic()
            deleter = Link(port, "127.0.0.7")
            status, _ = visitor_delete(deleter, link.token)
            deleter.close()
            while dep.stored(link.token) and time.monotonic() - began < 120:
                time.sleep(0.1)
            deleted_s.append(time.monotonic() - began)
            if status != 200 or dep.stored(link.token):
                errors.append(f"delete: HTTP {status}, still {dep.stored(link.token)}")
        pending = {x.token for x in expiring}
        deadline = max(expiry.values(), default=time.time()) + 180
        while pending and time.time() < deadline:
            for token in list(pending):
                if not dep.stored(token):
                    expired_s.append(time.time() - expiry[token])
                    pending.discard(token)
            time.sleep(1.0)
        errors += [f"an expired photo still {dep.stored(t)} 180 s after its expiry"
                   for t in pending]
        left = dep.objects()
    finally:
        codes = dep.stop_all(args.logs, "purge")
    errors += dep.stderr_errors()
    errors += [f"{len(left)} objects left in the bucket"] if left else []
    slow = [s for s in deleted_s + expired_s if s > 120]
    errors += [f"{len(slow)} photos gone only after more than 2 minutes"] if slow else []
    return {"retention_hours": 0.05, "deleted_gone_s": [round(s, 2) for s in deleted_s],
            "expired_gone_after_expiry_s": [round(s, 1) for s in expired_s],
            "exit_status": codes, "errors": errors[:10], "error_count": len(errors)}


# --- presigned ----------------------------------------------------------------------------


def scenario_presigned(args, pg, s3, tmp: Path) -> dict:
    from booth.store.outbox import Uploader

    dep = Deployment(pg, s3, tmp)
    jpeg = (args.assets / PLATE).read_bytes()
    station = dep.store(tmp / "station")
    try:
        capture = station.publish(jpeg, ttl_seconds=3600)
        Uploader(station, station.outbox).upload_all()
    finally:
        station.close()
    proc, port = dep.serve("serve")
    endpoint = urlsplit(s3.endpoint_url)
    timings = {"streamed": [], "presigned": [], "signing": []}
    cpu = {"streamed": {"booth serve": 0.0, "SeaweedFS": 0.0},
           "presigned": {"booth serve": 0.0, "SeaweedFS": 0.0}}
    errors: list[str] = []
    app = Link(port, "127.0.0.8")
    bucket = Link(endpoint.port, "127.0.0.1", host=endpoint.hostname)
    pids = {"booth serve": proc.proc.pid, "SeaweedFS": s3.process.pid}
    load_before = os.getloadavg()
    try:
        for batch in range(2 * args.downloads // 10):
            mode = ("streamed", "presigned")[batch % 2]
            cpu_before = {k: cpu_seconds(p) for k, p in pids.items()}
            for _ in range(10):
                began = time.perf_counter()
                if mode == "streamed":
                    status, _, body, _ = app.request("GET", f"/p/{capture.token}/photo.jpg")
                else:
                    url = dep.client.generate_presigned_url(
                        "get_object", Params={"Bucket": dep.bucket,
                                              "Key": PREFIX + capture.filename},
                        ExpiresIn=60)
                    timings["signing"].append(time.perf_counter() - began)
                    parts = urlsplit(url)
                    status, _, body, _ = bucket.request("GET", f"{parts.path}?{parts.query}")
                timings[mode].append(time.perf_counter() - began)
                if status != 200 or body != jpeg:
                    errors.append(f"{mode}: HTTP {status}, {len(body)} bytes")
            for k, p in pids.items():
                cpu[mode][k] += cpu_seconds(p) - cpu_before[k]
    finally:
        app.close()
        bucket.close()
        codes = dep.stop_all(args.logs, "presigned")
    per = {mode: {k: round(v / args.downloads * 1000, 2) for k, v in c.items()}
           for mode, c in cpu.items()}
    return {"photo_bytes": len(jpeg), "downloads_each": args.downloads,
            "streamed_ms": latency_ms(timings["streamed"]),
            "presigned_ms": latency_ms(timings["presigned"]),
            "signing_ms": latency_ms(timings["signing"]), "cpu_ms_per_download": per,
            "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
            "exit_status": codes, "errors": errors[:10] + dep.stderr_errors(),
            "error_count": len(errors)}


# --- all of them ------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    """The scenarios asked for, each on fresh servers' databases and buckets; one report."""
    os.environ["BOOTH_PLATE"] = str(args.assets / PLATE)
    chosen = SCENARIOS if args.scenario == "all" else (args.scenario,)
    scenarios = {"load": scenario_load, "outage": scenario_outage, "sigkill": scenario_sigkill,
                 "purge": scenario_purge, "presigned": scenario_presigned}
    result = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": machine()}
    errors: list[str] = []
    with services() as (pg, s3):
        for name in chosen:
            with tempfile.TemporaryDirectory(prefix=f"booth-{name}-") as tmp:
                os.environ["BOOTH_CACHE_DIR"] = str(Path(tmp) / "cache")
                result[name] = scenarios[name](args, pg, s3, Path(tmp))
                errors += [f"{name}: {e}" for e in result[name]["errors"]]
    return {**result, "errors": errors}
