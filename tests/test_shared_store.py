"""The shared store on real servers: PostgreSQL 15 for the rows, SeaweedFS's S3 gateway for
the photos, a station's outbox between them. Every check reads the real thing back: a row
in PostgreSQL, an object in the bucket, a page or a photo's bytes from the web app."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from booth.errors import StoreUnavailable
from booth.store import Store
from booth.store.outbox import Uploader
from booth.store.sweep import sweep_bucket

ROOT = Path(__file__).resolve().parents[1]
JPEG = b"\xff\xd8" + bytes(range(256)) * 40 + b"\xff\xd9"


@pytest.fixture
def station(shared, tmp_path):
    store = Store(tmp_path / "station", shared=shared, outbox=True)
    yield store
    store.close()


@pytest.fixture
def server(shared):
    """A `booth serve` process's store: no data dir at all."""
    store = Store(None, shared=shared)
    yield store
    store.close()


def _uploader(station: Store) -> Uploader:
    """The station's uploader, driven by the test itself (no thread of its own)."""
    return Uploader(station, station.outbox)


def _once_back(action, seconds: float = 60.0):
    """action() once a restarted server answers again (the issue's bound: 60 s)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _objects(s3_bucket) -> dict[str, bytes]:
    listing = s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name).get("Contents", [])
    return {o["Key"]: s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=o["Key"])
            ["Body"].read() for o in listing}


def _rows(pg_url) -> list[tuple]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute("SELECT token_hash, filename, thumb_filename, pending "
                            "FROM captures ORDER BY id").fetchall()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_a_photo_is_on_its_way_then_any_server_serves_it(station, server, s3_bucket,
                                                         pg_url, make_app) -> None:
    capture = station.publish(JPEG, ttl_seconds=3600, thumb_jpeg=b"\xff\xd8thumb\xff\xd9")
    assert capture.pending and capture.token
    web = make_app(store=server).test_client()
    # Not yet in the database: the link is unknown, like any other.
    assert web.get(f"/p/{capture.token}").status_code == 404

    entry, = station.outbox.entries()
    _uploader(station).register(entry)
    page = web.get(f"/p/{capture.token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "on its way" in html
    assert re.search(r'<meta http-equiv="refresh" content="\d+">', html)
    assert web.get(f"/p/{capture.token}/photo.jpg").status_code == 503

    _uploader(station).upload_all()
    assert station.outbox.entries() == [] and list(station.outbox.folder.iterdir()) == []
    assert _rows(pg_url) == [(_hash(capture.token), capture.filename,
                              capture.thumb_filename, 0)]
    assert _objects(s3_bucket) == {f"booth/{capture.filename}": JPEG,
                                   f"booth/{capture.thumb_filename}": b"\xff\xd8thumb\xff\xd9"}
    page = web.get(f"/p/{capture.token}")
    assert page.status_code == 200 and "on its way" not in page.get_data(as_text=True)
    photo = web.get(f"/p/{capture.token}/download")
    assert photo.status_code == 200 and photo.data == JPEG
    assert photo.headers["Content-Length"] == str(len(JPEG))
    assert "attachment" in photo.headers["Content-Disposition"]


def test_delete_and_expiry_remove_object_and_row(station, server, s3_bucket, pg_url,
                                                 make_app) -> None:
    now = time.time()
    keep = station.publish(JPEG, ttl_seconds=3600, now=now)
    doomed = station.publish(JPEG, ttl_seconds=3600, thumb_jpeg=b"t", now=now)
    expiring = station.publish(JPEG, ttl_seconds=60, raw_jpeg=b"r", now=now)
    _uploader(station).upload_all()
    assert len(_objects(s3_bucket)) == 5

    assert server.delete([server.resolve(doomed.token).id]) == 1
    assert server.purge_expired(now=now + 61) == 1
    assert _rows(pg_url) == [(_hash(keep.token), keep.filename, None, 0)]
    assert list(_objects(s3_bucket)) == [f"booth/{keep.filename}"]
    web = make_app(store=server).test_client()
    assert web.get(f"/p/{doomed.token}").status_code == 404
    assert web.get(f"/p/{expiring.token}").status_code == 404
    assert web.get(f"/p/{keep.token}/photo.jpg").data == JPEG
    assert server.purge_all() == 1 and _objects(s3_bucket) == {} and _rows(pg_url) == []


def test_a_photo_deleted_while_on_its_way_leaves_the_bucket(station, server,
                                                            s3_bucket) -> None:
    capture = station.publish(JPEG, ttl_seconds=3600)
    entry, = station.outbox.entries()
    _uploader(station).register(entry)
    assert server.purge_all() == 1  # staff purge while the photo is still on its way
    _uploader(station).upload_all()
    assert _objects(s3_bucket) == {} and server.resolve(capture.token) is None


@pytest.mark.slow
def test_the_bucket_down_keeps_photos_in_the_outbox_until_it_returns(
        station, server, s3_server, s3_bucket, make_app) -> None:
    uploader = _uploader(station)
    web = make_app(store=server).test_client()
    s3_server.stop()
    try:
        captures = [station.publish(JPEG, ttl_seconds=3600) for _ in range(3)]
        with pytest.raises(StoreUnavailable):
            uploader.upload_all()
        # The database is up: each link is known and says the photo is on its way.
        for capture in captures:
            page = web.get(f"/p/{capture.token}")
            assert page.status_code == 200 and "on its way" in page.get_data(as_text=True)
        assert len(station.outbox.entries()) == 3
    finally:
        s3_server.start()
    _once_back(uploader.upload_all)
    for capture in captures:
        assert web.get(f"/p/{capture.token}/photo.jpg").data == JPEG


@pytest.mark.slow
def test_the_database_down_shows_a_page_that_retries(station, server, pg_server, make_app) -> None:
    uploader = _uploader(station)
    web = make_app(store=server).test_client()
    pg_server.stop()
    try:
        capture = station.publish(JPEG, ttl_seconds=3600)  # the station goes on
        with pytest.raises(StoreUnavailable):
            uploader.upload_all()
        page = web.get(f"/p/{capture.token}")
        assert page.status_code == 503 and page.headers["Retry-After"]
        assert "refresh" in page.get_data(as_text=True)
        assert web.get("/staff").status_code == 503
    finally:
        pg_server.start()
    _once_back(uploader.upload_all)
    assert web.get(f"/p/{capture.token}/photo.jpg").data == JPEG


_KILLED_UPLOADER = """
import sys
from pathlib import Path
from booth.store import Shared, Store
from booth.store.outbox import Uploader
store = Store(Path(sys.argv[1]), shared=Shared(*sys.argv[2:5]), outbox=True)
print("ready", flush=True)
Uploader(store, store.outbox).upload_all()
print("done", flush=True)
"""


def test_sigkill_mid_upload_loses_nothing_and_duplicates_nothing(
        shared, tmp_path, s3_bucket, pg_url) -> None:
    """A station killed while uploading: the next start finishes the job, and afterwards
    every photo has one row and its objects, and the bucket holds nothing else."""
    data = tmp_path / "station"
    station = Store(data, shared=shared, outbox=True)
    tokens = [station.publish(JPEG, ttl_seconds=3600, thumb_jpeg=b"t").token
              for _ in range(12)]
    station.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [str(data), shared.database_url, shared.photos_url, shared.s3_endpoint_url]
    for delay in (0.05, 0.2, 0.4):  # killed at different moments of the upload
        child = subprocess.Popen([sys.executable, "-c", _KILLED_UPLOADER, *args], env=env,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(delay)  # not a timing assert: where the kill lands is what varies
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
    station = Store(data, shared=shared, outbox=True)
    try:
        _uploader(station).upload_all()
        assert sweep_bucket(station.db, station.photo_files, time.time() + 3600) == 0
        rows = _rows(pg_url)
        assert sorted(r[0] for r in rows) == sorted(_hash(t) for t in tokens)
        assert all(r[3] == 0 for r in rows)
        names = {f"booth/{n}" for r in rows for n in r[1:3]}
        assert set(_objects(s3_bucket)) == names and len(names) == 24
    finally:
        station.close()


def test_one_janitor_sweeps_at_a_time_and_orphans_go(shared, server, s3_bucket) -> None:
    other = Store(None, shared=shared)
    try:
        s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="booth/orphan.jpg", Body=b"x")
        with server.db.exclusive("sweep") as mine:
            assert mine
            assert other.sweep() == 0  # the other process skips this round
        # Young objects may be an upload in progress; an hour later it is an orphan.
        assert sweep_bucket(other.db, other.photo_files, time.time()) == 0
        assert sweep_bucket(other.db, other.photo_files, time.time() + 3600) == 1
        assert _objects(s3_bucket) == {}
    finally:
        other.close()


def test_servers_share_staff_secrets_and_sessions(shared, make_app) -> None:
    from booth.store.passwords import set_password

    a, b = Store(None, shared=shared), Store(None, shared=shared)
    try:
        app_a, app_b = (make_app(store=s) for s in (a, b))
        assert app_a.secret_key == app_b.secret_key
        set_password(a, "correct horse battery")
        client_a, client_b = app_a.test_client(), app_b.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"',
                          client_a.get("/staff").get_data(as_text=True)).group(1)
        login = client_a.post("/staff/login", data={"csrf_token": token,
                                                    "password": "correct horse battery"})
        assert login.status_code == 303
        cookie = client_a.get_cookie("booth_session").value
        client_b.set_cookie("booth_session", cookie)
        assert b"Log out" in client_b.get("/staff").data  # the other server knows it
        set_password(b, "another password 2")  # ends every session, on every server
        assert b"Log out" not in client_a.get("/staff").data
    finally:
        a.close()
        b.close()


@pytest.mark.slow
def test_a_clean_exit_waits_a_bounded_time_then_leaves_the_rest(
        shared, tmp_path, s3_server, s3_bucket, caplog, make_app) -> None:
    from booth.wiring import finish_uploads

    data = tmp_path / "station"
    station = Store(data, shared=shared, outbox=True)
    station.start_uploader()
    s3_server.stop()
    try:
        tokens = [station.publish(JPEG, ttl_seconds=3600).token for _ in range(2)]
        finish_uploads(station, 1.0)  # the bucket is down: gives up after its wait
        station.close()
        assert len(list((data / "outbox").glob("*.json"))) == 2
        assert "2 photo(s) wait in the outbox for the next start" in caplog.text
    finally:
        s3_server.start()
    station = Store(data, shared=shared, outbox=True)  # the next start
    try:
        station.start_uploader()
        finish_uploads(station, 60.0)  # the bucket is back: all of them go up
        assert list((data / "outbox").iterdir()) == []
        web = make_app(store=station).test_client()
        for token in tokens:
            assert web.get(f"/p/{token}/photo.jpg").data == JPEG
    finally:
        station.close()


def test_a_link_not_known_yet_waits_until_its_expiry_unless_deleted(station, server,
                                                                    make_app) -> None:
    """A station that cannot reach the database yet: its link carries the photo's expiry, and
    until then the link waits for the photo instead of saying "not found"."""
    web = make_app(store=server).test_client()
    now = time.time()
    capture = station.publish(JPEG, ttl_seconds=3600, now=now)
    until = int(capture.expires_at)
    for path in ("", "/photo.jpg"):
        page = web.get(f"/p/{capture.token}{path}?until={until}")
        assert page.status_code in (200, 503) and "on its way" in page.get_data(as_text=True)
    assert web.get(f"/p/{capture.token}").status_code == 404  # no expiry: not found
    assert web.get(f"/p/{capture.token}?until={int(now) - 1}").status_code == 404  # past
    assert web.get(f"/p/{capture.token}?until=soon").status_code == 404

    _uploader(station).upload_all()
    assert web.get(f"/p/{capture.token}/photo.jpg?until={until}").data == JPEG
    assert server.delete([server.resolve(capture.token).id]) == 1
    # Deleted: "not found" from now on, whatever the link says, until it would have expired.
    assert web.get(f"/p/{capture.token}?until={until}").status_code == 404
    assert server.purge_expired(now=until + 1) == 0
    with psycopg.connect(server.db.url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0] == 0


def test_switching_language_keeps_a_waiting_link_waiting(station, server, make_app) -> None:
    capture = station.publish(JPEG, ttl_seconds=3600)
    web = make_app(store=server).test_client()
    until = int(capture.expires_at)
    switched = web.get(f"/p/{capture.token}?until={until}&lang=de")
    assert switched.status_code == 303
    assert switched.headers["Location"] == f"/p/{capture.token}?until={until}"
    page = web.get(switched.headers["Location"])
    assert page.status_code == 200 and "Dein Foto ist unterwegs" in page.get_data(as_text=True)
