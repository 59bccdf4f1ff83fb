"""The booth's log: Python logging, one line per event, set up once by the `booth` command
(booth.logs.setup_logging). What it must never hold: a photo's token, a staff password, a
session cookie or key; and a client's string cannot forge a line of its own."""

from __future__ import annotations

import http.client
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from booth.cli import build_parser
from booth.config import Config
from booth.errors import StoreUnavailable
from booth.logs import _NOISY, setup_logging
from booth.store import Store
from booth.webapp import create_app
from tests.conftest import ROOT, asset

WRONG, PASSWORD = "not the password 71", "staff password 4f9c2e"


def _booth(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "booth", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=120, env=_env())


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))  # (the test's own, see isolated_env)


def _request(port: int, method: str, path: str, body: str = "",
             headers: dict | None = None) -> tuple[int, str, http.client.HTTPMessage]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace"), response.headers
    finally:
        conn.close()


@pytest.mark.slow  # over 1.4 s: the fast tier stays under 90 s
def test_a_capture_download_and_staff_login_log_no_secret_even_verbose(tmp_path: Path):
    """passwd, a headless station's capture, then `booth serve`: the photo's page and
    download, a wrong and a right staff login, all with --verbose. Every process's stderr
    says what happened, and holds no token, password, cookie or secret file's content."""
    data, config = tmp_path / "data", tmp_path / "booth.toml"
    config.write_text("[station]\ncountdown_seconds = 1\nresult_seconds = 3\n")
    common = ("--verbose", "--data-dir", data, "--config", config)
    passwd = _booth("passwd", "--stdin", *common, stdin=PASSWORD + "\n")
    assert passwd.returncode == 0, passwd.stderr
    run = _booth("run", "--headless", "--source", asset("video/intel_asl_book.mp4"),
                 "--auto-capture", "0.5", "--max-captures", "1", "--host", "127.0.0.1",
                 "--port", "0", *common)
    assert run.returncode == 0, run.stderr
    token = run.stdout.split("/p/")[1].strip()
    assert re.search(r" INFO booth\.station\.loop: photo saved in \d+ ms, capture [0-9a-f]{8}, "
                     r"made from ", run.stderr), run.stderr

    serve = subprocess.Popen(
        [sys.executable, "-m", "booth", "serve", "--host", "127.0.0.1", "--port", "0",
         *map(str, common)], stderr=subprocess.PIPE, text=True, env=_env())
    lines: list[str] = []
    try:
        first = serve.stderr.readline()
        lines.append(first)
        port = int(re.search(r"serving on http://\S+?:(\d+)", first).group(1))
        reader = threading.Thread(target=lambda: lines.extend(serve.stderr), daemon=True)
        reader.start()
        assert _request(port, "GET", f"/p/{token}")[0] == 200
        assert _request(port, "GET", f"/p/{token}/download")[0] == 200
        status, page, headers = _request(port, "GET", "/staff")
        cookie = headers["Set-Cookie"].split(";")[0]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        for password, expected in ((WRONG, 401), (PASSWORD, 303)):
            body = urllib.parse.urlencode({"password": password, "csrf_token": csrf})
            status, _, headers = _request(port, "POST", "/staff/login", body, form)
            assert status == expected
        session_cookie = headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    finally:
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=20) == 0
        reader.join(5)
        serve.stderr.close()
    log = "".join(lines)
    assert re.search(r" INFO booth\.webapp\.visitor: photo downloaded: capture [0-9a-f]{8}\n",
                     log), log
    assert " WARNING booth.webapp.staff: staff login refused: wrong password (client " in log
    assert " INFO booth.webapp.staff: staff logged in (client '127.0.0.1')" in log
    secrets = [p.read_text().strip() for p in (data / "secrets").iterdir()]
    assert len(secrets) >= 2  # the session signing key and the password's hash
    everything = passwd.stderr + run.stderr + log
    for secret in (token, PASSWORD, WRONG, session_cookie, csrf, *secrets):
        assert secret not in everything, f"{secret[:6]}... is in the log"
    assert "Traceback" not in everything


def test_a_clients_line_breaks_cannot_forge_a_log_line(tmp_path: Path, caplog) -> None:
    """A path with CR/LF in it (here in a link whose store is out of reach) is refused first
    (400), and logged as its repr: the event stays one line."""
    caplog.set_level(logging.DEBUG)
    store = Store(tmp_path / "data")
    try:
        def unreachable(*args, **kwargs):
            raise StoreUnavailable("database test: down")

        store.resolve = unreachable
        client = create_app(Config(), store, testing=True).test_client()
        forged = "A" * 22 + "%0d%0a2026-01-01 00:00:00 ERROR booth: forged"
        assert client.get(f"/p/{forged}").status_code == 400
    finally:
        store.close()
    [record] = [r for r in caplog.records if r.name.startswith("booth.webapp")]
    assert record.levelno == logging.WARNING and record.name == "booth.webapp.security"
    message = record.getMessage()
    assert "\n" not in message and "\r" not in message and "\\r\\n2026" in message


@pytest.mark.parametrize(("flag", "level"), [(None, logging.INFO), ("--verbose", logging.DEBUG),
                                             ("-q", logging.WARNING)])
def test_every_command_takes_verbose_and_quiet(flag, level) -> None:
    for command in ("run", "serve", "purge", "passwd", "bench --source x", "compose p -o o"):
        args = build_parser().parse_args([*command.split(), *([flag] if flag else [])])
        assert args.log_level == level, command


@pytest.fixture
def cli_logging() -> Iterator[None]:
    """The root logger and the libraries' levels as they were, after a test that called
    setup_logging (whose handler writes to sys.stderr: capsys reads it)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name in _NOISY:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_the_format_in_a_terminal_and_under_journald(monkeypatch, capsys, cli_logging) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    setup_logging(logging.INFO)
    logging.getLogger("booth.test").info("camera back: %s", "camera 0")
    logging.getLogger("booth.test").debug("not shown")
    logging.getLogger("waitress").info("not shown either")
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    setup_logging(logging.DEBUG)
    logging.getLogger("booth.test").warning("Camera unavailable, reconnecting: %s", "x")
    logging.getLogger("booth.test").debug("chatter")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3, lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO booth\.test: camera back: "
                        r"camera 0", lines[0]), lines[0]
    # No time stamp under systemd (the journal has its own); the level as its priority.
    assert lines[1:] == ["<4>WARNING booth.test: Camera unavailable, reconnecting: x",
                         "<7>DEBUG booth.test: chatter"]


def test_the_shared_store_logs_no_secret_even_verbose(pg_url, s3_bucket, tmp_path,
                                                      monkeypatch, capsys,
                                                      cli_logging) -> None:
    """A station's photo up through its outbox, downloaded from a server, a staff login, all
    with the log at --verbose: neither the database's password (the test server trusts
    any), nor the bucket's secret key (the test bucket takes any), nor a token or the staff
    password is in it."""
    from booth.store import Shared
    from booth.store.passwords import set_password

    db_password, s3_secret = "pg-secret-8d1f3a", "s3-secret-c47e92"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_secret)
    setup_logging(logging.DEBUG)
    shared = Shared(pg_url.replace("postgres@", f"postgres:{db_password}@"),
                    f"s3://{s3_bucket.name}/booth", s3_bucket.endpoint_url)
    station = Store(tmp_path / "station", shared=shared, outbox=True)
    server = Store(None, shared=shared)
    try:
        station.start_uploader()
        capture = station.publish(b"\xff\xd8photo\xff\xd9", ttl_seconds=3600)
        assert station.uploader.stop(30) == 0
        client = create_app(Config(), server, testing=True).test_client()
        assert client.get(f"/p/{capture.token}/download").status_code == 200
        set_password(server, PASSWORD)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                         client.get("/staff").get_data(as_text=True)).group(1)
        assert client.post("/staff/login", data={"csrf_token": csrf, "password": PASSWORD}
                           ).status_code == 303
    finally:
        station.close()
        server.close()
    log = capsys.readouterr().err
    assert f"upload done: capture {capture.short_id}" in log
    assert f"photo downloaded: capture {capture.short_id}" in log
    for secret in (db_password, s3_secret, capture.token, PASSWORD):
        assert secret not in log, f"{secret[:6]}... is in the log"


def test_a_line_break_in_any_libraries_message_stays_on_its_line(capsys) -> None:
    """waitress logs a client's path as it came ("Exception while serving /\\r\\nX: forged"):
    the booth's log handler writes that event on one line, and a traceback after it keeps its
    own lines."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging(logging.INFO)
        log = logging.getLogger("waitress")
        log.error("Exception while serving %s", "/\r\n2026-01-01 00:00:00 ERROR booth: forged")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("Exception while serving %s", "/x")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("ERROR waitress: Exception while serving "
                             "/\\r\\n2026-01-01 00:00:00 ERROR booth: forged")
    assert not any(line.startswith("2026-01-01") for line in lines)
    assert lines[1].endswith("Exception while serving /x") and lines[2] == (
        "Traceback (most recent call last):") and lines[-1] == "ValueError: boom"
