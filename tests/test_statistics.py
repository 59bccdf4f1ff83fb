"""The staff's statistics (booth.store.counts, booth.webapp.statistics): counts written where
the events happen, on both stores, surviving purges; the page in every language with its SVG
charts, behind the login; the CSV export; no axe violations in a real browser."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from booth.i18n.catalogues import shipped
from booth.store import Store
from booth.store import counts as c
from booth.store.captures import CLIP
from booth.store.passwords import set_password
from booth.webapp.languages import COOKIE
from tests.test_browser import browser  # noqa: F401 (a fixture)
from tests.test_web_staff import PASSWORD, _login

JPEG = b"\xff\xd8 a photo"
# The statistics' "now" (local time): a fixed noon, so the test's hours are today's whatever
# the time the suite runs at (a day's first hours once put them on yesterday).
NOON = datetime(2026, 6, 17, 12, 0).timestamp()


@pytest.fixture
def app(make_app):
    """The web app with its statistics counted up to NOON."""
    return make_app(clock=lambda: NOON)


def totals(store: Store, since: float = 0, until: float = 2e10) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in store.hour_counts(since, until):
        found[row.event] = found.get(row.event, 0) + row.n
    return found


def test_counts_are_written_with_their_events_and_survive_every_purge(store: Store):
    photos = [store.publish(JPEG, ttl_seconds=3600) for _ in range(3)]
    store.publish(b"mp4", ttl_seconds=3600, kind=CLIP, poster_jpeg=JPEG)
    store.record_download(photos[0].id)
    store.record_download(photos[0].id)
    store.record_download(10**9)  # no such capture: nothing counted
    assert store.delete([photos[1].id, 10**9]) == 1
    assert store.purge_older_than(0, now=time.time() + 1) == 3
    assert store.count() == 0
    assert totals(store) == {c.CAPTURE + "photo": 3, c.CAPTURE + "clip": 1,
                             c.DOWNLOAD: 2, c.DELETE: 1, c.PURGE: 3}
    # Each in the hour it happened in.
    later = time.time() + 2 * 3600
    store.publish(JPEG, ttl_seconds=3600, now=later)
    assert totals(store, later, later + 1) == {c.CAPTURE + "photo": 1}
    assert store.purge_all() == 1
    assert totals(store)[c.PURGE] == 4


def test_the_shared_store_counts_each_capture_once_when_its_station_uploads_it(
        shared, tmp_path: Path):
    """On PostgreSQL: a capture is counted when its station registers it (again after a
    crash: not twice; deleted while on its way: as it was); downloads, deletes and purges
    on the web's side; all of it outlives the purge."""
    station = Store(tmp_path / "station", shared=shared, outbox=True)
    web = Store(None, shared=shared)
    try:
        for _ in range(3):
            station.publish(JPEG, ttl_seconds=3600)
        station.start_uploader().stop(30)
        assert station.outbox.entries() == []
        entry = {"photo": "replayed.jpg"}
        captures = web.captures()
        assert len(captures) == 3
        first = captures[0]
        hashed = web.db.one("SELECT token_hash FROM captures WHERE id = ?", (first.id,))[0]
        assert web.register_pending(hashed, entry, first.created_at, first.expires_at) is True
        web.record_download(first.id)
        assert web.delete([first.id]) == 1
        # Registered again after the delete (a crash replay): refused, and not counted.
        assert web.register_pending(hashed, entry, first.created_at, first.expires_at) is False
        assert web.purge_all() == 2
        assert totals(web) == {c.CAPTURE + "photo": 3, c.DOWNLOAD: 1, c.DELETE: 1,
                               c.PURGE: 2}
    finally:
        station.close()
        web.close()


def test_a_language_picked_on_a_phone_is_counted_and_a_bad_one_is_not(client, store):
    assert client.get("/?lang=de").status_code == 303
    assert client.get("/?lang=xx").status_code == 303
    assert client.get("/?lang=es").status_code == 303
    assert totals(store) == {c.LANGUAGE + "de": 1, c.LANGUAGE + "es": 1}


@pytest.fixture
def a_day(store: Store) -> float:
    """Today's counts: captures in three hours of the day, downloads, deletes, languages,
    a camera drop-out; returns the latest hour used."""
    base = c.hour_of(NOON) - 2 * c.HOUR
    rows = {(base, c.CAPTURE + "photo"): 12, (base, c.CAPTURE + "clip"): 3,
            (base + c.HOUR, c.CAPTURE + "photo"): 5, (base + 2 * c.HOUR, c.CAPTURE + "photo"): 4,
            (base, c.DOWNLOAD): 9, (base + c.HOUR, c.DELETE): 2,
            (base, c.LANGUAGE + "de"): 3, (base, c.LANGUAGE + "fr"): 1,
            (base + c.HOUR, c.CAMERA_DROP): 1, (base + c.HOUR, c.CAMERA_DOWN_SECONDS): 125}
    store.add_counts(rows)
    return base


def test_statistics_need_the_staff_login(client, store, a_day):
    set_password(store, PASSWORD)
    for path in ("/staff/statistics", "/staff/statistics.csv?days=7"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/staff"


@pytest.mark.parametrize("code", shipped().codes)
def test_the_statistics_page_in_every_language(client, store, a_day, code: str):
    set_password(store, PASSWORD)
    client.set_cookie(COOKIE, code)
    assert _login(client).status_code == 303
    response = client.get("/staff/statistics?days=1")
    page = response.text
    assert response.status_code == 200 and f'<html lang="{code.replace("_", "-")}"' in page
    lang = shipped()[code]
    assert f"<b>{24}</b>" in page  # captures today: 12 + 3 + 5 + 4
    assert f"<b>{lang.percent(9 / 24)}</b>" in page and f"<b>{lang.percent(2 / 24)}</b>" in page
    assert f"<b>{lang.duration(125)}</b>" in page
    assert "<script" not in page and "http" not in page.split("<main", 1)[1].split(
        "</main>")[0].replace("http://www.w3.org", "")
    # Two charts, each an image with a name; 24 hourly bars, one bar a day.
    assert page.count('role="img"') == 2
    hour_bars = re.findall(r'<rect class="bar"[^>]* height="([0-9.]+)"', page)
    assert len(hour_bars) == 24 + 1
    assert sum(float(h) > 0 for h in hour_bars[:24]) == 3
    assert [float(h) for h in hour_bars[:24]].index(max(float(h) for h in hour_bars[:24])) \
        == 21  # 15 captures two hours ago: the tallest bar
    # Languages by how often chosen; no catalogue message left in English.
    assert page.index(shipped()["de"].name) < page.index(shipped()["fr"].name)
    if code != "en":
        assert "Visitors per day" not in page and "Captures per hour" not in page


def test_the_csv_has_one_row_per_hour_with_every_count(client, store, a_day):
    set_password(store, PASSWORD)
    _login(client)
    response = client.get("/staff/statistics.csv?days=7")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith(
        "attachment; filename=booth-statistics-")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [datetime.fromisoformat(r["hour"]).timestamp() for r in rows] == \
        [a_day, a_day + c.HOUR, a_day + 2 * c.HOUR]
    assert [(r["captures_photo"], r["captures_clip"], r["downloads"], r["deletes"],
             r["camera_down_seconds"], r["language_de"]) for r in rows] == [
        ("12", "3", "9", "0", "0", "3"), ("5", "0", "0", "2", "125", "0"),
        ("4", "0", "0", "0", "0", "0")]
    # A period nobody offers falls back to the default; older hours are left out.
    store.add_counts({(c.hour_of(NOON - 40 * 86400), c.DOWNLOAD): 5})
    assert len(list(csv.DictReader(io.StringIO(
        client.get("/staff/statistics.csv?days=999").text)))) == 3


def test_per_day_counts_a_week_of_days(client, store):
    set_password(store, PASSWORD)
    _login(client)
    today = datetime.fromtimestamp(NOON)
    store.add_counts({(c.hour_of((today - timedelta(days=d)).timestamp()),
                       c.CAPTURE + "photo"): 10 * (d + 1) for d in range(9)})
    page = client.get("/staff/statistics?days=7").text
    day_table = page.split('id="days-title"')[1]
    numbers = [int(n) for n in re.findall(r"<tr><td>[^<]+</td><td>(\d+)</td></tr>", day_table)]
    assert numbers == [70, 60, 50, 40, 30, 20, 10]  # 7 days, oldest first; day 8, 9 left out
    assert "<b>280</b>" in page


@pytest.mark.browser
@pytest.mark.slow
def test_the_statistics_page_has_no_axe_violations_in_any_language(
        store, make_app, browser, a_day):  # noqa: F811 (a fixture)
    from booth.webapp.server import WebServer
    from tests.conftest import unavailable
    from tests.test_accessibility import AXE, check, open_page
    from tests.test_browser import DESKTOP, TIMEOUT_MS

    if not AXE.is_file():
        unavailable(f"axe-core is missing at {AXE} (run scripts/setup-tests)")
    set_password(store, PASSWORD)
    server = WebServer(make_app(testing=False, clock=lambda: NOON), "127.0.0.1", 0)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        for code in shipped().codes:
            context = browser.new_context(**DESKTOP, locale=code.replace("_", "-"),
                                          bypass_csp=True)
            try:
                context.set_default_timeout(TIMEOUT_MS)
                page = context.new_page()
                open_page(page, f"{base}/staff", 200)
                page.fill("#password", PASSWORD)
                with page.expect_navigation():
                    page.locator("form.login button[type=submit]").click()
                open_page(page, f"{base}/staff/statistics", 200)
                check(page, AXE, code, "statistics")
                page.locator("details summary").first.click()  # the table opened
                check(page, AXE, code, "statistics with a table open")
                if code == "en":
                    page.screenshot(path=str(Path(store.data_dir) / "statistics.png"),
                                    full_page=True)
            finally:
                context.close()
    finally:
        server.close()
