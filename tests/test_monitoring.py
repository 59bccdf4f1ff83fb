"""Health and metrics (booth.webapp.health, booth.store.metrics): /healthz, /readyz with the
parts that are down, /metrics only for this machine or the token, what it counts, checked
by Debian's promtool and scraped by a real Prometheus server; the station's own numbers."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from email.message import Message
from pathlib import Path

import cv2
import pytest

from booth.config import Config
from booth.store import Store
from booth.store import counts as c
from booth.store.counts import CountRecorder
from booth.store.metrics import Metrics
from booth.webapp import create_app
from booth.webapp.server import WebServer
from tests.conftest import unavailable

TOKEN = "s3cret-metrics-token-0123"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Message]:
    """(status, body, headers) of a GET over real HTTP, errors included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as reply:
            return reply.status, reply.read().decode("utf-8", "replace"), reply.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace"), exc.headers


def serve(app) -> Iterator[str]:
    server = WebServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.close()


@pytest.fixture
def web(store: Store) -> Iterator[tuple[str, Metrics]]:
    """The app as `booth run` has it (the station's metrics given), on waitress."""
    metrics = Metrics()
    yield from ((base, metrics) for base in serve(create_app(Config(), store,
                                                            metrics=metrics)))


def test_healthz_and_readyz_answer_and_readyz_names_a_camera_that_is_away(web):
    base, metrics = web
    assert get(f"{base}/healthz")[:2] == (200, "ok\n")
    assert get(f"{base}/readyz")[:2] == (200, "ready\n")  # no station in this process yet
    metrics.camera(True)
    assert get(f"{base}/readyz")[:2] == (200, "ready\n")
    metrics.camera(False)
    status, body, headers = get(f"{base}/readyz")
    assert (status, body, headers["Retry-After"]) == (503, "camera: down\n", "5")
    metrics.station_stopped()
    assert get(f"{base}/readyz")[0] == 200  # the station ended: no camera to wait for


def _app(store: Store, **server) -> str:
    cfg = Config()
    for key, value in server.items():
        setattr(cfg.server, key, value)
    return create_app(cfg, store)


def test_metrics_are_for_this_machine_or_the_token_only(store: Store):
    """Behind a trusted proxy the real client counts (without one, waitress drops the
    proxy's headers: the connection's address counts)."""
    far = {"X-Forwarded-For": "203.0.113.7"}
    for base in serve(_app(store, trusted_proxies=1)):
        assert get(f"{base}/metrics")[0] == 200  # loopback, no proxy header
        assert get(f"{base}/metrics", far)[:2] == (403, "metrics are served to this machine "
                                                        "only\n")
        assert get(f"{base}/metrics", {"X-Forwarded-For": "127.0.0.1"})[0] == 200
    for base in serve(_app(store)):
        assert get(f"{base}/metrics", far)[0] == 200
    for base in serve(_app(store, trusted_proxies=1, metrics_token=TOKEN)):
        status, _, headers = get(f"{base}/metrics", far)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        for wrong in (TOKEN[:-1], TOKEN + "x", "", "Basic " + TOKEN):
            assert get(f"{base}/metrics", {**far, "Authorization": f"Bearer {wrong}"})[0] == 401
        assert get(f"{base}/metrics", {**far, "Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert get(f"{base}/metrics", {**far, "Authorization": f"bearer {TOKEN}"})[0] == 200


def test_a_short_metrics_token_is_refused_in_one_line(tmp_path: Path):
    from booth.config import load_config
    from booth.errors import BoothError

    config = tmp_path / "booth.toml"
    config.write_text('[server]\nmetrics_token = "short"\n')
    with pytest.raises(BoothError, match="metrics_token must be at least 16"):
        load_config(config)
    config.write_text(f'[server]\nmetrics_token = "{TOKEN}"\n')
    assert load_config(config).server.metrics_token == TOKEN


def promtool_check(text: str) -> None:
    if shutil.which("promtool") is None:
        unavailable("promtool is missing (apt-get install prometheus; scripts/setup-tests)")
    done = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def value(text: str, series: str) -> float:
    """A sample's value in the text format ("name{labels}" exactly as written)."""
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{series} not in /metrics:\n{text}")


def test_web_events_are_counted_without_tokens_or_addresses_and_promtool_accepts_it(web,
                                                                                   store):
    base, metrics = web
    kept, doomed = (store.publish(b"\xff\xd8 jpeg", ttl_seconds=3600) for _ in range(2))
    assert get(f"{base}/p/{kept.token}/download")[0] == 200
    assert get(f"{base}/p/{kept.token}/download")[0] == 200
    store.delete([doomed.id])
    store.purge_all()
    misses = [get(f"{base}/p/{'x' * 22}")[0] for _ in range(17)]
    assert misses.count(429) == 2  # the misses' limit: 15 a minute
    metrics.captured("photo", 0.8)
    metrics.error("station")
    status, text, headers = get(f"{base}/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    promtool_check(text)
    assert value(text, "booth_downloads_total") == 2
    assert value(text, "booth_deletes_total") == 1
    assert value(text, "booth_purges_total") == 1
    assert value(text, 'booth_rate_limit_refusals_total{scope="photo-miss"}') == 2
    assert value(text, 'booth_captures_total{kind="photo"}') == 1
    assert value(text, "booth_photo_seconds_count") == 1
    assert value(text, 'booth_errors_total{place="station"}') == 1
    assert value(text, "booth_uploads_pending") == 0
    for secret in (kept.token, doomed.token, "127.0.0.1", "x" * 22):
        assert secret not in text
    assert "_created" not in text


def ready_again(base: str) -> None:
    deadline = time.monotonic() + 30  # the pool's reconnect pace: seconds
    while get(f"{base}/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert get(f"{base}/readyz")[:2] == (200, "ready\n")


@pytest.mark.slow  # the bucket's server restarts: about 10 s
def test_readyz_names_the_database_or_the_bucket_that_is_down(shared, pg_server, s3_server):
    """The shared store's database stopped, then its bucket's server: /readyz says which,
    and nothing more; both back: ready again."""
    store = Store(None, shared=shared)
    try:
        for base in serve(create_app(Config(), store)):
            assert get(f"{base}/readyz")[:2] == (200, "ready\n")
            pg_server.stop()
            assert get(f"{base}/readyz")[:2] == (503, "database: down\n")
            assert get(f"{base}/healthz")[0] == 200  # alive all the same
            pg_server.start()
            ready_again(base)
            s3_server.stop()
            assert get(f"{base}/readyz")[:2] == (503, "bucket: down\n")
            s3_server.start()
            ready_again(base)
    finally:
        store.close()


def test_camera_downtime_is_counted_by_the_hour_it_fell_in(store: Store):
    """The station's camera away from 13:59:30 to 14:02:00: one drop-out, 30 s in the 13:00
    hour and 120 s in the 14:00 one, one reconnect; written by the recorder's thread."""
    metrics = Metrics()
    metrics.recorder = CountRecorder(store)
    t = datetime(2026, 12, 3, 13, 59, 30).timestamp()
    metrics.camera(True, t - 60)
    metrics.camera(False, t)
    metrics.camera(False, t + 60)
    metrics.camera(True, t + 150)
    metrics.language("de", t + 200)
    metrics.recorder.close()
    rows = {(datetime.fromtimestamp(r.hour).hour, r.event): r.n
            for r in store.hour_counts(t - 3600, t + 3600)}
    assert rows == {(13, c.CAMERA_DROP): 1, (13, c.CAMERA_DOWN_SECONDS): 30,
                    (14, c.CAMERA_DOWN_SECONDS): 120, (14, c.LANGUAGE + "de"): 1}
    assert metrics.camera_reconnects._value.get() == 1


def test_counts_wait_in_the_recorder_while_the_database_cannot_take_them(
        monkeypatch: pytest.MonkeyPatch):
    """Two writes fail (the store out of reach): the counts are kept, added to what comes
    meanwhile, and written whole once it answers."""
    from booth.errors import StoreUnavailable

    class Flaky:
        fails = 2
        written: list[dict] = []

        def add_counts(self, counts):
            if self.fails:
                self.fails -= 1
                raise StoreUnavailable("database: down")
            self.written.append(counts)

    monkeypatch.setattr(CountRecorder, "RETRY_SECONDS", 0.05)
    flaky = Flaky()
    recorder = CountRecorder(flaky)
    recorder.record(c.CAMERA_DROP, 1, 7200.0)
    recorder.record(c.CAMERA_DROP, 2, 7300.0)
    deadline = time.monotonic() + 10
    while not flaky.written and time.monotonic() < deadline:
        time.sleep(0.02)
    recorder.close()
    assert flaky.fails == 0
    total: dict = {}
    for batch in flaky.written:
        for key, n in batch.items():
            total[key] = total.get(key, 0) + n
    assert total == {(7200, c.CAMERA_DROP): 3}


@pytest.mark.slow
def test_the_stations_own_numbers_and_counts(tmp_path: Path, store: Store):
    """A station in this process (as `booth run` has it) takes two photos on an injected
    clock with its camera lost for a second: /metrics beside it has the captures, the
    reconnect, the frame and photo times (promtool accepts it), and the statistics' counts
    the photos, the drop-out and its second of downtime."""
    from booth.clock import ManualClock
    from booth.station.loop import PhotoMaker, Station
    from booth.station.machine import Machine
    from booth.station.outputs.store import StoreOutput
    from booth.station.renderer import Renderer
    from booth.station.screens import Screens
    from booth.wiring import load_pipeline
    from tests.conftest import asset, plate_config
    from tests.test_station import HandCamera, until_result

    cap = cv2.VideoCapture(str(asset("video/intel_asl_again.mp4")))
    frames = [cap.read()[1] for _ in range(10)]
    cap.release()
    metrics = Metrics()
    metrics.recorder = CountRecorder(store)
    pipeline = load_pipeline(plate_config(), mirror=True)
    screens = Screens(640, 360, pipeline.plate, pipeline.scene, countdown=1)
    clock = ManualClock(wall=datetime.now())
    camera = HandCamera(frames, clock)
    camera.start()
    station = Station(camera, Renderer(pipeline, screens),
                      PhotoMaker(pipeline, screens, [StoreOutput(store, "http://x")],
                                 retention_hours=1, clock=clock),
                      Machine(1, 2), clock=clock, out=io.StringIO(), metrics=metrics)

    def steps(seconds: float, frames: bool = True) -> None:
        for _ in range(round(seconds * 30)):
            clock.advance(1 / 30)
            if frames:
                camera.deliver()
            station.step()

    with station:
        steps(0.5)
        camera.lose()
        steps(1.0, frames=False)
        camera.back()
        for _ in range(2):
            steps(0.5)
            station.press()
            steps(1.5)
            until_result(station, steps)
            steps(2.5)
    assert station.captures == 2
    metrics.recorder.close()
    for base in serve(create_app(Config(), store, metrics=metrics)):
        status, text, _ = get(f"{base}/metrics")
    assert status == 200
    promtool_check(text)
    assert value(text, 'booth_captures_total{kind="photo"}') == 2
    assert value(text, "booth_photo_seconds_count") == 2
    assert value(text, "booth_camera_reconnects_total") == 1
    assert value(text, "booth_camera_up") == 1
    assert value(text, "booth_frame_seconds_count") > 100
    events: dict[str, int] = {}
    for row in store.hour_counts(time.time() - 86400, time.time() + 86400):
        events[row.event] = events.get(row.event, 0) + row.n
    assert events == {c.CAPTURE + "photo": 2, c.CAMERA_DROP: 1, c.CAMERA_DOWN_SECONDS: 1}


@pytest.mark.slow
def test_a_real_prometheus_scrapes_booth_run(tmp_path: Path):
    """`booth run --headless` takes photos on the shared video; a real Prometheus server on
    loopback scrapes its /metrics (from this machine: no token) and answers queries for the
    captures and the camera; the booth then stops cleanly on SIGTERM."""
    from devtools.services import ServiceUnavailable, prometheus_server
    from tests.conftest import ROOT, asset

    config = tmp_path / "booth.toml"
    config.write_text("[station]\ncountdown_seconds = 1\nresult_seconds = 3\n")
    booth = subprocess.Popen(
        [sys.executable, "-m", "booth", "run", "--headless", "--source",
         str(asset("video/intel_asl_book.mp4")), "--config", str(config), "--data-dir",
         str(tmp_path / "data"), "--host", "127.0.0.1", "--port", "0", "--auto-capture", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"))
    lines: list[str] = []
    try:
        port, links = None, 0
        deadline = time.monotonic() + 180
        for line in booth.stdout:  # its log and its printed links, as they come
            lines.append(line)
            if match := re.search(r"web app on http://127\.0\.0\.1:(\d+)", line):
                port = match.group(1)
            links += "/p/" in line
            if (port and links >= 2) or time.monotonic() > deadline:
                break
        assert port and links >= 2, "".join(lines)
        try:
            with prometheus_server([f"127.0.0.1:{port}"]) as prom:
                found: list = []
                while time.monotonic() < deadline and not found:
                    found = prom.query('booth_captures_total{kind="photo"} >= 2')
                    time.sleep(0.5)
                assert found and found[0]["metric"]["job"] == "booth", found
                assert prom.query("booth_camera_up")[0]["value"][1] == "1"
                assert [t["health"] for t in prom.api("targets")["activeTargets"]] == ["up"]
        except ServiceUnavailable as exc:
            unavailable(str(exc))
    finally:
        booth.send_signal(signal.SIGTERM)
        try:
            code = booth.wait(60)
        except subprocess.TimeoutExpired:
            booth.kill()
            code = booth.wait()
        lines.extend(booth.stdout)
    assert code == 0, "".join(lines[-30:])


def test_docs_list_every_metric(web):
    """docs/monitoring.md's table names each metric /metrics has, and no other."""
    base, _ = web
    text = get(f"{base}/metrics")[1]
    served = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    page = (Path(__file__).resolve().parents[1] / "docs" / "monitoring.md").read_text()
    documented = set(re.findall(r"^\| `(booth_[a-z_]+)` \|", page, re.M))
    assert documented == served
