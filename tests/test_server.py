"""The web app as it really runs: waitress on loopback, in its own process beside a station
process writing the same data dir; the janitor; and the purge command."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from booth.store import Store
from booth.webapp.server import Janitor
from tests.conftest import ROOT
from tests.test_web_visitor import jpeg, publish

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def booth(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "booth", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=60, env=ENV)


@pytest.fixture
def served(tmp_path: Path):
    """`booth serve` on a free loopback port; yields (base URL, data dir)."""
    data = tmp_path / "data"
    config = tmp_path / "booth.toml"
    config.write_text("[server]\nphoto_requests_per_minute = 100000\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "booth", "serve", "--host", "127.0.0.1", "--port", "0",
         "--data-dir", str(data), "--config", str(config)], stderr=subprocess.PIPE, text=True,
        env=ENV)
    try:
        line = proc.stderr.readline()
        port = re.search(r"serving on http://\S+?:(\d+)", line)
        assert port, line
        yield f"http://127.0.0.1:{port.group(1)}", data
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0  # a clean stop, through its finally blocks
        proc.stderr.close()


def get(url: str, client: int = 1) -> tuple[int, bytes, dict]:
    """GET from loopback source address 127.0.0.<client>: each phone is its own client."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10,
                                      source_address=(f"127.0.0.{client}", 0))
    try:
        conn.request("GET", parts.path)
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def test_serve_starts_without_a_camera_and_serves_a_photo(served):
    base, data = served
    store = Store(data)
    try:
        capture = publish(store)
        status, body, headers = get(f"{base}/p/{capture.token}/download")
        assert status == 200 and body == capture.path.read_bytes()
        # No Server header: waitress's is switched off (Werkzeug's development server would
        # name itself here).
        assert "Server" not in headers and "X-RateLimit-Limit" not in headers
        assert get(f"{base}/p/{'C' * 22}")[0] == 404
    finally:
        store.close()


@pytest.mark.slow
def test_station_and_server_processes_share_a_data_dir_cleanly(served):
    """This process publishes 60 photos while 10 phones (each its own loopback address)
    download theirs, 30 requests each, and now and then delete one, through `booth serve`.
    Bounded by counts, not by time: a stress test, not a benchmark (scripts/load.py
    measures)."""
    base, data = served
    store = Store(data)
    published: list[tuple[str, bytes]] = []
    errors: list[str] = []
    ok = []
    done = threading.Event()

    def station():
        try:
            for i in range(60):
                capture = store.publish(jpeg(i, (640, 480)), ttl_seconds=3600)
                published.append((capture.token, capture.path.read_bytes()))
        finally:
            done.set()

    def phone(n: int):
        deleted = set()
        for k in range(30):
            # Each visitor opens their own photos, and leaves deleted ones alone.
            mine = [p for p in published[n::10] if p[0] not in deleted]
            while not mine and not done.wait(0.01):
                mine = [p for p in published[n::10] if p[0] not in deleted]
            if not mine:
                return
            token, expected = mine[-1 - k % min(3, len(mine))]
            status, body, _ = get(f"{base}/p/{token}/photo.jpg", client=10 + n)
            if status == 200:
                ok.append(token)
                if body != expected:
                    errors.append(f"half-read photo {token}")
            else:
                errors.append(f"{status} for {token}")
            if k % 7 == 6:
                deleted.add(token)
                store.delete([store.resolve(token).id])

    threads = [threading.Thread(target=station)] + [
        threading.Thread(target=phone, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    store.close()
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors[:5]
    assert len(published) == 60 and len(ok) == 300


def test_janitor_purges_expired_photos_file_thumbnail_and_row(tmp_path: Path):
    store = Store(tmp_path / "data")
    old = publish(store, 1, ttl_seconds=60, now=time.time() - 120)
    live = publish(store, 2)
    janitor = Janitor(store, interval=0.05)
    janitor.start()
    deadline = time.time() + 5
    while store.get(old.id) is not None and time.time() < deadline:
        time.sleep(0.05)
    janitor.stop()
    assert store.get(old.id) is None
    assert not old.path.exists() and not old.thumb_path.exists()
    assert store.get(live.id) is not None and live.path.is_file()
    store.close()


def test_purge_command(tmp_path: Path):
    data = tmp_path / "data"
    store = Store(data)
    now = time.time()
    expired = publish(store, 1, ttl_seconds=60, now=now - 3600)
    two_hours = publish(store, 2, now=now - 7200)
    fresh = publish(store, 3)
    store.close()

    r = booth("purge", "--data-dir", data)
    assert r.returncode == 0 and r.stdout.strip() == "deleted 1 expired photos"
    assert not expired.path.exists() and two_hours.path.exists()
    r = booth("purge", "--older-than", "90m", "--data-dir", data)
    assert r.returncode == 0 and "deleted 1" in r.stdout
    assert not two_hours.path.exists() and not two_hours.thumb_path.exists()
    assert fresh.path.exists()
    r = booth("purge", "--all", "--data-dir", data)
    assert r.returncode == 0 and "deleted 1" in r.stdout
    assert sorted(p.name for p in (data / "photos").iterdir()) == []
    bad = booth("purge", "--older-than", "soon", "--data-dir", data)
    assert bad.returncode == 2 and "90m, 24h or 7d" in bad.stderr and "Traceback" not in bad.stderr


def test_passwd_command_stores_only_a_strong_hash(tmp_path: Path):
    from booth.store.passwords import check_password, stored_hash

    data = tmp_path / "data"
    r = booth("passwd", "--stdin", "--data-dir", data, stdin="correct horse battery\n")
    assert r.returncode == 0, r.stderr
    store = Store(data)
    try:
        stored = stored_hash(store)
        assert stored.startswith("$argon2id$") and "correct horse" not in stored
        assert check_password(store, "correct horse battery")
        assert not check_password(store, "correct horse")
    finally:
        store.close()
    short = booth("passwd", "--stdin", "--data-dir", data, stdin="short\n")
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    assert "Traceback" not in short.stderr
