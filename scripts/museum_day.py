"""A simulated day at the museum, to look at the statistics page and /metrics afterwards.

The real station (pipeline, state machine, photo maker, store) runs headless in this process
on the shared video, stepped on an injected clock (booth.clock.ManualClock) through ten
opening hours that end two hours before now: visitors arrive more around 11:00 and 15:00,
press the shutter (some make a boomerang), some pick a language on the screen first; the
camera drops out for three minutes in the afternoon. After each capture the phones do what
phones do, at the clock's time: most download it, a few delete it, some switch the page's
language. At closing time the staff purge every photo. Then the web app beside the station
(one Metrics, as `booth run` has it) serves the statistics page, its CSV and /metrics; the
page is photographed in Chromium (Playwright) for a person to look at.

    python scripts/museum_day.py --out /tmp/day            # 300 captures, about 15 min
    python scripts/museum_day.py --captures 40 --json      # a short run

Writes OUT/statistics.png, OUT/statistics-de.png, OUT/statistics.html, OUT/statistics.csv,
OUT/metrics.txt and prints the day's figures. Exit status 1 if a capture failed or the
page's counts disagree with what was done.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from common import ROOT, VIDEO, add_assets_argument, config_for, missing_media

PASSWORD = "museum-day-2026"
MODNET = ROOT / ".models" / "modnet.onnx"
OPEN_HOURS = 10
# Relative footfall per opening hour (a morning and an afternoon peak).
FOOTFALL = (0.4, 0.8, 1.3, 1.0, 0.7, 0.8, 1.2, 1.1, 0.7, 0.3)
STEP = 1 / 25  # seconds of the clock per station step while a visitor is there (a boomerang
# needs 24 frames a second)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--captures", type=int, default=300, help="visitors (default: 300)")
    ap.add_argument("--out", type=Path, default=None, help="where the pictures and files go "
                    "(default: a new temporary folder)")
    ap.add_argument("--seed", type=int, default=46)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    add_assets_argument(ap)
    return ap.parse_args(argv)


class DayCamera:
    """The looping video as the station's camera, which can drop out (status
    "reconnecting", no new frames) as a USB camera does."""

    def __init__(self, video) -> None:
        self.video, self.down = video, False
        self.name = "day camera"

    @property
    def problem(self) -> str:
        return "the day's camera dropped out" if self.down else ""

    def start(self) -> None:
        self.video.start()

    def advance(self) -> None:
        if not self.down:
            self.video.advance()

    def latest(self):
        return self.video.latest()

    def wait(self, seq: int, seconds: float) -> bool:
        return False

    def status(self) -> str:
        return "reconnecting" if self.down else "ok"

    def close(self) -> None:
        self.video.close()


def arrivals(n: int, start: float, rng: random.Random) -> list[float]:
    """n arrival times over the opening hours, spread by FOOTFALL, sorted, each at least
    20 s after the one before (a visitor at a time)."""
    weights = [w / sum(FOOTFALL) for w in FOOTFALL]
    times = sorted(start + 3600 * (rng.choices(range(OPEN_HOURS), weights)[0] + rng.random())
                   for _ in range(n))
    for i in range(1, n):
        times[i] = max(times[i], times[i - 1] + 20)
    return times


def run(args: argparse.Namespace) -> dict:
    from booth.bench import LoopingVideo
    from booth.clock import ManualClock
    from booth.station.events import PickLanguage
    from booth.station.machine import Machine, State
    from booth.station.outputs import Delivered, Kind, Product
    from booth.store import Store
    from booth.store import counts as c
    from booth.store.counts import CountRecorder
    from booth.store.metrics import Metrics
    from booth.store.passwords import set_password
    from booth.webapp import create_app
    from booth.webapp.server import WebServer
    from booth.wiring import StatusReporter, assemble_station, load_pipeline

    rng = random.Random(args.seed)
    out = args.out or Path(tempfile.mkdtemp(prefix="booth-day-"))
    out.mkdir(parents=True, exist_ok=True)
    now = time.time()
    opening = datetime.fromtimestamp(c.hour_of(now) - (OPEN_HOURS + 2) * 3600)
    clock = ManualClock(wall=opening)
    cfg = config_for(args.assets, out / "cache")
    cfg.station.boomerang = True
    if not os.environ.get("BOOTH_MODNET") and MODNET.is_file():  # the tests' copy
        cfg.models.modnet = str(MODNET)
    store = Store(out / "data")
    set_password(store, PASSWORD)
    metrics = Metrics()
    metrics.recorder = CountRecorder(store)
    store.listeners.append(metrics.store_event)
    published = []

    class DayOutput:
        """The store output at the clock's time (the real one stamps the wall clock)."""

        def deliver(self, product: Product) -> Delivered:
            capture = store.publish(product.file, ttl_seconds=product.retention_hours * 3600,
                                    thumb_jpeg=product.thumb, kind=product.kind.value,
                                    poster_jpeg=product.poster,
                                    now=product.taken_at.timestamp())
            published.append(capture)
            return Delivered(f"http://192.0.2.1/p/{capture.token}",
                             datetime.fromtimestamp(capture.expires_at), capture.short_id)

    camera = DayCamera(LoopingVideo(str(args.assets / VIDEO), cfg.camera.width,
                                    cfg.camera.height))
    pipeline = load_pipeline(cfg, mirror=True)
    station = assemble_station(cfg, pipeline, camera, store, "http://192.0.2.1",
                               machine=Machine(1, 2), clock=clock, out=io.StringIO(),
                               report=StatusReporter(store), metrics=metrics)
    station.maker.outputs = [DayOutput()]
    drop_at = opening.timestamp() + 5 * 3600 + 5 * 60  # 14:05 if the day opens at 09:00
    drop = (drop_at, drop_at + 180)
    done = {"downloads": 0, "deletes": 0, "phone_languages": 0, "station_languages": 0,
            "clips": 0, "failed": 0}
    codes = station.screens.languages.codes

    def wall() -> float:
        return clock.now().timestamp()

    def step() -> None:
        clock.advance(STEP)
        camera.down = drop[0] <= wall() < drop[1]
        camera.advance()
        station.step()

    def until(moment: float) -> None:
        """Idle until `moment`: a step now and then, and one as the camera drops out and
        as it comes back (the station sees it when it steps)."""
        while wall() < moment:
            ahead = [t - wall() for t in drop if t > wall()]
            clock.advance(min(30.0, moment - wall(), *ahead))
            camera.down = drop[0] <= wall() < drop[1]
            camera.advance()
            station.step()

    began = time.monotonic()
    with station:
        camera.start()
        station.step()
        for i, arrival in enumerate(arrivals(args.captures, opening.timestamp(), rng)):
            until(arrival)
            if camera.down:
                until(drop[1] + 1)  # nobody photographs a "reconnecting" screen
            if rng.random() < 0.3:
                pick = PickLanguage(rng.choice(range(1, len(codes) + 1)))
                done["station_languages"] += station.choose_language(pick)
            clip = rng.random() < 0.08 and station.boomerang
            before = len(published)
            station.press(Kind.CLIP if clip else Kind.PHOTO)
            for _ in range(round(120 / STEP)):  # back to attract: done (or given up)
                step()
                if station.machine.state in (State.PROCESSING, State.CAPTURE):
                    time.sleep(0.002)  # the photo is made on the worker, in real time
                if station.machine.state is State.ATTRACT:
                    break
            if len(published) == before:
                done["failed"] += 1
            if len(published) == before:
                continue
            capture = published[-1]
            done["clips"] += capture.kind == "clip"
            later = wall() + rng.uniform(30, 600)  # the phone, a little later
            if rng.random() < 0.72:
                store.record_download(capture.id, now=later)
                done["downloads"] += 1
            if rng.random() < 0.06:
                store.delete([capture.id], now=later + 60)
                done["deletes"] += 1
            if rng.random() < 0.1:
                store.count_event(c.LANGUAGE + rng.choice(codes), when=later)
                done["phone_languages"] += 1
            if (i + 1) % 25 == 0:
                print(f"museum_day: {i + 1}/{args.captures} visitors, "
                      f"{clock.now():%H:%M} on the clock", file=sys.stderr, flush=True)
        until(opening.timestamp() + OPEN_HOURS * 3600)
    seconds = time.monotonic() - began
    metrics.recorder.close()
    purged = store.purge_all()  # closing time: the staff purge every photo
    result = {"visitors": args.captures, "captures": len(published), **done,
              "purged": purged, "opening": f"{opening:%Y-%m-%d %H:%M}",
              "camera_drop": f"{datetime.fromtimestamp(drop[0]):%H:%M}-"
                             f"{datetime.fromtimestamp(drop[1]):%H:%M}",
              "seconds": round(seconds, 1), "out": str(out)}
    result.update(look(create_app(cfg, store, metrics=metrics), WebServer, out))
    store.close()
    camera.close()
    totals: dict[str, int] = {}
    for row in Store(out / "data").hour_counts(0, 2e10):
        totals[row.event] = totals.get(row.event, 0) + row.n
    result["counts"] = totals
    errors = [f"{done['failed']} capture(s) failed"] if done["failed"] else []
    expected = {"capture": len(published), c.DOWNLOAD: done["downloads"],
                c.DELETE: done["deletes"], c.PURGE: purged}
    got = {"capture": sum(n for e, n in totals.items() if e.startswith(c.CAPTURE)),
           **{e: totals.get(e, 0) for e in (c.DOWNLOAD, c.DELETE, c.PURGE)}}
    if got != expected:
        errors.append(f"counts {got} != what was done {expected}")
    result["errors"] = errors
    return result


def look(app, server_class, out: Path) -> dict:
    """The statistics page (English and German screenshots, its HTML), the CSV and /metrics
    from the web app on a loopback port."""
    from playwright.sync_api import sync_playwright

    server = server_class(app, "127.0.0.1", 0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as reply:
            metrics = reply.read().decode()
        (out / "metrics.txt").write_text(metrics)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("BOOTH_CHROMIUM")
                                        or "/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            try:
                for locale, name in (("en-GB", "statistics.png"), ("de-DE", "statistics-de.png")):
                    page = browser.new_page(viewport={"width": 1100, "height": 900},
                                            locale=locale, accept_downloads=True)
                    page.goto(f"{base}/staff")
                    page.fill("#password", PASSWORD)
                    with page.expect_navigation():
                        page.locator("form.login button[type=submit]").click()
                    page.goto(f"{base}/staff/statistics?days=1")
                    page.screenshot(path=str(out / name), full_page=True)
                    if locale == "en-GB":
                        (out / "statistics.html").write_text(page.content())
                        with page.expect_download() as download:
                            page.get_by_text("Download as CSV").click()
                        download.value.save_as(out / "statistics.csv")
                    page.close()
            finally:
                browser.close()
    finally:
        server.close()
    lines = [line for line in metrics.splitlines() if line and not line.startswith("#")
             and "_bucket" not in line]
    return {"metrics": lines}


def table(result: dict) -> list[tuple[str, str]]:
    rows = [(key, str(value)) for key, value in result.items()
            if key not in ("metrics", "counts", "errors")]
    rows += [(f"count {event}", str(n)) for event, n in sorted(result["counts"].items())]
    rows += [("metric", line) for line in result["metrics"]]
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if missing_media("museum_day", args.assets, VIDEO):
        return 2
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for key, value in table(result):
            print(f"{key:28} {value}")
    for error in result["errors"]:
        print(f"museum_day: {error}", file=sys.stderr)
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
