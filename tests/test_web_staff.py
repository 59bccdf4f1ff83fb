"""The staff pages, through Flask's test client on a real store with real JPEGs.

CSRF protection stays on, as in production: every valid POST carries a token taken from a
rendered form.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from booth.errors import BoothError
from booth.store import Capture, Store
from booth.store.passwords import (
    check_password,
    has_password,
    set_password,
    store_hash,
    stored_hash,
)
from booth.store.status import StationStatus
from tests.conftest import ROOT

PASSWORD = "correct horse battery"
HTTPS = "https://localhost"
_TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (96, 72)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=85)
    return out.getvalue()


def _token(client, **kw) -> str:
    page = client.get("/staff", **kw)
    match = _TOKEN_RE.search(page.text)
    assert match, page.text
    return match.group(1)


def _login(client, password: str = PASSWORD, **kw):
    return client.post("/staff/login", data={"csrf_token": _token(client, **kw),
                                             "password": password}, **kw)


def _post(client, url: str, data: dict | None = None, **kw):
    """A POST as the page's own forms make it: with the CSRF token."""
    return client.post(url, data={"csrf_token": _token(client, **kw), **(data or {})}, **kw)


@pytest.fixture
def staff(client, store):
    set_password(store, PASSWORD)
    response = _login(client)
    assert response.status_code == 303
    return client


def _publish(store: Store, n: int, *, now: float | None = None,
             thumb: bool = True) -> list[Capture]:
    out = []
    for i in range(n):
        colour = (40 * i % 256, 120, 200)
        out.append(store.publish(_jpeg(colour, (320, 240)), ttl_seconds=86400, now=now,
                                 thumb_jpeg=_jpeg(colour) if thumb else None))
    return out


def _gone(store: Store, capture: Capture) -> None:
    assert store.get(capture.id) is None
    assert not capture.path.exists()
    assert capture.thumb_path is None or not capture.thumb_path.exists()


def _intact(store: Store, capture: Capture) -> None:
    assert store.get(capture.id) is not None
    assert capture.path.is_file()
    assert capture.thumb_path is None or capture.thumb_path.is_file()


def _cookie(response) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie")
                if c.startswith("booth_session=")]
    return cookie


def _logged_in(client, **kw) -> bool:
    text = client.get("/staff", **kw).text
    assert ("Staff login" in text) != ("Delete selected" in text or "No photos are" in text)
    return "Staff login" not in text


# --- passwords -------------------------------------------------------------------------


def test_passwords_hash_only_and_check(store: Store) -> None:
    assert not has_password(store) and not check_password(store, PASSWORD)
    with pytest.raises(BoothError, match="at least 8 characters"):
        set_password(store, "short")
    with pytest.raises(BoothError, match="not valid text"):
        set_password(store, "\ud800" * 9)
    assert not has_password(store)
    set_password(store, PASSWORD)
    stored = stored_hash(store)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert check_password(store, PASSWORD)
    for wrong in ("", "correct horse batter", PASSWORD + " ", "\x00", "\ud800" * 9, None, 42):
        assert not check_password(store, wrong)  # type: ignore[arg-type]
    session_id = store.start_session()
    assert store.session_started(session_id) is not None
    set_password(store, "another password")
    assert store.session_started(session_id) is None  # a new password ends every session
    assert check_password(store, "another password") and not check_password(store, PASSWORD)
    store_hash(store, "garbage")
    assert not check_password(store, "another password")


def test_outdated_hash_is_upgraded_on_login(store: Store) -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    store_hash(store, weak)
    session_id = store.start_session()
    assert check_password(store, PASSWORD)
    upgraded = stored_hash(store)
    assert upgraded != weak and "m=65536" in upgraded
    assert check_password(store, PASSWORD) and store.session_started(session_id) is not None


# --- locked, login, logout -------------------------------------------------------------


def test_no_password_locks_the_staff_pages(client, store) -> None:
    page = client.get("/staff")
    assert page.status_code == 200
    assert "locked" in page.text and "booth passwd" in page.text
    assert "booth passwd --stdin" in page.text and 'type="password"' not in page.text
    # Nothing to guess: with no hash stored, every password is refused (and not counted).
    set_password(store, PASSWORD)
    token = _token(client)
    store_hash(store, "")
    for password in ("", "password", PASSWORD):
        response = client.post("/staff/login", data={"csrf_token": token, "password": password})
        assert response.status_code == 303
        assert "locked" in client.get("/staff").text


def test_wrong_password_401_right_password_303(client, store) -> None:
    _publish(store, 1)
    set_password(store, PASSWORD)
    page = client.get("/staff")
    assert page.status_code == 200 and 'type="password"' in page.text
    assert "/staff/thumb/" not in page.text

    wrong = _login(client, "not the password")
    assert wrong.status_code == 401
    assert "Wrong password" in wrong.text and 'type="password"' in wrong.text
    assert not _logged_in(client)

    right = _login(client)
    assert right.status_code == 303 and right.headers["Location"].endswith("/staff")
    assert _logged_in(client)


def test_session_cookie_flags_and_lifetime(client, store) -> None:
    set_password(store, PASSWORD)
    cookie = _cookie(_login(client))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    left = (expires - datetime.now(timezone.utc)).total_seconds()
    assert 8 * 3600 - 120 < left <= 8 * 3600 + 5


def test_session_cookie_is_secure_over_https(client, store) -> None:
    set_password(store, PASSWORD)
    referer = {"Referer": HTTPS + "/staff"}  # Flask-WTF checks it on HTTPS
    response = _login(client, base_url=HTTPS, headers=referer)
    assert response.status_code == 303
    cookie = _cookie(response)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert _logged_in(client, base_url=HTTPS)


def test_login_expires_after_one_shift_even_when_active(staff, store) -> None:
    assert _logged_in(staff)
    store.db.execute("UPDATE staff_sessions SET created_at = ?", (time.time() - 8 * 3600 - 1,))
    assert not _logged_in(staff)


def test_logout_ends_the_session(staff, store) -> None:
    [capture] = _publish(store, 1)
    response = _post(staff, "/staff/logout")
    assert response.status_code == 303
    page = staff.get("/staff")
    assert "Logged out" in page.text and "Staff login" in page.text
    thumb = staff.get(f"/staff/thumb/{capture.id}.jpg")
    assert thumb.status_code == 302 and thumb.data != capture.thumb_path.read_bytes()


def test_new_password_logs_out_existing_sessions(staff, store) -> None:
    [capture] = _publish(store, 1)
    assert staff.get(f"/staff/photo/{capture.id}.jpg").status_code == 200
    set_password(store, "a brand new password")
    assert staff.get(f"/staff/photo/{capture.id}.jpg").status_code == 302
    assert not _logged_in(staff)
    assert _login(staff, PASSWORD).status_code == 401
    assert _login(staff, "a brand new password").status_code == 303


@pytest.mark.slow
def test_login_throttled_after_ten_failures(client, store) -> None:
    set_password(store, PASSWORD)
    token = _token(client)

    def attempt(password: str) -> int:
        return client.post("/staff/login",
                           data={"csrf_token": token, "password": password}).status_code

    for _ in range(9):
        assert attempt("nope") == 401
    for _ in range(2):  # successes do not count
        assert attempt(PASSWORD) == 303
        token = _token(client)
    assert attempt("nope") == 401  # the tenth failure
    assert attempt(PASSWORD) == 429
    assert attempt("nope") == 429
    with client.session_transaction() as session:
        session.clear()
    assert not _logged_in(client)


# --- access control, CSRF, GET never changes anything ----------------------------------


def test_strangers_get_no_data(client, store) -> None:
    [capture] = _publish(store, 1)
    set_password(store, PASSWORD)
    for url in (f"/staff/thumb/{capture.id}.jpg", f"/staff/photo/{capture.id}.jpg",
                "/staff/purge", "/staff/nonexistent", "/staff/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].endswith("/staff")
        assert response.data != capture.path.read_bytes()
    token = _token(client)  # a valid token does not make a stranger staff
    for url, data in (("/staff/delete", {"ids": str(capture.id)}),
                      ("/staff/purge-older", {"age": "1h"}),
                      ("/staff/purge", {"confirm": "yes"})):
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 403, url
    _intact(store, capture)


def test_post_without_csrf_token_is_refused(staff, store) -> None:
    captures = _publish(store, 2)
    for url, data in (("/staff/delete", {"ids": str(captures[0].id)}),
                      ("/staff/purge-older", {"age": "1h"}),
                      ("/staff/purge", {"confirm": "yes"})):
        assert staff.post(url, data=data).status_code == 400, url
        bad = {**data, "csrf_token": "forged"}
        assert staff.post(url, data=bad).status_code == 400, url
    for capture in captures:
        _intact(store, capture)
    assert staff.post("/staff/logout").status_code == 400
    assert _logged_in(staff)


def test_get_never_changes_anything(staff, store) -> None:
    captures = _publish(store, 2, now=time.time() - 3 * 86400 - 60)
    first = captures[0].id
    for url in (f"/staff/delete?ids={first}", "/staff/purge-older?age=1h",
                "/staff/purge?confirm=yes", "/staff/logout"):
        assert staff.get(url).status_code in (200, 405), url
    for capture in captures:
        _intact(store, capture)
    assert _logged_in(staff)


# --- gallery, images, status -----------------------------------------------------------


def test_gallery_lists_newest_first_with_details(staff, store) -> None:
    old, new = (store.publish(_jpeg((9, 9, 9)), ttl_seconds=3600, now=time.time() - t,
                              thumb_jpeg=_jpeg((9, 9, 9), (32, 24))) for t in (600, 60))
    store.record_download(old.id)
    page = staff.get("/staff")
    assert page.status_code == 200 and 'class="staff"' in page.text
    thumbs = re.findall(r'src="/staff/thumb/(\d+)\.jpg"', page.text)
    assert thumbs == [str(new.id), str(old.id)]
    assert f'href="/staff/photo/{new.id}.jpg"' in page.text
    assert f'name="ids" value="{old.id}"' in page.text
    assert "1 download ·" in page.text and "0 downloads ·" in page.text
    assert "expires today at" in page.text or "expires tomorrow at" in page.text
    assert "Delete selected" in page.text and "Purge all" in page.text
    for label in ("1 hour", "6 hours", "12 hours", "24 hours", "3 days"):
        assert f">{label}</option>" in page.text
    assert "<script" not in page.text and "style=" not in page.text
    assert page.headers["Cache-Control"] == "no-store"


def test_thumbnails_and_photos_served_only_to_staff(staff, store) -> None:
    [with_thumb] = _publish(store, 1)
    [without] = _publish(store, 1, thumb=False)
    thumb = staff.get(f"/staff/thumb/{with_thumb.id}.jpg")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert thumb.data == with_thumb.thumb_path.read_bytes()
    assert thumb.headers["Cache-Control"] == "no-store"
    assert thumb.headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in thumb.headers["X-Robots-Tag"]
    photo = staff.get(f"/staff/photo/{with_thumb.id}.jpg")
    assert photo.status_code == 200 and photo.data == with_thumb.path.read_bytes()
    fallback = staff.get(f"/staff/thumb/{without.id}.jpg")
    assert fallback.status_code == 200 and fallback.data == without.path.read_bytes()
    assert store.get(with_thumb.id).downloads == 0  # staff views are not downloads


def test_unknown_and_weird_ids(staff, store) -> None:
    [capture] = _publish(store, 1)
    for url in (f"/staff/thumb/{capture.id + 1}.jpg", f"/staff/photo/{capture.id + 1}.jpg",
                "/staff/thumb/0.jpg", "/staff/photo/-1.jpg", "/staff/photo/abc.jpg",
                "/staff/photo/1e3.jpg", f"/staff/photo/{10**30}.jpg", "/staff/photo/.jpg",
                "/staff/photo/%D9%A3.jpg"):
        assert staff.get(url).status_code == 404, url
    assert staff.get("/staff/thumb/%00.jpg").status_code == 400  # a control character
    for ids in ("abc", "-1", "1.0", " ", "", str(10**30), "1e3", "٣", str(2**63)):
        response = _post(staff, "/staff/delete", {"ids": ids})
        assert response.status_code == 400, ids
    for age in ("", "2h", "1H", "3600"):
        assert _post(staff, "/staff/purge-older", {"age": age}).status_code == 400
    for confirm in ("", "no", "YES"):
        assert _post(staff, "/staff/purge", {"confirm": confirm}).status_code == 400
    _intact(store, capture)
    unknown = _post(staff, "/staff/delete", {"ids": str(capture.id + 1)})
    assert unknown.status_code == 303
    assert "Deleted 0 photos. 1 photo had already been deleted." in staff.get("/staff").text
    _intact(store, capture)


def test_station_status(staff, store) -> None:
    assert "Station not running" in staff.get("/staff").text
    status = {"camera": "ok", "fps": 24.46, "updated_at": time.time()}
    store.set_setting("station_status", json.dumps(status))
    _publish(store, 2)
    _publish(store, 1, now=time.time() - 2 * 86400)
    page = staff.get("/staff").text
    assert "Camera OK" in page and "Station not running" not in page
    assert "<b>24.5</b><span>preview frames per second" in page
    assert "<b>3</b><span>photos stored" in page
    today = 3 if datetime.now().date() == datetime.fromtimestamp(
        time.time() - 2 * 86400).date() else 2
    assert f"<b>{today}</b><span>captures today" in page
    assert re.search(r"<b>[\d.]+ [kMGT]?B</b><span>disk free", page)

    assert "shared store is offline" not in page

    status.update(camera="reconnecting", updated_at=time.time())
    store.set_setting("station_status", json.dumps(status))
    assert "Camera reconnecting" in staff.get("/staff").text

    # A station whose uploader cannot reach the shared store: a banner says so.
    status.update(offline=True, backlog=7)
    store.set_setting("station_status", json.dumps(status))
    assert ("The shared store is offline.</b> 7 captures wait on the station and go up "
            "when the store is back.") in staff.get("/staff").text

    status["updated_at"] = time.time() - 11
    store.set_setting("station_status", json.dumps(status))
    assert "Station not running" in staff.get("/staff").text
    for garbage in ("", "{", "[]", '{"camera": "ok"}', '{"updated_at": "x"}',
                    '{"updated_at": NaN}', "null"):
        store.set_setting("station_status", garbage)
        page = staff.get("/staff")
        assert page.status_code == 200 and "Station not running" in page.text



def test_station_status_row() -> None:
    """The row keeps the JSON older booths wrote and read; a key it lacks takes its default."""
    status = StationStatus("ok", 24.5, 1e9)
    assert json.loads(status.to_json()) == {"camera": "ok", "fps": 24.5, "updated_at": 1e9,
                                            "backlog": 0, "offline": False}
    assert StationStatus.from_json(status.to_json()) == status
    assert StationStatus.from_json('{"updated_at": 5}') == StationStatus(updated_at=5.0)
    for garbage in (None, "", "{", "[]", '{"updated_at": "x"}', '{"updated_at": NaN}', "null"):
        assert StationStatus.from_json(garbage) is None


def test_web_app_loads_no_camera_code() -> None:
    """Imports point one way: the web app reads the station's status without loading the
    station's camera, vision or OpenCV code (a `booth serve` has none of them)."""
    code = ("import sys, booth.webapp, booth.webapp.staff; print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('cv2', 'mediapipe') "
            "or m.startswith(('booth.camera', 'booth.vision', 'booth.station'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]", out

# --- delete and purge ------------------------------------------------------------------


def test_delete_one(staff, store) -> None:
    keep1, victim, keep2 = _publish(store, 3)
    response = _post(staff, "/staff/delete", {"ids": str(victim.id)})
    assert response.status_code == 303 and response.headers["Location"].endswith("/staff")
    _gone(store, victim)
    _intact(store, keep1)
    _intact(store, keep2)
    page = staff.get("/staff").text
    assert "Deleted 1 photo." in page and f"/staff/thumb/{victim.id}.jpg" not in page
    assert staff.get(f"/staff/photo/{victim.id}.jpg").status_code == 404


def test_delete_several(staff, store) -> None:
    captures = _publish(store, 4)
    victims = [captures[0], captures[2], captures[3]]
    data = {"ids": [str(c.id) for c in victims] + [str(captures[0].id)]}  # a repeat is harmless
    response = _post(staff, "/staff/delete", data)
    assert response.status_code == 303
    for capture in victims:
        _gone(store, capture)
    _intact(store, captures[1])
    assert "Deleted 3 photos." in staff.get("/staff").text
    assert _post(staff, "/staff/delete").status_code == 303
    assert "nothing was deleted" in staff.get("/staff").text
    _intact(store, captures[1])


def test_purge_older_than(staff, store) -> None:
    old = _publish(store, 2, now=time.time() - 7200)
    new = _publish(store, 2)
    response = _post(staff, "/staff/purge-older", {"age": "1h"})
    assert response.status_code == 303
    for capture in old:
        _gone(store, capture)
    for capture in new:
        _intact(store, capture)
    assert "Deleted 2 photos older than 1 hour." in staff.get("/staff").text
    assert _post(staff, "/staff/purge-older", {"age": "3d"}).status_code == 303
    for capture in new:
        _intact(store, capture)


def test_purge_all_needs_confirmation(staff, store) -> None:
    captures = _publish(store, 3)
    page = staff.get("/staff/purge")
    assert page.status_code == 200 and "<strong>3</strong>" in page.text
    assert 'name="confirm" value="yes"' in page.text
    assert _post(staff, "/staff/purge").status_code == 400
    for capture in captures:
        _intact(store, capture)
    response = _post(staff, "/staff/purge", {"confirm": "yes"})
    assert response.status_code == 303
    for capture in captures:
        _gone(store, capture)
    assert store.count() == 0 and not any(store.photos.iterdir())
    page = staff.get("/staff").text
    assert "Deleted 3 photos" in page and "No photos are stored" in page


# --- never a 500 -----------------------------------------------------------------------

_text = st.text(max_size=40)


@pytest.mark.slow
@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(_text, max_size=4), age=_text, confirm=_text,
       path=st.text(max_size=30), as_staff=st.booleans())
def test_random_input_never_500(client, store, ids, age, confirm, path, as_staff) -> None:
    if not has_password(store):
        set_password(store, PASSWORD)
        _publish(store, 2)
    with client.session_transaction() as session:
        session.clear()
        if as_staff:
            session["staff"] = store.start_session()
    token = _token(client)
    for url, data in (("/staff/delete", {"ids": ids}), ("/staff/purge-older", {"age": age}),
                      ("/staff/purge", {"confirm": confirm})):
        response = client.post(url, data={"csrf_token": token, **data})
        assert response.status_code < 500, (url, data)
        assert response.status_code == (303 if as_staff else 403) or response.status_code == 400
    for method in (client.get, client.post, client.head):
        response = method("/staff/" + quote(path, safe="/"))
        assert response.status_code < 500, path


@pytest.mark.slow
@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=st.text(max_size=60))
def test_random_passwords_never_500(app, client, store, password) -> None:
    app.extensions["booth.limits"].limiter.reset()
    if not has_password(store):
        set_password(store, PASSWORD)
    response = client.post("/staff/login", data={"csrf_token": _token(client),
                                                  "password": password})
    assert response.status_code in (303, 401)
    assert (response.status_code == 303) == (password == PASSWORD)
