"""Bad input: a damaged database, a photo deleted behind the app's back, and hostile requests
on every route of the real app, through Flask's test client and over real waitress.

Each must get a clear message or page: never a 500, never a traceback, never a photo without
its valid token, and nothing stops the station or the server. (A corrupt plate, a wrong
checksum and a corrupt config are covered by test_cli_errors.py, test_plate.py and
test_config.py.)
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

import pytest

from booth.store import Store
from booth.store.passwords import set_password
from booth.webapp.security import LockedMemoryStorage
from tests.conftest import ROOT, asset
from tests.test_cli_errors import error_line
from tests.test_web_visitor import csrf_from, publish

ENV = dict(os.environ, PYTHONPATH=str(ROOT))
PASSWORD = "correct horse battery"
FAKE = "C" * 22  # well formed, unknown
LEAKS = (b"SQLite format 3", b"Traceback", b"{%", b"root:x:0:0", b"token_hash")


# --- a damaged database ------------------------------------------------------------------


def _damage(db: Path, how: str) -> None:
    """Damage a real booth database the way a bad disk or a cut write does."""
    if how == "random bytes":
        db.write_bytes(random.Random(7).randbytes(db.stat().st_size))
        return
    if how == "cut in half":
        db.write_bytes(db.read_bytes()[:db.stat().st_size // 2])
        return
    # One garbled page of one b-tree: the token index every photo link uses, or the settings
    # table the web app reads at start-up. The file's header and schema stay intact.
    name = {"a garbled index page": "sqlite_autoindex_captures_1",
            "a garbled settings page": "settings"}[how]
    con = sqlite3.connect(db)
    try:
        page_size = con.execute("PRAGMA page_size").fetchone()[0]
        root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                           (name,)).fetchone()[0]
    finally:
        con.close()
    data = bytearray(db.read_bytes())
    data[(root - 1) * page_size:root * page_size] = random.Random(root).randbytes(page_size)
    db.write_bytes(bytes(data))


@pytest.fixture
def damaged(tmp_path: Path, request) -> tuple[Path, bytes, list[str]]:
    """A data dir whose database was damaged after a day of use; (dir, db bytes, photos)."""
    data = tmp_path / "data"
    store = Store(data)
    for i in range(40):
        publish(store, i)
    set_password(store, PASSWORD)
    store.close()
    for leftover in data.glob("booth.sqlite3-*"):  # checkpointed on close
        leftover.unlink()
    db = data / "booth.sqlite3"
    _damage(db, request.param)
    return data, db.read_bytes(), sorted(os.listdir(data / "photos"))


CORRUPTIONS = ["random bytes", "cut in half", "a garbled index page", "a garbled settings page"]


@pytest.mark.parametrize("damaged", CORRUPTIONS, indirect=True)
@pytest.mark.parametrize("command", ["serve", "run"])
@pytest.mark.slow
def test_a_damaged_database_stops_serve_and_run_with_one_line(damaged, command, tmp_path):
    data, before, photos = damaged
    args = ["--host", "127.0.0.1", "--port", "0", "--data-dir", str(data)]
    if command == "run":  # if the damage went unnoticed, this would take a photo and exit 0
        args += ["--headless", "--source", str(asset("people/skimage_astronaut.png")),
                 "--auto-capture", "0.1", "--max-captures", "1"]
    try:
        result = subprocess.run([sys.executable, "-m", "booth", command, *args], cwd=tmp_path,
                                env=ENV, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`booth {command}` started on a damaged database")
    line = error_line(result)
    assert result.returncode == 1
    assert f"database {data / 'booth.sqlite3'} is not a booth database or is corrupt (" in line
    assert "move it aside" in line
    assert (data / "booth.sqlite3").read_bytes() == before  # left as it was, for recovery
    assert sorted(os.listdir(data / "photos")) == photos  # no sweep against a bad database


# --- a photo deleted behind the app's back ---------------------------------------------------


def _staff_client(app, store: Store):
    set_password(store, PASSWORD)
    client = app.test_client()
    page = client.get("/staff").get_data(as_text=True)
    r = client.post("/staff/login", data={"csrf_token": csrf_from(page), "password": PASSWORD})
    assert r.status_code == 303
    return client


def _not_found_page(r) -> None:
    assert r.status_code == 404 and r.mimetype == "text/html", (r.status_code, r.mimetype)
    assert "Not found or expired" in r.get_data(as_text=True)


def test_a_photo_file_deleted_behind_the_apps_back(store, app, tmp_path):
    whole, gone, half = publish(store, 1), publish(store, 2), publish(store, 3)
    gone.path.unlink()
    gone.thumb_path.unlink()
    half.path.unlink()  # only the photo: its thumbnail is still there
    visitor = app.test_client()
    for capture in (gone, half):
        for url in (f"/p/{capture.token}", f"/p/{capture.token}/photo.jpg",
                    f"/p/{capture.token}/download", f"/p/{capture.token}/delete"):
            _not_found_page(visitor.get(url))
        page = visitor.get(f"/p/{whole.token}/delete").get_data(as_text=True)
        _not_found_page(visitor.post(f"/p/{capture.token}/delete",
                                     data={"csrf_token": csrf_from(page)}))
    assert visitor.get(f"/p/{whole.token}/photo.jpg").data == whole.path.read_bytes()

    staff = _staff_client(app, store)
    gallery = staff.get("/staff")
    assert gallery.status_code == 200
    ids = re.findall(r'name="ids" value="(\d+)"', gallery.get_data(as_text=True))
    assert set(map(int, ids)) == {c.id for c in (whole, gone, half)}
    for url in (f"/staff/thumb/{gone.id}.jpg", f"/staff/photo/{gone.id}.jpg",
                f"/staff/photo/{half.id}.jpg"):
        r = staff.get(url)
        assert r.status_code == 404 and r.mimetype == "text/html"
        assert "Photo not found" in r.get_data(as_text=True)
    assert staff.get(f"/staff/thumb/{half.id}.jpg").data == half.thumb_path.read_bytes()

    # The next start's sweep takes the rows whose photo is gone, and the orphaned thumbnail.
    data = store.data_dir
    store.close()
    again = Store(data)
    try:
        assert again.get(gone.id) is None and again.get(half.id) is None
        assert again.get(whole.id) is not None and whole.path.is_file()
        assert not half.thumb_path.exists()
        assert sorted(os.listdir(data / "photos")) == sorted(
            [whole.path.name, whole.thumb_path.name])
    finally:
        again.close()


def test_a_stale_gallery_never_reaches_another_visitors_photo(store, app):
    """The visitor deletes the newest photo while the staff gallery still shows it, then the
    station takes the next one: that one must not get the deleted photo's id, or the staff's
    thumbnail and delete would reach the new visitor's photo. (The two-process load found it:
    SQLite hands a deleted newest row's id to the next row.)"""
    staff = _staff_client(app, store)
    older, newest = publish(store, 1), publish(store, 2)
    gallery = staff.get("/staff").get_data(as_text=True)
    assert f'value="{newest.id}"' in gallery
    page = app.test_client()
    form = page.get(f"/p/{newest.token}/delete").get_data(as_text=True)
    assert page.post(f"/p/{newest.token}/delete",
                     data={"csrf_token": csrf_from(form)}).status_code == 200
    taken_after = publish(store, 3)
    assert taken_after.id not in (older.id, newest.id)
    assert staff.get(f"/staff/thumb/{newest.id}.jpg").status_code == 404
    r = staff.post("/staff/delete", data={"csrf_token": csrf_from(gallery),
                                          "ids": str(newest.id)})
    assert r.status_code == 303
    assert "1 photo had already been deleted" in staff.get("/staff").get_data(as_text=True)
    assert store.get(taken_after.id) is not None and taken_after.path.is_file()
    # Purging everything does not restart the ids either.
    store.purge_all()
    assert publish(store, 4).id > taken_after.id
    # ...nor does a restart.
    data = store.data_dir
    store.close()
    again = Store(data)
    try:
        assert publish(again, 5).id > taken_after.id + 1
    finally:
        again.close()


# --- hostile requests ----------------------------------------------------------------------


@dataclass
class Case:
    """One request; `target` is what goes on the request line (already percent-encoded)."""
    what: str
    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    staff: bool = False  # send the logged-in staff session
    wire_only: bytes | None = None  # a raw request line target no client library sends
    expect: frozenset[int] = frozenset()  # the statuses it must get, if it matters


TRAVERSALS = [
    "../../booth.sqlite3", "..%2f..%2fbooth.sqlite3", "%2e%2e/%2e%2e/booth.sqlite3",
    "%2e%2e%2f%2e%2e%2fdata%2fbooth.sqlite3", "..%5c..%5cbooth.sqlite3",
    "%c0%ae%c0%ae/%c0%ae%c0%ae/booth.sqlite3", "....//....//etc/passwd", "%252e%252e%252f",
    "../templates/base.html", "%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "%00", "booth.css%00.jpg", FAKE + "%00", "%00../../booth.sqlite3", "%ff%fe%fd",
    "%e2%80%ae", "A" * 10_000,
]
HOSTS = ["evil.example", "evil.example:8000", "", "a" * 5000, "a" * 64 + ".com", "a..b", ".",
         "xn--zz", "[::1", "127.0.0.1:99999", "ex ample.com", "evil.example/../x",
         "evil.example@127.0.0.1", "\u00e9vil.example"]
METHODS = ["PUT", "DELETE", "PATCH", "PROPFIND", "TRACE", "FOO", "OPTIONS", "HEAD"]
COOKIES = ["booth_session=garbage", "booth_session=", "booth_session=" + "a" * 4000,
           "booth_session=eyJzdGFmZiI6IngifQ.ZZZZZZ.c2lnbmF0dXJlLWZvcmdlZA",
           'booth_session="quoted;value"', "booth_session=.eJyrVkpOLMpMz1OyUsrIz0tV0lFKLC0uyS8",
           "booth_session=a; booth_session=b", "=; ;;=;booth_session"]
CSRF_TOKENS = ["garbage", "", "A" * 10_000, "é", "IjRlYjA.Z.Z",
               "ImQ2ZGQ4ZTdkYTE4OTMxYTJkN2QwNmQ0YjQzZTRjYjEwIg.ZZZZZZ.forgedforgedforged"]
NOT_ALLOWED = frozenset({405, 403})  # 403: the staff guard refuses a stranger first
TOO_MUCH = frozenset({413})  # MAX_CONTENT_LENGTH is 64 kB
QUERIES = ["a=%ff%fe", "%ff=%fe", "a=%c0%80", "a=%00", "%=%%", "a=" + "%ff" * 3000]


def _example(rule, token: str) -> str:
    """A concrete path for a URL rule, with valid-looking values."""
    values = {"token": token, "name": "Lato-Regular.ttf", "capture_id": "1",
              "filename": "booth.css"}
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], rule.rule)


def _hostile_paths(rule) -> list[str]:
    """The rule's path with each hostile value in place of each of its variables."""
    if not rule.arguments:
        base = rule.rule.rstrip("/")
        return [f"{base}/{t}" for t in TRAVERSALS[:6]] + [f"{base}/{'A' * 10_000}"]
    return [re.sub(r"<(?:\w+:)?\w+>", t, rule.rule) for t in TRAVERSALS]


def cases(app, real_token: str) -> list[Case]:
    out: list[Case] = []
    rules = [r for r in app.url_map.iter_rules()]
    assert {r.endpoint for r in rules} >= {
        "visitor.home", "visitor.fonts", "visitor.photo_page", "visitor.photo_image",
        "visitor.download", "visitor.confirm_delete", "visitor.delete", "static",
        "staff.index", "staff.login", "staff.logout", "staff.thumb", "staff.photo",
        "staff.delete", "staff.purge_older", "staff.confirm_purge", "staff.purge"}
    for rule in rules:
        method = "POST" if "POST" in rule.methods else "GET"
        staff = rule.endpoint.startswith("staff.")
        for token in (FAKE, real_token):
            path = _example(rule, token)
            batch = [Case(f"{m} {rule.rule}", m, path,
                          expect=frozenset() if m in ("OPTIONS", "HEAD") else NOT_ALLOWED)
                     for m in METHODS]
            batch += [Case(f"Host {h[:20]!r}", method, path, {"Host": h}) for h in HOSTS]
            batch += [Case(f"query {q[:12]}", method, f"{path}?{q}") for q in QUERIES]
            batch += [Case("huge header", method, path, {"X-Big": "a" * 100_000}),
                      Case("many headers", method, path,
                           {f"X-H{i}": "v" * 50 for i in range(90)}),
                      Case("spoofed XFF", method, path,
                           {"X-Forwarded-For": "8.8.8.8", "X-Real-IP": "8.8.8.8",
                            "Forwarded": "for=8.8.8.8", "X-Forwarded-Host": "evil.example",
                            "X-Forwarded-Proto": "https"}),
                      Case("raw query", method, path,
                           wire_only=f"{path}?a=\xff\xfe&\xff".encode("latin-1")),
                      Case("raw path", method, path, wire_only=path.encode() + b"\xff\x80")]
            out += batch
            out += [Case(f"cookie {c[:30]!r}", method, path, {"Cookie": c}) for c in COOKIES]
            if staff:  # the same once more for a logged-in member of staff
                out += [Case(f"staff {c.what}", c.method, c.target, c.headers, c.body, True,
                             c.wire_only, c.expect) for c in batch]
        for who in {False, staff}:
            out += [Case(f"path {p[:30]!r}", method, p, staff=who) for p in _hostile_paths(rule)]
        if "POST" in rule.methods:
            path = _example(rule, real_token)
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            for who in (False, True) if staff else (False,):
                out += [Case(f"csrf {t[:12]!r}", "POST", path, form,
                             f"csrf_token={quote(t)}&ids=1&confirm=yes&age=1h&password=x"
                             .encode(), who, expect=frozenset({400})) for t in CSRF_TOKENS]
                out += [Case("huge form", "POST", path, form, b"x=" + b"a" * 100_000, who,
                             expect=TOO_MUCH),
                        Case("huge multipart", "POST", path,
                             {"Content-Type": "multipart/form-data; boundary=XX"},
                             b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
                             + b"b" * 100_000 + b"\r\n--XX--\r\n", who, expect=TOO_MUCH),
                        Case("10k fields", "POST", path, form, b"&".join(
                            b"f%d=1" % i for i in range(10_000)), who, expect=TOO_MUCH),
                        Case("bad multipart", "POST", path,
                             {"Content-Type": "multipart/form-data; boundary="}, b"--\r\n", who),
                        Case("form of NULs", "POST", path, form, b"csrf_token=%00&\x00=\xff",
                             who)]
    out += [Case("long path", "GET", "/" + "x" * 10_000),
            Case("root traversal", "GET", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
            Case("double slash", "GET", "//etc/passwd"),
            Case("photo then traversal", "GET", f"/p/{real_token}/../../booth.sqlite3"),
            Case("photo then NUL", "GET", f"/p/{real_token}%00/photo.jpg"),
            Case("photo with a dot", "GET", f"/p/{real_token}./photo.jpg"),
            Case("photo upper case", "GET", f"/P/{real_token}/photo.jpg"),
            Case("GET with a body", "GET", f"/p/{real_token}", body=b"a" * 100_000)]
    return out


def _allowed_image(case: Case, real, status: int, mimetype: str, body: bytes) -> bool:
    """A photo only for its valid token, on the photo's own URL, and whole."""
    plain_target = case.target.split("?")[0]
    ok_target = plain_target in (f"/p/{real.token}/photo.jpg", f"/p/{real.token}/download")
    staff_target = case.staff and plain_target in (f"/staff/photo/{real.id}.jpg",
                                                   f"/staff/thumb/{real.id}.jpg")
    if not (ok_target or staff_target):
        return False
    if case.method == "HEAD":
        return True
    return body in (real.path.read_bytes(), real.thumb_path.read_bytes())


def check(case: Case, real, status: int, headers: dict[str, str], body: bytes, *,
          flask_page: bool) -> list[str]:
    """Everything that must hold for any answer to a hostile request."""
    problems = []
    mimetype = headers.get("content-type", "").split(";")[0].strip()
    if status >= 500:
        problems.append(f"{status}")
    elif case.expect and status not in case.expect:
        problems.append(f"{status}, not {sorted(case.expect)}")
    if status == 413 and flask_page and b"Too much" not in body:
        problems.append("413 without its page")
    if not mimetype.startswith("image/") and any(leak in body for leak in LEAKS):
        problems.append("leaks " + repr([leak for leak in LEAKS if leak in body]))
    if mimetype.startswith("image/") and not _allowed_image(case, real, status, mimetype, body):
        problems.append(f"a photo ({mimetype}) without its valid token")
    location = headers.get("location", "")
    if "evil" in location or location.startswith("//") or "8.8.8.8" in location:
        problems.append(f"redirects to {location!r}")
    if flask_page and 400 <= status < 500 and case.method != "HEAD" and (
            mimetype != "text/html" or b"<h1>" not in body):
        problems.append(f"{status} is not one of the app's pages ({mimetype})")
    return [f"{case.what} {case.method} {case.target[:60]!r}: {p}" for p in problems]


def _photo_ok(store: Store, real) -> None:
    assert store.get(real.id) is not None and real.path.is_file(), "a hostile request deleted it"


@pytest.mark.slow
def test_hostile_requests_on_every_route_with_the_test_client(store, app):
    real = publish(store, 5)
    staff = _staff_client(app, store)
    staff_cookie = "booth_session=" + staff.get_cookie("booth_session").value
    problems, seen = [], set()
    for case in cases(app, real.token):
        if case.wire_only is not None or case.headers.get("Host") == "xn--zz":
            continue  # (the test client itself fails to decode that host: waitress test)
        app.extensions["booth.limits"].limiter.reset()  # tested on their own below
        headers = dict(case.headers)
        if case.staff:
            headers["Cookie"] = staff_cookie
        client = app.test_client(use_cookies=False)  # its cookie jar chokes on "xn--zz"
        path, _, query = case.target.partition("?")
        environ = {"QUERY_STRING": query} if query else {}
        if path.startswith("//"):  # the test client would take it for a host: as a server does
            environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
            path = "/"
        if "Host" in headers:
            environ["HTTP_HOST"] = headers.pop("Host")
        r = client.open(path, method=case.method, headers=headers, data=case.body or None,
                        environ_overrides=environ)
        body = r.get_data()
        seen.add(r.status_code)
        problems += check(case, real, r.status_code,
                          {k.lower(): v for k, v in r.headers.items()}, body, flask_page=True)
        _photo_ok(store, real)
    assert not problems, "\n".join(problems[:20])
    assert {200, 302, 400, 403, 404, 405, 413} <= seen, seen


def test_a_spoofed_forwarded_for_does_not_dodge_the_rate_limit(app):
    """The limiter keys on the real remote address, whatever the request claims."""
    limiter = app.extensions["booth.limits"].limiter
    assert isinstance(limiter.storage, LockedMemoryStorage)  # see its docstring
    client = app.test_client()
    statuses = []
    for i in range(20):
        spoof = f"10.0.{i}.{i}"
        r = client.get(f"/p/{'D' * 22}", headers={
            "X-Forwarded-For": spoof, "X-Real-IP": spoof, "Forwarded": f"for={spoof}",
            "True-Client-IP": spoof, "CF-Connecting-IP": spoof},
            environ_base={"REMOTE_ADDR": "192.0.2.7"})
        statuses.append(r.status_code)
    assert statuses[:15] == [404] * 15 and set(statuses[15:]) == {429}, statuses
    other = client.get(f"/p/{'D' * 22}", headers={"X-Forwarded-For": "192.0.2.7"},
                       environ_base={"REMOTE_ADDR": "192.0.2.8"})
    assert other.status_code == 404  # another phone is not blocked by the first one's misses


# --- the same over real waitress on loopback --------------------------------------------------


def wire(port: int, source: str, raw: bytes, method: str) -> tuple[int, dict, bytes]:
    """Send raw bytes to the server from a loopback source address and parse the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0))
    try:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)  # (it may answer and close before reading it all)
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
        except ConnectionResetError:
            return 0, {}, b""
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        sock.close()


def _request(case: Case, staff_cookie: str) -> bytes:
    target = case.wire_only if case.wire_only is not None else case.target.encode("latin-1")
    headers = {"Host": "127.0.0.1", **case.headers, "Connection": "close"}
    if case.staff:
        headers["Cookie"] = staff_cookie
    if case.body:
        headers["Content-Length"] = str(len(case.body))
    lines = [case.method.encode() + b" " + target + b" HTTP/1.1"]
    lines += [f"{k}: {v}".encode() for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + case.body


class Served:
    """`booth serve` on 127.0.0.1 and a free port, its stderr collected."""

    def __init__(self, data: Path, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "booth", "serve", "--host", "127.0.0.1", "--port", "0",
             "--data-dir", str(data), "--config", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=ENV)
        line = self.proc.stderr.readline().decode()
        found = re.search(r"serving on http://\S+?:(\d+)", line)
        assert found, line
        self.port = int(found.group(1))
        self.stderr = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):
            self.stderr += chunk

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        self.proc.stderr.close()


@pytest.fixture
def served(tmp_path: Path):
    data = tmp_path / "data"
    config = tmp_path / "booth.toml"
    config.write_text("[server]\nphoto_requests_per_minute = 60\n")  # production's default
    store = Store(data)
    set_password(store, PASSWORD)
    server = Served(data, config)
    try:
        yield server, store
    finally:
        server.close()
        store.close()


def _staff_login(port: int, source: str) -> str:
    status, headers, body = wire(port, source, b"GET /staff HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 b"Connection: close\r\n\r\n", "GET")
    cookie = headers["set-cookie"].split(";")[0]
    form = f"csrf_token={quote(csrf_from(body.decode()))}&password={quote(PASSWORD)}".encode()
    status, headers, _ = wire(port, source, b"POST /staff/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Content-Type: application/x-www-form-urlencoded\r\n"
                              + f"Cookie: {cookie}\r\nContent-Length: {len(form)}\r\n".encode()
                              + b"Connection: close\r\n\r\n" + form, "POST")
    assert status == 303, status
    return headers["set-cookie"].split(";")[0]


def _get(port: int, source: str, path: str, cookie: str = "") -> tuple[int, dict, bytes]:
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    return wire(port, source, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}"
                f"Connection: close\r\n\r\n".encode(), "GET")


@pytest.mark.slow
def test_hostile_requests_on_every_route_over_waitress(served, make_app):
    server, store = served
    real = publish(store, 5)
    gone = publish(store, 6)
    app = make_app(store=store)  # only for its URL map: the requests go to `booth serve`
    staff_cookie = _staff_login(server.port, "127.0.0.2")
    problems, seen = [], set()
    sources = [f"127.0.0.{n}" for n in range(10, 250)]  # phones, so limits are per phone
    all_cases = cases(app, real.token)
    all_cases += [Case("header over waitress's limit", "GET", f"/p/{real.token}",
                       {"X-Big": "a" * 300_000}),
                  Case("chunked huge form", "POST", "/staff/login",
                       {"Content-Type": "application/x-www-form-urlencoded",
                        "Transfer-Encoding": "chunked"},
                       b"%x\r\n" % 100_002 + b"x=" + b"a" * 100_000 + b"\r\n0\r\n\r\n",
                       expect=TOO_MUCH),
                  Case("NUL in the request line", "GET", "/p/x", wire_only=b"/p/\x00/photo.jpg"),
                  Case("no HTTP version", "GET", "/", wire_only=b"/ HTTP/9.9"),
                  Case("space in the path", "GET", "/", wire_only=b"/p/a b/photo.jpg")]
    for i, case in enumerate(all_cases):
        status, headers, body = wire(server.port, sources[i % len(sources)],
                                     _request(case, staff_cookie), case.method)
        seen.add(status)
        if status == 0 and "over waitress's limit" not in case.what:
            problems.append(f"{case.what}: connection reset")
        # waitress answers what never reaches the app (a malformed request) in plain text.
        from_app = headers.get("server") == "selfie-booth" and "x-frame-options" in headers
        problems += check(case, real, status, headers, body, flask_page=from_app)
    _photo_ok(store, real)
    assert not problems, "\n".join(problems[:20])
    assert {200, 302, 400, 403, 404, 405, 413} <= seen, seen

    # A photo deleted behind the app's back: the not-found page, and staff pages still work.
    gone.path.unlink()
    gone.thumb_path.unlink()
    for url in (f"/p/{gone.token}", f"/p/{gone.token}/photo.jpg", f"/p/{gone.token}/download"):
        status, headers, body = _get(server.port, "127.0.0.3", url)
        assert status == 404 and b"Not found or expired" in body, (url, status)
    assert _get(server.port, "127.0.0.2", "/staff", staff_cookie)[0] == 200
    for url in (f"/staff/thumb/{gone.id}.jpg", f"/staff/photo/{gone.id}.jpg"):
        status, headers, body = _get(server.port, "127.0.0.2", url, staff_cookie)
        assert status == 404 and b"Photo not found" in body, (url, status)

    # Still serving, whole photos, and not one traceback in its log.
    status, headers, body = _get(server.port, "127.0.0.4", f"/p/{real.token}/download")
    assert status == 200 and body == real.path.read_bytes()
    assert server.proc.poll() is None
    server.close()
    log = server.stderr.decode(errors="replace")
    assert "Traceback" not in log and "unexpected error" not in log, log[-3000:]


def test_a_spoofed_forwarded_for_does_not_dodge_the_limit_over_waitress(served):
    server, _ = served
    statuses = []
    for i in range(20):
        spoof = f"10.0.{i}.{i}"
        statuses.append(wire(server.port, "127.0.0.77", (
            f"GET /p/{'D' * 22} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {spoof}\r\n"
            f"X-Real-IP: {spoof}\r\nForwarded: for={spoof}\r\nConnection: close\r\n\r\n"
        ).encode(), "GET")[0])
    assert statuses[:15] == [404] * 15 and set(statuses[15:]) == {429}, statuses
    assert _get(server.port, "127.0.0.78", f"/p/{'D' * 22}")[0] == 404
