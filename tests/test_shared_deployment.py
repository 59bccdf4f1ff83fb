"""The deployment of issue 12, end to end on real servers: a real `booth run` station and
two `booth serve` processes on one PostgreSQL database and one SeaweedFS bucket, phones
downloading through both; and `booth serve` refusing a shared store it cannot use (one that
answers "no", not one that does not answer) with one clear line. (The figures, under load
and through outages, are `scripts/load.py shared`'s.)"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import asset

ROOT = Path(__file__).resolve().parents[1]
VIDEO = "video/intel_asl_book.mp4"


def _config(path: Path, **sections: dict) -> Path:
    path.write_text("".join(f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n"
                                                     for k, v in values.items())
                            for name, values in sections.items()))
    return path


def _store(pg_url: str, s3_bucket) -> dict:
    return {"database_url": pg_url, "photos_url": f"s3://{s3_bucket.name}/photos",
            "s3_endpoint_url": s3_bucket.endpoint_url}


def _booth(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "booth", *args], text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            **kwargs)


def _serving_port(proc: subprocess.Popen) -> int:
    lines = []
    for line in proc.stderr:  # the first line says where it serves
        lines.append(line)
        found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"booth serve did not start: {''.join(lines)}")


def _get(port: int, path: str, source: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=(source, 0))
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


@contextlib.contextmanager
def _stopped_at_end(procs: list[subprocess.Popen]):
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.mark.slow
def test_two_servers_serve_a_real_stations_photos_from_the_bucket(
        pg_url, s3_bucket, tmp_path) -> None:
    video = asset(VIDEO)
    store = _store(pg_url, s3_bucket)
    procs: list[subprocess.Popen] = []
    with _stopped_at_end(procs):
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            config = _config(tmp_path / f"{name}.toml", store=store)
            procs.append(_booth("serve", "--host", "127.0.0.1", "--port", "0", "--data-dir",
                                str(tmp_path / name), "--config", str(config)))
        ports = [_serving_port(p) for p in procs]
        servers = list(zip("ab", ports, strict=True))
        config = _config(tmp_path / "station.toml", store=store,
                         server={"public_url": f"http://127.0.0.1:{ports[0]}"},
                         station={"countdown_seconds": 1, "result_seconds": 3})
        station = subprocess.run(
            [sys.executable, "-m", "booth", "run", "--headless", "--source", str(video),
             "--auto-capture", "0.5", "--max-captures", "2", "--host", "127.0.0.1",
             "--port", "0", "--data-dir", str(tmp_path / "station"), "--config", str(config)],
            capture_output=True, text=True, timeout=180,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert station.returncode == 0, station.stderr
        # (?until=: the photo's expiry, while it was on its way)
        tokens = re.findall(rf"^http://127\.0\.0\.1:{ports[0]}/p/([\w-]+)(?:\?until=\d+)?$",
                            station.stdout, re.MULTILINE)
        assert len(tokens) == 2
        # A clean exit waited for the uploads: nothing left on the station's disk.
        assert list((tmp_path / "station" / "outbox").iterdir()) == []
        with psycopg.connect(pg_url) as conn:
            rows = dict(conn.execute("SELECT token_hash, filename FROM captures"
                                     " WHERE pending = 0").fetchall())
        for n, token in enumerate(tokens):
            name = rows[hashlib.sha256(token.encode()).hexdigest()]
            jpeg = s3_bucket.client.get_object(Bucket=s3_bucket.name,
                                               Key=f"photos/{name}")["Body"].read()
            assert jpeg[:3] == b"\xff\xd8\xff" and len(jpeg) > 50_000
            for server, port in servers:  # any server, any phone: the bucket's bytes
                source = f"127.0.0.{20 + n}"
                status, page = _get(port, f"/p/{token}", source)
                assert status == 200 and b"on its way" not in page, server
                for route in ("photo.jpg", "download"):
                    assert _get(port, f"/p/{token}/{route}", source) == (200, jpeg), server
        # The servers keep no photo on their own disk.
        assert [p for name in "ab" for p in (tmp_path / name).rglob("*")] == []


def _refused(config: Path, tmp_path: Path) -> str:
    """booth serve's stderr, once it has exited non-zero."""
    proc = _booth("serve", "--host", "127.0.0.1", "--port", "0", "--data-dir",
                  str(tmp_path / "data"), "--config", str(config))
    with _stopped_at_end([proc]):
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode not in (0, None), stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("case", ["unknown role", "no such database", "missing bucket",
                                  "database without bucket"])
def test_serve_refuses_a_shared_store_it_cannot_use(case, pg_url, s3_bucket,
                                                    tmp_path) -> None:
    store = _store(pg_url, s3_bucket)
    # (A database or bucket that does not answer is no reason to refuse: tests/
    # test_offline_start.py. One that answers "no" is.)
    if case == "unknown role":
        store["database_url"] = pg_url.replace("postgres@", "nobody@")
        expected = r"database postgresql://nobody@127\.0\.0\.1:\d+/\w+ refuses this booth "
        expected += r"\(.*role \"nobody\" does not exist\)"
    elif case == "no such database":
        store["database_url"] = pg_url.rsplit("/", 1)[0] + "/nosuchdb"
        expected = r"database .*/nosuchdb refuses this booth \(.*does not exist\)"
    elif case == "missing bucket":
        store["photos_url"] = "s3://no-such-bucket-here/photos"
        expected = r"bucket s3://no-such-bucket-here/photos at http://\S+ cannot be used"
    else:
        del store["photos_url"]
        expected = r"store\.database_url and store\.photos_url go together"
    line = _refused(_config(tmp_path / "booth.toml", store=store), tmp_path)
    assert re.search(expected, line), line
