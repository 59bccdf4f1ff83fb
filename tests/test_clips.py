"""Clips (boomerangs) in the store and on the web: a real MP4 (H.264, made here with PyAV),
published through the station's StoreOutput into both stores, played on its phone page
(in headless Chromium too), downloaded, deleted, expired and purged, with nothing left
behind: not a file on disk, not an object in the bucket."""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import av
import cv2
import numpy as np
import psycopg
import pytest

from booth.station.outputs import Kind, Product
from booth.station.outputs.store import StoreOutput
from booth.store import Store
from booth.store.captures import CLIP, PHOTO
from booth.store.keys import SecretFiles
from booth.store.outbox import Outbox, Uploader
from booth.store.passwords import set_password
from booth.store.schema import MIGRATIONS, PG_MIGRATIONS, PG_SCHEMA_VERSION, SCHEMA_VERSION
from booth.store.sweep import sweep_bucket
from booth.webapp.visitor import download_name
from tests.conftest import headless_run
from tests.test_browser import TIMEOUT_MS, Booth, booth, browser  # noqa: F401 (fixtures)
from tests.test_shared_store import server, station  # noqa: F401 (fixtures)
from tests.test_web_staff import PASSWORD, _login, _post

FPS, FRAMES, SIZE = 24, 48, (320, 180)  # 2.0 s
BASE = "http://booth.test"


def make_mp4(path: Path) -> np.ndarray:
    """A real MP4 as the station's clips are (H.264, yuv420p, faststart, no audio): a bar
    sweeping over a gradient. Returns its first frame (BGR)."""
    import av

    w, h = SIZE
    frames = []
    for i in range(FRAMES):
        image = np.tile(np.linspace(40, 200, w, dtype=np.uint8), (h, 1))
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        x = i * (w - 20) // (FRAMES - 1)
        image[:, x:x + 20] = (40, 120, 230)
        frames.append(image)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for image in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(stream.encode())
    return frames[0]


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Product:
    """A clip as the station hands it to its outputs."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    first = make_mp4(path)
    return Product(Kind.CLIP, path.read_bytes(), thumb=jpeg(cv2.resize(first, (160, 90))),
                   picture=first, taken_at=datetime.now(), retention_hours=2,
                   poster=jpeg(first))


def names(capture) -> set[str]:
    return {capture.filename, capture.thumb_filename, capture.poster_filename}


def test_a_clip_is_stored_whole_and_survives_the_start_up_sweep(tmp_path: Path, clip) -> None:
    data = tmp_path / "data"
    store = Store(data)
    try:
        delivered = StoreOutput(store, BASE).deliver(clip)
        token = delivered.link.rsplit("/", 1)[1]
        capture = store.resolve(token)
        assert capture.kind == CLIP and capture.filename.endswith(".mp4")
        assert capture.poster_filename.endswith("-poster.jpg")
        assert capture.thumb_filename.endswith("-thumb.jpg")
        assert capture.path.read_bytes() == clip.file
        assert (data / "photos" / capture.poster_filename).read_bytes() == clip.poster
        assert store.open_photo(capture).stream.read() == clip.poster  # its picture: a JPEG
        assert store.open_photo(capture, thumb=True).stream.read() == clip.thumb
        assert store.open_file(capture).stream.read() == clip.file
        photo = store.publish(clip.thumb, ttl_seconds=60)
        assert photo.kind == PHOTO and photo.poster_filename is None
        assert store.count_by_kind() == {PHOTO: 1, CLIP: 1}
    finally:
        store.close()
    # The next start's sweep keeps every file a row names: the poster too.
    Store(data).close()
    assert {p.name for p in (data / "photos").iterdir()} == names(capture) | {photo.filename}


def test_a_clip_needs_its_poster_and_a_photo_has_none(store: Store, clip) -> None:
    with pytest.raises(ValueError, match="poster"):
        store.publish(clip.file, ttl_seconds=60, kind=CLIP)
    with pytest.raises(ValueError, match="poster"):
        store.publish(clip.thumb, ttl_seconds=60, poster_jpeg=clip.poster)
    with pytest.raises(ValueError):
        store.publish(clip.file, ttl_seconds=60, kind="gif", poster_jpeg=clip.poster)
    assert store.count() == 0 and list(store.photos.iterdir()) == []


def test_a_schema_3_database_upgrades_and_its_photos_stay_photos(tmp_path: Path,
                                                                clip) -> None:
    data = tmp_path / "data"
    (data / "photos").mkdir(parents=True)
    (data / "photos" / "old.jpg").write_bytes(clip.thumb)
    db = sqlite3.connect(data / "booth.sqlite3", isolation_level=None)
    for step in MIGRATIONS[:3]:
        step(db, SecretFiles(data / "secrets"))
    db.execute("PRAGMA user_version = 3")
    token = "T" * 22
    db.execute("INSERT INTO captures (token_hash, filename, created_at, expires_at) "
               "VALUES (?, 'old.jpg', ?, ?)", (hashlib.sha256(token.encode()).hexdigest(),
                                                time.time(), time.time() + 3600))
    db.close()
    store = Store(data)
    try:
        old = store.resolve(token)
        assert old.kind == PHOTO and old.poster_filename is None
        assert store.open_file(old).stream.read() == clip.thumb
        new = store.resolve(StoreOutput(store, BASE).deliver(clip).link.rsplit("/", 1)[1])
        assert new.kind == CLIP
    finally:
        store.close()
    db = sqlite3.connect(data / "booth.sqlite3")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        db.close()


def test_expiry_and_staff_purge_remove_every_file_of_a_clip(store: Store, clip) -> None:
    now = time.time()
    short = store.publish(clip.file, ttl_seconds=60, thumb_jpeg=clip.thumb, kind=CLIP,
                          poster_jpeg=clip.poster, now=now)
    kept = store.publish(clip.file, ttl_seconds=3600, thumb_jpeg=clip.thumb, kind=CLIP,
                         poster_jpeg=clip.poster, now=now)
    assert store.purge_expired(now=now + 61) == 1
    assert {p.name for p in store.photos.iterdir()} == names(kept) != names(short)
    assert store.purge_all() == 1
    assert list(store.photos.iterdir()) == []


def test_an_outbox_record_from_before_clips_is_a_photo(tmp_path: Path, clip) -> None:
    outbox = Outbox(tmp_path / "outbox")
    entry = outbox.add({"photo": ("a.mp4", clip.file), "poster": ("a-poster.jpg", clip.poster)},
                       token_hash="h", created_at=1.0, expires_at=2.0, kind=CLIP)
    [read] = outbox.entries()
    assert read.kind == CLIP and read.files == {"photo": "a.mp4", "poster": "a-poster.jpg"}
    old = json.loads(entry.record.read_text())
    del old["kind"]
    entry.record.write_text(json.dumps(old))
    assert [e.kind for e in outbox.entries()] == [PHOTO]


# --- the phone page and the staff gallery, over Flask's test client ---------------------


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_phone_page_plays_downloads_and_deletes_a_clip(client, store: Store, clip) -> None:
    token = StoreOutput(store, BASE).deliver(clip).link.rsplit("/", 1)[1]
    capture = store.resolve(token)
    page = client.get(f"/p/{token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Your boomerang on Mars" in html
    video = re.search(r"<video [^>]*>", html).group(0)
    for attribute in ("playsinline", "muted", "loop", "autoplay", "controls"):
        assert f" {attribute}" in video
    assert f'src="/p/{token}/clip.mp4"' in video and f'poster="/p/{token}/photo.jpg"' in video
    assert "media-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"

    played = client.get(f"/p/{token}/clip.mp4")
    assert played.status_code == 200 and played.data == clip.file
    assert played.headers["Content-Type"] == "video/mp4"
    assert played.headers["Accept-Ranges"] == "bytes"
    assert "Content-Disposition" not in played.headers
    part = client.get(f"/p/{token}/clip.mp4", headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.data == clip.file[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(clip.file)}"
    assert client.get(f"/p/{token}/clip.mp4", headers={"Range": "bytes=99999999-"}
                      ).status_code == 416
    poster = client.get(f"/p/{token}/photo.jpg")
    assert poster.data == clip.poster and poster.headers["Content-Type"] == "image/jpeg"
    assert store.get(capture.id).downloads == 0  # playing is not downloading

    saved = client.get(f"/p/{token}/download")
    assert saved.status_code == 200 and saved.data == clip.file
    assert saved.headers["Content-Type"] == "video/mp4"
    name = download_name(capture)
    assert re.fullmatch(r"mars-boomerang-\d{4}-\d\d-\d\d-\d{4}\.mp4", name)
    assert saved.headers["Content-Disposition"] == f"attachment; filename={name}"
    assert store.get(capture.id).downloads == 1

    confirm = client.get(f"/p/{token}/delete")
    assert "Delete your video?" in confirm.get_data(as_text=True)
    gone = client.post(f"/p/{token}/delete", data={"csrf_token": _csrf(confirm.text)})
    assert gone.status_code == 200 and "Your video is deleted" in gone.text
    assert list(store.photos.iterdir()) == [] and store.count() == 0
    for path in ("", "/clip.mp4", "/photo.jpg", "/download"):
        assert client.get(f"/p/{token}{path}").status_code == 404


def test_a_photo_has_no_clip_and_keeps_its_page(client, store: Store, clip) -> None:
    photo = store.publish(clip.poster, ttl_seconds=60)
    assert client.get(f"/p/{photo.token}/clip.mp4").status_code == 404
    html = client.get(f"/p/{photo.token}").get_data(as_text=True)
    assert "<video" not in html and "Download photo" in html
    saved = client.get(f"/p/{photo.token}/download")
    assert saved.headers["Content-Type"] == "image/jpeg" and "Accept-Ranges" not in saved.headers
    assert download_name(photo).startswith("mars-selfie-")


def test_staff_gallery_shows_and_counts_clips_and_purges_them(client, store: Store,
                                                              clip) -> None:
    set_password(store, PASSWORD)
    assert _login(client).status_code == 303
    video = store.publish(clip.file, ttl_seconds=60, thumb_jpeg=clip.thumb, kind=CLIP,
                          poster_jpeg=clip.poster)
    photos = [store.publish(clip.poster, ttl_seconds=60) for _ in range(2)]
    html = client.get("/staff").get_data(as_text=True)
    assert "<b>2</b><span>photos stored" in html and "<b>1</b><span>boomerang stored" in html
    assert f'<a class="clip" href="/staff/clip/{video.id}.mp4">' in html
    assert html.count('class="play"') == 1 and f'href="/staff/photo/{photos[0].id}.jpg"' in html
    assert client.get(f"/staff/thumb/{video.id}.jpg").data == clip.thumb
    assert client.get(f"/staff/photo/{video.id}.jpg").data == clip.poster
    played = client.get(f"/staff/clip/{video.id}.mp4", headers={"Range": "bytes=0-1"})
    assert played.status_code == 206 and played.data == clip.file[:2]
    assert client.get(f"/staff/clip/{photos[0].id}.mp4").status_code == 404

    done = _post(client, "/staff/purge", {"confirm": "yes"})
    assert done.status_code == 303 and store.count() == 0
    assert list(store.photos.iterdir()) == []


# --- the shared store: PostgreSQL, a real bucket, the station's outbox ------------------


def _objects(s3_bucket) -> dict[str, tuple[bytes, str]]:
    listing = s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name).get("Contents", [])
    found = {}
    for o in listing:
        got = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=o["Key"])
        found[o["Key"]] = (got["Body"].read(), got["ContentType"])
    return found


def _upload(store: Store) -> int:
    return Uploader(store, store.outbox).upload_all()


def test_a_clip_goes_up_through_the_outbox_and_expiry_empties_the_bucket(
        station, server, s3_bucket, make_app, clip) -> None:  # noqa: F811 (fixtures)
    link = StoreOutput(station, BASE).deliver(clip).link
    token = re.search(r"/p/([^?]+)\?until=", link).group(1)
    entry, = station.outbox.entries()
    assert entry.kind == CLIP and set(entry.files) == {"photo", "thumb", "poster"}
    assert _upload(station) == 1
    capture = server.resolve(token)
    assert capture.kind == CLIP and not capture.pending
    assert _objects(s3_bucket) == {
        f"booth/{capture.filename}": (clip.file, "video/mp4"),
        f"booth/{capture.poster_filename}": (clip.poster, "image/jpeg"),
        f"booth/{capture.thumb_filename}": (clip.thumb, "image/jpeg")}
    # The bucket's sweep keeps every object a row names: the poster too.
    assert sweep_bucket(server.db, server.photo_files, time.time() + 3600) == 0

    web = make_app(store=server).test_client()
    assert "<video " in web.get(f"/p/{token}").get_data(as_text=True)
    part = web.get(f"/p/{token}/clip.mp4", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.data == clip.file[1000:2000]
    saved = web.get(f"/p/{token}/download")
    assert saved.data == clip.file and saved.headers["Content-Type"] == "video/mp4"

    assert server.purge_expired(now=capture.expires_at + 1) == 1
    assert _objects(s3_bucket) == {} and server.count() == 0
    assert web.get(f"/p/{token}/clip.mp4").status_code == 404


def test_visitor_delete_and_staff_purge_on_the_shared_store_empty_the_bucket(
        station, server, s3_bucket, make_app, clip) -> None:  # noqa: F811 (fixtures)
    tokens = [re.search(r"/p/([^?]+)\?", StoreOutput(station, BASE).deliver(clip).link)
              .group(1) for _ in range(3)]
    station.publish(clip.poster, ttl_seconds=600, thumb_jpeg=clip.thumb)
    _upload(station)
    assert len(_objects(s3_bucket)) == 11 and server.count_by_kind() == {PHOTO: 1, CLIP: 3}
    web = make_app(store=server).test_client()
    confirm = web.get(f"/p/{tokens[0]}/delete")
    assert web.post(f"/p/{tokens[0]}/delete",
                    data={"csrf_token": _csrf(confirm.text)}).status_code == 200
    assert len(_objects(s3_bucket)) == 8
    set_password(server, PASSWORD)
    assert _login(web).status_code == 303
    assert "<b>2</b><span>boomerangs stored" in web.get("/staff").text
    assert _post(web, "/staff/purge", {"confirm": "yes"}).status_code == 303
    assert _objects(s3_bucket) == {} and server.count() == 0
    # Their tombstones: no link says "on its way" again, however long it claims to live.
    for token in tokens:
        assert not server.waiting(token, until=time.time() + 3600)
        assert web.get(f"/p/{token}?until={int(time.time()) + 3600}").status_code == 404


def test_a_clip_deleted_while_on_its_way_leaves_nothing(
        station, server, s3_bucket, clip) -> None:  # noqa: F811 (fixtures)
    StoreOutput(station, BASE).deliver(clip)
    Uploader(station, station.outbox).register(station.outbox.entries()[0])
    assert server.purge_all() == 1  # before its files went up
    _upload(station)  # the row is gone: its files leave the bucket and the outbox
    assert _objects(s3_bucket) == {} and list(station.outbox.folder.iterdir()) == []


def test_a_shared_database_of_schema_1_upgrades(pg_url, s3_bucket, shared, clip) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(PG_MIGRATIONS[0])
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute("INSERT INTO captures (token_hash, filename, created_at, expires_at) "
                     "VALUES ('h', 'old.jpg', 0, 1e12)")
    store = Store(None, shared=shared)
    try:
        old, = store.captures()
        assert old.kind == PHOTO and old.poster_filename is None
        assert store.count_by_kind() == {PHOTO: 1, CLIP: 0}
    finally:
        store.close()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == \
            PG_SCHEMA_VERSION == 5


# --- a real browser ----------------------------------------------------------------------


def until(page, predicate: str, seconds: float = TIMEOUT_MS / 1000):
    """predicate(the page's <video>) once it is truthy, polled from here (wait_for_function
    evaluates strings in the page, which its CSP forbids; this test keeps the CSP on, so
    that it shows the video allowed by it)."""
    deadline = time.monotonic() + seconds
    while True:
        value = page.evaluate(f"() => ({predicate})(document.querySelector('video'))")
        if value or time.monotonic() > deadline:
            assert value, predicate
            return value
        time.sleep(0.02)


@pytest.mark.browser
@pytest.mark.slow
def test_chromium_plays_the_clip_downloads_it_and_deletes_it(booth: Booth, browser,  # noqa: F811
                                                             clip) -> None:
    token = StoreOutput(booth.store, booth.base).deliver(clip).link.rsplit("/", 1)[1]
    capture = booth.store.resolve(token)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        assert page.goto(f"{booth.base}/p/{token}").status == 200
        until(page, "v => v.readyState >= 3")
        state = page.evaluate("""() => { const v = document.querySelector('video');
            return {duration: v.duration, width: v.videoWidth, height: v.videoHeight,
                    muted: v.muted, loop: v.loop, error: v.error && v.error.code}; }""")
        assert state == {"duration": pytest.approx(FRAMES / FPS, rel=0.1), "width": SIZE[0],
                         "height": SIZE[1], "muted": True, "loop": True, "error": None}
        # It plays by itself (muted autoplay), and goes on past its end (it loops).
        start = until(page, "v => v.currentTime")
        until(page, f"v => v.currentTime > {start} + 0.3")
        until(page, """v => { window.seen = Math.max(window.seen || 0, v.currentTime);
                              return window.seen > 1.5 && v.currentTime < 0.5; }""")
        assert page.evaluate("document.querySelector('video').paused") is False

        with page.expect_download() as info:
            page.locator("#download").click()
        assert info.value.suggested_filename == download_name(capture)
        assert Path(info.value.path()).read_bytes() == clip.file

        page.get_by_role("link", name="Delete my video now").click()
        page.get_by_role("button", name="Yes, delete my video").click()
        page.locator("h1", has_text="Your video is deleted").wait_for()
        assert list(booth.store.photos.iterdir()) == []
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_a_headless_boomerangs_link_plays_in_chromium(tmp_path: Path, booth: Booth,  # noqa: F811
                                                      browser) -> None:  # noqa: F811
    """End to end: `booth run --headless --capture-kind boomerang` on a shared video records
    a clip into the data dir a server serves; the link it prints opens a page whose <video>
    plays that clip (the station's own MP4, not one made by the test)."""
    proc = headless_run(tmp_path, "--auto-capture", "1", "--capture-kind", "boomerang",
                        "--max-captures", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (link,) = proc.stdout.splitlines()
    token = link.rsplit("/", 1)[1]
    capture = booth.store.resolve(token)
    assert capture is not None and capture.kind == CLIP
    with av.open(io.BytesIO(capture.path.read_bytes())) as probe:
        stream = probe.streams.video[0]
        recorded = float(stream.frames / stream.average_rate)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        assert page.goto(f"{booth.base}/p/{token}").status == 200
        until(page, "v => v.readyState >= 3")
        duration = page.evaluate("document.querySelector('video').duration")
        assert duration == pytest.approx(recorded, rel=0.1) and duration > 1.0
        start = until(page, "v => v.currentTime")
        until(page, f"v => v.currentTime > {start} + 0.3")
    finally:
        context.close()
