"""Issue 12 (5): two `booth serve` processes behind one address, as two apps on one real
PostgreSQL database and bucket. A phone or an attacker gets the rate limits once in total,
not once per server (the counts are rows in PostgreSQL, read back here), and a staff session
ended on one server is ended on the other. On the default store each app still counts in
its own memory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from booth.clock import ManualClock
from booth.config import Config
from booth.store import Shared, Store
from booth.store.outbox import Uploader
from booth.store.passwords import set_password
from booth.webapp.security import SharedStorage
from booth.webapp.server import Janitor
from tests.test_web_staff import PASSWORD, _logged_in, _login, _post
from tests.test_web_visitor import jpeg

FAKE = "C" * 20  # + two digits: well-formed tokens no photo has
CLIENT = "127.0.0.1"  # the test client's address
LOGIN_KEY = f"LIMITER/{CLIENT}/login/10/15/minute"


@pytest.fixture
def servers(shared: Shared) -> Iterator[tuple[Store, Store]]:
    """Two servers' stores on one database and bucket."""
    with contextlib.ExitStack() as stack:
        yield tuple(stack.enter_context(contextlib.closing(Store(None, shared=shared)))
                    for _ in range(2))


def _uploaded(shared: Shared, folder: Path):
    """A photo a station has taken and uploaded."""
    station = Store(folder, shared=shared, outbox=True)
    try:
        capture = station.publish(jpeg(1), ttl_seconds=3600)
        Uploader(station, station.outbox).upload_all()
        return capture
    finally:
        station.close()


def _hits(pg_url: str, key: str) -> int | None:
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT hits FROM rate_limits WHERE key = %s", (key,)).fetchone()
    return None if row is None else row[0]


def _keys(pg_url: str) -> set[str]:
    with psycopg.connect(pg_url) as conn:
        return {row[0] for row in conn.execute("SELECT key FROM rate_limits").fetchall()}


def _attempt(client, password: str) -> int:
    return _login(client, password).status_code


def test_staff_login_failures_count_on_every_server(servers, pg_url, make_app) -> None:
    set_password(servers[0], PASSWORD)
    a, b = [make_app(store=s).test_client() for s in servers]
    assert [_attempt(a, "nope") for _ in range(5)] == [401] * 5
    assert _attempt(b, PASSWORD) == 303  # a success is given back: only failures count
    assert [_attempt(b, "nope") for _ in range(5)] == [401] * 5
    assert _hits(pg_url, LOGIN_KEY) == 10
    assert _attempt(a, "nope") == 429 and _attempt(b, "nope") == 429
    assert _attempt(a, PASSWORD) == 429  # refused, even right, on every server
    assert _hits(pg_url, LOGIN_KEY) == 10  # refusals are not counted
    # Another address has a count of its own.
    other = {"environ_base": {"REMOTE_ADDR": "10.1.2.3"}}
    assert _login(b, PASSWORD, **other).status_code == 303


def test_misses_count_on_every_server_and_a_valid_link_still_works(
        servers, shared, pg_url, tmp_path, make_app) -> None:
    capture = _uploaded(shared, tmp_path / "station")
    a, b = [make_app(store=s).test_client() for s in servers]
    statuses = [client.get(f"/p/{FAKE}{i:02d}").status_code
                for i, client in enumerate([a, b] * 10)]
    assert statuses[:15] == [404] * 15 and set(statuses[15:]) == {429}, statuses
    assert _hits(pg_url, f"LIMITER/{CLIENT}/photo-miss/15/1/minute") == 15
    assert _hits(pg_url, f"LIMITER/{CLIENT}/photo-miss/60/1/hour") == 15
    assert _hits(pg_url, f"LIMITER/{CLIENT}/photo/60/1/minute") == 20  # every request
    # Misses lock out scans, never a visitor's own link (a carrier's NAT shares addresses).
    assert a.get(f"/p/{capture.token}/photo.jpg").data == jpeg(1)
    assert b.get(f"/p/{capture.token}").status_code == 200


def test_photo_requests_count_on_every_server(servers, shared, pg_url, tmp_path, make_app) -> None:
    capture = _uploaded(shared, tmp_path / "station")
    cfg = Config()
    cfg.server.photo_requests_per_minute = 4
    a, b = [make_app(cfg, store=s).test_client() for s in servers]
    url = f"/p/{capture.token}/photo.jpg"
    assert [c.get(url).status_code for c in (a, b, a, b)] == [200] * 4
    assert a.get(url).status_code == 429 and b.get(url).status_code == 429
    assert _hits(pg_url, f"LIMITER/{CLIENT}/photo/4/1/minute") == 4


def test_windows_end_and_the_janitor_deletes_them(servers, pg_url) -> None:
    # Seconds since the epoch from the test's clock, in 2001: long past for the janitor.
    clock = ManualClock(start=1_000_000_000.0)
    storage = SharedStorage(counts=servers[0].rate_counts, clock=clock.monotonic)
    other = SharedStorage(counts=servers[1].rate_counts, clock=clock.monotonic)
    login, miss = parse("10 per 15 minutes"), parse("15 per minute")
    limiter, limiter_b = FixedWindowRateLimiter(storage), FixedWindowRateLimiter(other)
    assert all(limiter.hit(login, CLIENT, "login") for _ in range(5))
    assert all(limiter_b.hit(login, CLIENT, "login") for _ in range(5))
    assert not limiter.hit(login, CLIENT, "login")
    assert storage.get(LOGIN_KEY) == 11
    assert storage.get_expiry(LOGIN_KEY) == clock.monotonic() + 15 * 60
    assert limiter.hit(miss, CLIENT, "photo-miss")

    clock.advance(15 * 60 - 1)  # a second before the login window ends
    assert not limiter_b.hit(login, CLIENT, "login")
    clock.advance(1)  # ended: a new window, counted from one
    assert storage.get(LOGIN_KEY) == 0
    assert other.decr(LOGIN_KEY) == 0  # nothing to give back from an ended window
    assert limiter_b.hit(login, CLIENT, "login") and storage.get(LOGIN_KEY) == 1
    assert storage.get_expiry(LOGIN_KEY) == clock.monotonic() + 15 * 60
    assert _hits(pg_url, LOGIN_KEY) == 1

    # One round of the janitor (every server runs one, on the wall clock) deletes the
    # windows that have ended and keeps those that run on.
    assert _keys(pg_url) == {LOGIN_KEY, f"LIMITER/{CLIENT}/photo-miss/15/1/minute"}
    live = FixedWindowRateLimiter(SharedStorage(counts=servers[0].rate_counts))
    assert live.hit(login, "10.1.2.3", "login")
    janitor = Janitor(servers[1])
    janitor.start()
    janitor.stop()  # after its first round
    assert _keys(pg_url) == {"LIMITER/10.1.2.3/login/10/15/minute"}


def test_parallel_hits_on_two_servers_pass_exactly_the_limit(servers, pg_url) -> None:
    login = parse("10 per 15 minutes")
    limiters = [FixedWindowRateLimiter(SharedStorage(counts=s.rate_counts)) for s in servers]
    with ThreadPoolExecutor(16) as pool:
        passed = list(pool.map(lambda i: limiters[i % 2].hit(login, CLIENT, "login"),
                               range(40)))
    assert passed.count(True) == 10 and _hits(pg_url, LOGIN_KEY) == 40


def test_logout_and_a_new_password_end_sessions_on_every_server(servers, make_app) -> None:
    set_password(servers[0], PASSWORD)
    a, b = [make_app(store=s).test_client() for s in servers]
    assert _attempt(a, PASSWORD) == 303
    b.set_cookie("booth_session", a.get_cookie("booth_session").value)
    assert _logged_in(b)
    assert _post(b, "/staff/logout").status_code == 303
    assert not _logged_in(a)  # the same cookie, ended on the other server

    assert _attempt(a, PASSWORD) == 303
    b.set_cookie("booth_session", a.get_cookie("booth_session").value)
    set_password(servers[1], "a brand new password")
    assert not _logged_in(a) and not _logged_in(b)
    assert _attempt(a, PASSWORD) == 401  # the old password, on the server that kept it
    assert _attempt(a, "a brand new password") == 303


def test_on_the_default_store_each_app_counts_in_its_own_memory(store, make_app) -> None:
    a, b = [make_app().test_client() for _ in range(2)]
    assert store.rate_counts is None
    assert [a.get(f"/p/{FAKE}{i:02d}").status_code for i in range(16)] == [404] * 15 + [429]
    assert [b.get(f"/p/{FAKE}{i:02d}").status_code for i in range(16)] == [404] * 15 + [429]
