"""The visitor's side of the web app, through Flask's test client on a real store."""

from __future__ import annotations

import io
import re
import time
from datetime import datetime
from urllib.parse import quote

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from booth.station.photo import encode_jpeg
from booth.store import Store
from booth.webapp.visitor import expiry_text


def jpeg(seed: int = 0, size: tuple[int, int] = (320, 240)) -> bytes:
    rng = np.random.default_rng(seed)
    return encode_jpeg(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def publish(store: Store, seed: int = 0, **kw):
    kw.setdefault("ttl_seconds", 24 * 3600)
    return store.publish(jpeg(seed), thumb_jpeg=jpeg(seed + 1000, (48, 36)), **kw)


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_photo_page_shows_the_photo_download_share_expiry_and_delete(client, store):
    capture = publish(store)
    r = client.get(f"/p/{capture.token}")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert f'src="/p/{capture.token}/photo.jpg"' in html
    assert f'href="/p/{capture.token}/download"' in html
    assert 'id="share"' in html and "hidden" in html  # shown by script only where supported
    assert expiry_text(capture.expires_at) in html
    assert f'href="/p/{capture.token}/delete"' in html
    assert "https://" not in html.replace("https://images.nasa.gov", "")  # no CDN
    h = r.headers
    assert "default-src 'self'" in h["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["Cache-Control"] == "no-store"
    assert "noindex" in h["X-Robots-Tag"]


def test_image_and_download_are_the_files_bytes_without_exif(client, store):
    capture = publish(store)
    data = capture.path.read_bytes()
    image = client.get(f"/p/{capture.token}/photo.jpg")
    assert image.status_code == 200 and image.data == data
    assert image.mimetype == "image/jpeg"
    assert image.headers["Cache-Control"] == "no-store"
    assert "noindex" in image.headers["X-Robots-Tag"]
    assert image.headers["Referrer-Policy"] == "no-referrer"
    download = client.get(f"/p/{capture.token}/download")
    assert download.status_code == 200 and download.data == data
    stamp = datetime.fromtimestamp(capture.created_at).strftime("%Y-%m-%d-%H%M")
    assert download.headers["Content-Disposition"] == (
        f"attachment; filename=mars-selfie-{stamp}.jpg")
    assert download.headers["Cache-Control"] == "no-store"
    with Image.open(io.BytesIO(download.data)) as im:
        assert not im.getexif() and "exif" not in im.info
    assert store.get(capture.id).downloads == 1


def test_unknown_malformed_expired_and_deleted_all_look_the_same(client, store):
    expired = publish(store, 1, ttl_seconds=60, now=time.time() - 3600)
    deleted = publish(store, 2)
    store.delete([deleted.id])
    live = publish(store, 3)
    candidates = ["A" * 22, "not-a-token", "%ff", "x" * 500, expired.token, deleted.token,
                  live.token[:-1] + ("A" if live.token[-1] != "A" else "B")]
    bodies = set()
    for i, token in enumerate(candidates):
        for suffix in ("", "/photo.jpg", "/download", "/delete"):
            # A client of its own per token, to stay under the limit on misses.
            r = client.get(f"/p/{token}{suffix}", environ_base={"REMOTE_ADDR": f"10.0.0.{i}"})
            assert r.status_code == 404, (token, suffix)
            assert r.headers["Cache-Control"] == "no-store"
            bodies.add(r.data)
    assert len(bodies) == 1
    assert b"Not found or expired" in bodies.pop()
    assert client.get(f"/p/{live.token}").status_code == 200


def test_delete_needs_csrf_then_removes_photo_thumbnail_and_row_for_good(client, store):
    capture = publish(store)
    confirm = client.get(f"/p/{capture.token}/delete")
    assert confirm.status_code == 200
    assert client.post(f"/p/{capture.token}/delete").status_code == 400  # no CSRF token
    assert capture.path.is_file() and store.resolve(capture.token) is not None
    token = csrf_from(confirm.get_data(as_text=True))
    r = client.post(f"/p/{capture.token}/delete", data={"csrf_token": token})
    assert r.status_code == 200 and b"deleted" in r.data
    assert not capture.path.exists() and not capture.thumb_path.exists()
    assert store.get(capture.id) is None and store.count() == 0
    assert client.get(f"/p/{capture.token}").status_code == 404
    again = client.post(f"/p/{capture.token}/delete", data={"csrf_token": token})
    assert again.status_code == 404


def test_a_get_never_deletes(client, store):
    capture = publish(store)
    for _ in range(3):
        client.get(f"/p/{capture.token}/delete")
        client.get(f"/p/{capture.token}/delete?confirm=yes")
    assert store.get(capture.id) is not None and capture.path.is_file()


def test_no_listing_anywhere_without_staff_login(client, store):
    captures = [publish(store, i) for i in range(3)]
    for path in ("/", "/p/", "/p", "/photos", "/static/", "/staff/photo/1.jpg"):
        body = client.get(path).get_data(as_text=True)
        for capture in captures:
            assert capture.token not in body and capture.filename not in body


def test_guessing_tokens_is_rate_limited(client, store):
    capture = publish(store)
    statuses = [client.get(f"/p/{'B' * 21}{i % 10}").status_code for i in range(20)]
    assert statuses[:15] == [404] * 15 and set(statuses[15:]) == {429}
    limited = client.get(f"/p/{'B' * 22}")
    assert limited.status_code == 429 and limited.headers["Cache-Control"] == "no-store"
    # A valid link is never locked out by misses: not from another address...
    other = client.get(f"/p/{capture.token}", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200
    # ...nor from the same one (a mobile carrier's NAT puts many phones behind it).
    assert client.get(f"/p/{capture.token}").status_code == 200
    assert client.get(f"/p/{capture.token}/photo.jpg").data == capture.path.read_bytes()


def test_hits_are_limited_too(client, store):
    capture = publish(store)
    statuses = [client.get(f"/p/{capture.token}/photo.jpg").status_code for _ in range(62)]
    assert statuses[:60] == [200] * 60 and statuses[60:] == [429, 429]


def test_home_static_and_fonts_are_local(client):
    home = client.get("/")
    assert home.status_code == 200 and b"QR code" in home.data
    css = client.get("/static/booth.css")
    assert css.status_code == 200 and b"--accent" in css.data
    font = client.get("/fonts/Lato-Bold.ttf")
    assert font.status_code == 200 and len(font.data) > 10000
    assert client.get("/fonts/..%2Fbooth.css").status_code == 404
    assert client.get("/fonts/Lato-Italic.ttf").status_code == 404


def test_expiry_text_reads_naturally():
    now = datetime(2026, 11, 25, 10, 0).timestamp()
    assert expiry_text(datetime(2026, 11, 25, 14, 32).timestamp(), now) == "today at 14:32"
    assert expiry_text(datetime(2026, 11, 26, 9, 5).timestamp(), now) == "tomorrow at 09:05"
    assert expiry_text(datetime(2026, 11, 28, 9, 5).timestamp(), now) == "28 November at 09:05"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(min_size=0, max_size=80),
       query=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=3),
       form=st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=3),
       method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE"]))
def test_fuzzed_photo_paths_never_500_and_never_leak_a_photo(app, store, path, query, form,
                                                             method):
    if store.count() == 0:
        publish(store)
    app.extensions["booth.limits"].limiter.reset()
    client = app.test_client()
    r = client.open(f"/p/{quote(path, safe='/')}", method=method, query_string=query,
                    data=form if method in ("POST", "PUT") else None)
    assert r.status_code < 500
    assert r.mimetype != "image/jpeg"
    assert store.count() == 1


def test_delete_works_over_https_without_a_referer(app, store):
    """Photo pages send no Referer to other sites; their forms must still work behind TLS,
    with or without a Referer, and name their own Origin (a no-referrer page would send
    "Origin: null", which is refused)."""
    capture = publish(store)
    client = app.test_client()
    page = client.get(f"/p/{capture.token}/delete", base_url="https://booth.example")
    assert page.headers["Referrer-Policy"] == "same-origin"
    form = {"csrf_token": csrf_from(page.get_data(as_text=True))}
    refused = client.post(f"/p/{capture.token}/delete", base_url="https://booth.example",
                          data=form, headers={"Origin": "null"})
    assert refused.status_code == 403 and capture.path.exists()
    r = client.post(f"/p/{capture.token}/delete", base_url="https://booth.example",
                    data=form, headers={"Origin": "https://booth.example"})
    assert r.status_code == 200 and not capture.path.exists()


def test_two_apps_in_one_process_share_no_limits(make_app):
    """Limits (and CSRF) are made per app: one app's misses do not count in another's."""
    first, second = (make_app() for _ in range(2))
    statuses = [first.test_client().get(f"/p/{'E' * 22}").status_code for _ in range(16)]
    assert statuses[-1] == 429
    assert second.test_client().get(f"/p/{'E' * 22}").status_code == 404
    assert first.extensions["booth.limits"] is not second.extensions["booth.limits"]
    assert first.extensions["csrf"] is not second.extensions["csrf"]
