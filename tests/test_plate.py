"""The scene's plate: a configured copy, the cache, or a verified download from a real
(loopback) HTTP server; and scene files that are missing or wrong."""

from __future__ import annotations

import io
import os
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from booth.config import load_config
from booth.errors import BoothError
from booth.scene.definition import load_scene
from booth.scene.plate import download, obtain_plate, sha256_of

PLATE_FILE = "PIA24542_large.jpg"
PLATE_SHA256 = "efdf4b8ea161a2ecc2af3537b09505b7fb7440344d7a1584bd342e807d29067c"


class PlateServer:
    """A real HTTP server on 127.0.0.1 that serves `body` at every path and counts requests.

    status: the HTTP status to answer with; location: a redirect target; truncate: send only
    this many bytes of body, although Content-Length promises all of it.
    """

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.location: str | None = None
        self.truncate: int | None = None
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                server.requests.append(self.path)
                if server.location:
                    self.send_response(302)
                    self.send_header("Location", server.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.status != 200:
                    self.send_error(server.status)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body[:server.truncate])
                self.close_connection = True

            def log_message(self, *args: object) -> None:  # keep the test output clean
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def url(self, path: str = f"/{PLATE_FILE}") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


@pytest.fixture
def server():
    srv = PlateServer()
    yield srv
    srv.close()


@pytest.fixture
def scene():
    return load_scene("sol46")


@pytest.fixture
def no_env_plate(monkeypatch):
    """No BOOTH_PLATE: the plate comes from the cache or a download."""
    monkeypatch.delenv("BOOTH_PLATE", raising=False)


def closed_port() -> int:
    """A loopback port nothing listens on (bound by us a moment ago, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def files_under(folder: Path) -> list[str]:
    """Every file below folder (temp files included), as paths relative to it."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message and "\r" not in message
    return message


# --- a configured copy --------------------------------------------------------------------

def test_the_scene_names_the_shared_plate(scene):
    assert scene.plate.file == PLATE_FILE
    assert scene.plate.sha256 == PLATE_SHA256
    assert (scene.plate.width, scene.plate.height) == (1920, 1412)


def from_environment(scene, **kw) -> Path:
    """obtain_plate as the booth calls it: with what load_config read from the environment."""
    cfg = load_config(None)
    return obtain_plate(scene, configured=cfg.scene.plate, origin=cfg.scene.plate_from, **kw)


def test_booth_plate_is_used_after_verification(scene, plate_path, server, tmp_path):
    assert os.environ["BOOTH_PLATE"] == str(plate_path)
    got = from_environment(scene, url=server.url(), cache_dir=tmp_path / "cache")
    assert got == plate_path
    assert sha256_of(got) == PLATE_SHA256
    assert server.requests == []
    assert files_under(tmp_path / "cache") == []


def test_booth_plate_with_the_wrong_content(scene, tmp_path, monkeypatch, server):
    wrong = tmp_path / PLATE_FILE
    wrong.write_bytes(os.urandom(50_000))
    monkeypatch.setenv("BOOTH_PLATE", str(wrong))
    with pytest.raises(BoothError) as info:
        from_environment(scene, url=server.url(), cache_dir=tmp_path / "cache")
    message = one_line(info)
    assert message.startswith(f"plate {wrong} (from BOOTH_PLATE) is not {PLATE_FILE}: ")
    assert f"its SHA-256 is {sha256_of(wrong)[:12]}..., expected {PLATE_SHA256[:12]}..." \
        in message
    # ...and says how to get the right one
    assert scene.plate.url in message
    assert f"set BOOTH_PLATE=/path/to/{PLATE_FILE}" in message
    assert server.requests == []  # a wrong configured copy is not silently replaced


def test_booth_plate_that_does_not_exist(scene, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / PLATE_FILE
    monkeypatch.setenv("BOOTH_PLATE", str(missing))
    with pytest.raises(BoothError) as info:
        from_environment(scene, cache_dir=tmp_path / "cache")
    assert one_line(info) == (f"plate {missing} (from BOOTH_PLATE) does not exist; fix the "
                              "path or unset it to download the plate")


def test_configured_plate_is_used_after_verification(scene, plate_path, no_env_plate, tmp_path,
                                                     server):
    got = obtain_plate(scene, configured=str(plate_path), url=server.url(),
                       cache_dir=tmp_path / "cache")
    assert got == plate_path
    assert server.requests == []


def test_configured_plate_that_does_not_exist(scene, no_env_plate, tmp_path, server):
    missing = tmp_path / PLATE_FILE
    with pytest.raises(BoothError) as info:
        obtain_plate(scene, configured=str(missing), url=server.url(),
                     cache_dir=tmp_path / "cache")
    assert one_line(info) == (f"plate {missing} (from the config's [scene] plate) does not "
                              "exist; fix the path or unset it to download the plate")
    assert server.requests == []


# --- download and cache --------------------------------------------------------------------

def test_download_then_cache(scene, plate_path, no_env_plate, tmp_path, server):
    plate_bytes = plate_path.read_bytes()
    server.body = plate_bytes
    cache = tmp_path / "cache"
    out = io.StringIO()

    got = obtain_plate(scene, url=server.url(), cache_dir=cache, out=out)

    assert got == cache / "plates" / PLATE_FILE
    assert got.read_bytes() == plate_bytes
    assert files_under(cache) == [f"plates/{PLATE_FILE}"]  # no temp file left beside it
    assert server.requests == [f"/{PLATE_FILE}"]
    progress = out.getvalue()
    assert progress.startswith("\rdownloading plate [")
    total_kb = len(plate_bytes) // 1024
    assert progress.endswith(f"[{'#' * 30}] 100% {total_kb} of {total_kb} kB\n")
    assert "Traceback" not in progress

    out2 = io.StringIO()
    again = obtain_plate(scene, url=server.url(), cache_dir=cache, out=out2)
    assert again == got
    assert server.requests == [f"/{PLATE_FILE}"]  # no second request
    assert out2.getvalue() == ""


def test_a_damaged_cached_copy_is_downloaded_again(scene, plate_path, no_env_plate, tmp_path,
                                                   server):
    server.body = plate_path.read_bytes()
    cached = tmp_path / "cache" / "plates" / PLATE_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(server.body[:1000])
    got = obtain_plate(scene, url=server.url(), cache_dir=tmp_path / "cache", out=io.StringIO())
    assert got == cached
    assert cached.read_bytes() == server.body
    assert len(server.requests) == 1


def test_download_with_the_wrong_bytes_saves_nothing(scene, no_env_plate, tmp_path, server):
    server.body = os.urandom(200_000)
    cache = tmp_path / "cache"
    out = io.StringIO()
    with pytest.raises(BoothError) as info:
        obtain_plate(scene, url=server.url(), cache_dir=cache, out=out)
    message = one_line(info)
    assert message.startswith(f"the file downloaded from {server.url()} does not match the "
                              "expected SHA-256 (got ")
    assert "nothing was saved" in message
    assert f"BOOTH_PLATE=/path/to/{PLATE_FILE}" in message
    assert files_under(cache) == []
    assert out.getvalue().endswith("100% 195 of 195 kB\n")  # the progress line was ended


def test_a_dropped_connection_saves_nothing(scene, plate_path, no_env_plate, tmp_path, server):
    server.body = plate_path.read_bytes()
    server.truncate = len(server.body) // 2
    cache = tmp_path / "cache"
    out = io.StringIO()
    with pytest.raises(BoothError) as info:
        obtain_plate(scene, url=server.url(), cache_dir=cache, out=out)
    assert "does not match the expected SHA-256" in one_line(info)
    assert files_under(cache) == []
    assert out.getvalue().endswith("\n")
    assert "100%" not in out.getvalue()


def test_http_404_says_how_to_provide_a_copy(scene, no_env_plate, tmp_path, server):
    server.status = 404
    cache = tmp_path / "cache"
    out = io.StringIO()
    with pytest.raises(BoothError) as info:
        obtain_plate(scene, url=server.url(), cache_dir=cache, out=out)
    assert one_line(info) == (
        f"cannot download the plate from {server.url()} (HTTP 404 Not Found); download "
        f"{scene.plate.url} on another machine, copy it here and set "
        f"BOOTH_PLATE=/path/to/{PLATE_FILE} (or [scene] plate in the config)")
    assert files_under(cache) == []
    assert out.getvalue() == ""  # no progress line, not even an empty one
    assert server.requests == [f"/{PLATE_FILE}"]


def test_offline_says_how_to_provide_a_copy(scene, no_env_plate, tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/{PLATE_FILE}"
    cache = tmp_path / "cache"
    with pytest.raises(BoothError) as info:
        obtain_plate(scene, url=url, cache_dir=cache, out=io.StringIO())
    message = one_line(info)
    assert message.startswith(f"cannot download the plate from {url} (")
    assert "refused" in message.lower()
    assert message.endswith(f"set BOOTH_PLATE=/path/to/{PLATE_FILE} (or [scene] plate in the "
                            "config)")
    assert files_under(cache) == []


def test_a_server_that_does_not_speak_http(scene, no_env_plate, tmp_path):
    class Garbage(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.recv(4096)
            self.request.sendall(b"hello\r\nthis is not http\r\n")

    with socketserver.TCPServer(("127.0.0.1", 0), Garbage) as tcp:
        thread = threading.Thread(target=tcp.serve_forever, kwargs={"poll_interval": 0.02},
                                  daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{tcp.server_address[1]}/{PLATE_FILE}"
        try:
            with pytest.raises(BoothError) as info:
                obtain_plate(scene, url=url, cache_dir=tmp_path / "cache", out=io.StringIO())
        finally:
            tcp.shutdown()
            thread.join(5)
    message = one_line(info)
    assert message.startswith(f"cannot download the plate from {url} (")
    assert "BOOTH_PLATE=" in message
    assert files_under(tmp_path / "cache") == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/PIA24542_large.jpg",
                                 "/etc/passwd", "gopher://127.0.0.1:70/"])
def test_hostile_url_schemes_are_refused(scene, no_env_plate, tmp_path, url):
    cache = tmp_path / "cache"
    with pytest.raises(BoothError) as info:
        obtain_plate(scene, url=url, cache_dir=cache, out=io.StringIO())
    message = one_line(info)
    assert message.startswith(f"plate URL {url!r} must start with http:// or https://")
    assert "BOOTH_PLATE=" in message
    assert files_under(cache) == []
    with pytest.raises(BoothError):
        download(url, cache / "x.jpg", PLATE_SHA256, out=io.StringIO())
    assert not cache.exists()


def test_a_redirect_to_a_local_file_is_refused(scene, no_env_plate, tmp_path, server):
    server.location = "file:///etc/passwd"
    cache = tmp_path / "cache"
    with pytest.raises(BoothError) as info:
        obtain_plate(scene, url=server.url(), cache_dir=cache, out=io.StringIO())
    message = one_line(info)
    assert message.startswith(f"cannot download the plate from {server.url()} (HTTP 302 ")
    assert "not allowed" in message
    assert files_under(cache) == []


def test_an_unwritable_cache_folder(scene, no_env_plate, tmp_path, server):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(BoothError) as info:
        obtain_plate(scene, url=server.url(), cache_dir=blocker / "cache", out=io.StringIO())
    message = one_line(info)
    assert message.startswith(f"cannot write to the plate cache {blocker / 'cache' / 'plates'} "
                              "(Not a directory); set BOOTH_CACHE_DIR")
    assert "BOOTH_PLATE=" in message
    assert server.requests == []


# --- scene files ---------------------------------------------------------------------------

SCENE = """\
name = "test"
title = "A test scene"
caption = "Sol 46"
credit = "NASA/JPL-Caltech/MSSS"

[plate]
file = "PIA24542_large.jpg"
url = "https://images-assets.nasa.gov/image/PIA24542/PIA24542~large.jpg"
sha256 = "efdf4b8ea161a2ecc2af3537b09505b7fb7440344d7a1584bd342e807d29067c"
width = 1920
height = 1412

[stage]
left = 0.03
right = 0.43
top = 0.06
ground = 0.93
bottom = 1.0

[[keep_visible]]
name = "Ingenuity"
box = [0.44, 0.32, 0.52, 0.42]
"""


def scene_error(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = tmp_path / "scene.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BoothError) as info:
        load_scene(str(path))
    return path, one_line(info)


def test_a_scene_file_given_by_path(tmp_path):
    path = tmp_path / "scene.toml"
    path.write_text(SCENE, encoding="utf-8")
    scene = load_scene(str(path))
    assert scene.name == "test"
    assert scene.plate.sha256 == PLATE_SHA256
    assert scene.stage.ground == 0.93
    assert [name for name, _ in scene.keep_visible] == ["Ingenuity"]
    assert scene.keep_visible[0][1].pixels(1920, 1412) == (845, 452, 998, 593)


def test_a_missing_scene_name():
    with pytest.raises(BoothError) as info:
        load_scene("sol47")
    message = one_line(info)
    assert message.startswith("no scene 'sol47' (")
    assert message.endswith("scene.toml is missing); known scenes: sol46")


def test_a_missing_scene_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(BoothError) as info:
        load_scene(str(path))
    assert one_line(info) == f"no scene {str(path)!r} ({path} is missing); known scenes: sol46"


@pytest.mark.parametrize("drop, key", [
    ('sha256 = "efdf4b8ea161a2ecc2af3537b09505b7fb7440344d7a1584bd342e807d29067c"\n', "sha256"),
    ('caption = "Sol 46"\n', "caption"),
    ("ground = 0.93\n", "ground"),
])
def test_a_scene_with_a_missing_setting(tmp_path, drop, key):
    assert drop in SCENE
    path, message = scene_error(tmp_path, SCENE.replace(drop, ""))
    assert message == f"scene file {path} lacks the setting {key!r}"


def test_a_scene_without_a_plate_table(tmp_path):
    text = SCENE[:SCENE.index("[plate]")] + SCENE[SCENE.index("[stage]"):]
    path, message = scene_error(tmp_path, text)
    assert message == f"scene file {path} lacks the setting 'plate'"


@pytest.mark.parametrize("old, new, where, shown", [
    ("left = 0.03", "left = 1.5", "stage.left", "1.5"),
    ("top = 0.06", "top = -0.1", "stage.top", "-0.1"),
    ("right = 0.43", 'right = "0.43"', "stage.right", "'0.43'"),
    ("bottom = 1.0", "bottom = true", "stage.bottom", "True"),
    ("0.44, 0.32", "0.44, 3.2", "keep_visible[0].box", "3.2"),
])
def test_a_scene_with_a_bad_fraction(tmp_path, old, new, where, shown):
    path, message = scene_error(tmp_path, SCENE.replace(old, new))
    assert message == f"{path}: {where} must be a number from 0 to 1, got {shown}"


def test_a_scene_with_a_stage_upside_down(tmp_path):
    path, message = scene_error(tmp_path, SCENE.replace("top = 0.06", "top = 0.95"))
    assert message == f"{path}: stage needs left < right and top < ground <= bottom"


def test_a_scene_with_a_bad_box(tmp_path):
    path, message = scene_error(tmp_path, SCENE.replace("0.44, 0.32, 0.52, 0.42", "0.44, 0.32"))
    assert message == f"{path}: keep_visible[0].box must be [x0, y0, x1, y1]"


@pytest.mark.parametrize("sha", ["efdf4b8e", "z" * 64])
def test_a_scene_with_a_bad_checksum(tmp_path, sha):
    path, message = scene_error(tmp_path, SCENE.replace(PLATE_SHA256, sha))
    assert message == f"{path}: plate.sha256 must be 64 hex digits"


def test_a_scene_with_a_bad_number(tmp_path):
    path, message = scene_error(tmp_path, SCENE.replace("width = 1920", 'width = "wide"'))
    assert message.startswith(f"scene file {path} has a bad value: ")


def test_a_scene_that_is_not_valid_toml(tmp_path):
    path, message = scene_error(tmp_path, SCENE.replace("[stage]", "[stage"))
    assert message.startswith(f"scene file {path} is not valid TOML: ")
