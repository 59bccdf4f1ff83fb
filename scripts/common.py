"""What the scripts share: where the shared media are, composites made as the station makes
them, `booth` child processes, percentiles, the machine's description and the report table,
and the phones of the load scripts (threads on loopback addresses of their own).

Importing it puts this checkout first on sys.path, so the scripts use its `booth` package.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PLATE = "scenes/sol46/PIA24542_large.jpg"
VIDEO = "video/intel_asl_book.mp4"
NEWEST = 6  # phones pick among the newest photos not being deleted
DELETE_EVERY = 3  # the owner deletes every third photo...
DELETE_AFTER = 3  # ...once it has been downloaded this many times
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_assets_argument(ap: argparse.ArgumentParser) -> None:
    # Absolute (argparse converts a string default too): child processes run elsewhere.
    ap.add_argument("--assets", type=lambda path: Path(path).resolve(),
                    default=os.environ.get("BOOTH_ASSETS") or str(ROOT.parent / "shared" /
                                                                  "assets"),
                    help="the shared media folder (default: $BOOTH_ASSETS or "
                         "../shared/assets)")


def missing_media(prog: str, assets: Path, *relative: str | Path) -> bool:
    """Say on stderr which media are missing, if any (an absolute path is taken as is)."""
    missing = [str(assets / p) for p in relative if not (assets / p).is_file()]
    if missing:
        print(f"{prog}: missing {', '.join(missing)} (set BOOTH_ASSETS or pass --assets)",
              file=sys.stderr)
    return bool(missing)


def assets_and_out(doc: str, out: str) -> argparse.Namespace:
    """--assets and --out, for the scripts that draw one picture from the media."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_assets_argument(parser)
    parser.add_argument("--out", type=Path, default=Path(out))
    return parser.parse_args()


def config_for(assets: Path, cache: Path | None = None):
    """Default settings with the shared plate (and a plate cache of the script's own)."""
    from booth.config import Config

    cfg = Config()
    cfg.scene.plate, cfg.cache_dir = str(assets / PLATE), str(cache or "")
    return cfg


def composites(prog: str, assets: Path, people: list[tuple[str, bool]], cache: Path):
    """The final photo (plate, person, caption band) the station makes from each shared photo
    in `people` ((path under assets, mirrored)), in order; one pipeline for all."""
    import cv2

    from booth.quiet import quiet_stderr
    from booth.station.photo import with_band
    from booth.wiring import load_pipeline

    pipeline = load_pipeline(config_for(assets, cache), mirror=False)
    made = {}
    for relative, mirrored in people:
        if (relative, mirrored) in made:
            continue
        with quiet_stderr():  # libpng warns on fd 2 about files it decodes fine
            frame = cv2.imread(str(assets / relative), cv2.IMREAD_COLOR)
        if frame is None:
            raise SystemExit(f"{prog}: cannot read {assets / relative}")
        if mirrored:
            frame = cv2.flip(frame, 1)
        analysis = pipeline.photo_analysis(frame)
        if not analysis.people.found:
            raise SystemExit(f"{prog}: nobody found in {relative}")
        made[relative, mirrored] = with_band(pipeline.final(frame, analysis), pipeline.scene,
                                             datetime.now())
    return [made[key] for key in people]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine() -> str:
    """The CPU model, its cores and the Python version: the figures' context."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def finish(prog: str, args: argparse.Namespace, media: list[str | Path], run, table,
           errors: str) -> int:
    """A benchmark's main: check the media, run, report; 2 if media are missing, 1 if the
    result's `errors` entry (a list of messages) is not empty, else 0."""
    if missing_media(prog, args.assets, *media):
        return 2
    result = run(args)
    report(prog, result, args.json, table, result[errors])
    return 1 if result[errors] else 0


def report(prog: str, result: dict, as_json: bool, table, errors: list[str]) -> None:
    """The result as one JSON object, or as the two-column table `table(result)` makes (and
    the errors on stderr)."""
    if as_json:
        print(json.dumps(result))
        return
    rows = table(result)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for line in errors:
        print(f"{prog}: error: {line}", file=sys.stderr)


class Proc:
    """A child process of this checkout's Python; stderr lines collected, stdout lines handed
    to `on_line`; stopped with SIGTERM as a service manager stops the booth."""

    def __init__(self, name: str, cmd: list[str], on_line=None) -> None:
        self.name = name
        # `python -m booth` imports the booth of its working folder before PYTHONPATH's: run
        # in this checkout, so a script started from another one measures this one's code.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
        self.stderr: list[str] = []
        self._threads = [threading.Thread(target=self._err, daemon=True),
                         threading.Thread(target=self._out, args=(on_line,), daemon=True)]
        for t in self._threads:
            t.start()

    def _err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def _out(self, on_line) -> None:
        for line in self.proc.stdout:
            if on_line is not None:
                on_line(line.strip())

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The first stderr line matching pattern; exits the script if none comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"{self.name} did not start:\n" + "\n".join(self.stderr[-20:]))

    def stop(self) -> int | None:
        """SIGTERM, then the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                return None
        for t in self._threads:
            t.join(timeout=5)
        return self.proc.returncode


def serve(data: Path, config: Path, on_line=None) -> tuple[Proc, int]:
    """`booth serve` on 127.0.0.1 and a free port, on `data` with `config`; (process, port)."""
    proc = Proc("booth serve", [sys.executable, "-m", "booth", "serve", "--host", "127.0.0.1",
                                "--port", "0", "--data-dir", str(data), "--config",
                                str(config)], on_line)
    port = int(proc.wait_for(r"serving on http://\S+?:(\d+)", 60).group(1))
    return proc, port


# --- phones: threads on loopback addresses of their own -------------------------------------


@dataclass
class Photo:
    n: int
    token: str
    id: int
    path: Path | None  # the file on this machine's disk, None for a photo in a bucket
    sha: str
    size: int
    downloads: int = 0
    deleting: bool = False


@dataclass
class Shared:
    """What the phones share: the photos, their counts, latencies and errors. still_stored
    says where a deleted photo was still found ("" if nowhere): by default its file."""

    clients: int
    still_stored: Callable[[Photo], str] = lambda p: "on disk" if p.path.exists() else ""
    photos: list[Photo] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    received: int = 0
    downloads: int = 0
    pages: int = 0
    deletes: int = 0
    expected_404: int = 0
    staff_requests: int = 0
    lookup_failures: int = 0
    delete_seconds: list[float] = field(default_factory=list)  # POST to gone everywhere

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def live(self) -> list[Photo]:
        with self.lock:
            return [p for p in self.photos if not p.deleting][-NEWEST:]


class Link:
    """One keep-alive connection from a fixed loopback address."""

    def __init__(self, port: int, source: str) -> None:
        self.port, self.source = port, source
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes, float]:
        began = time.perf_counter()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30,
                                                       source_address=(self.source, 0))
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()  # a keep-alive connection the server had closed: once more
                if attempt == 2:
                    raise
                continue
            if r.will_close:
                self.close()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data, \
                time.perf_counter() - began
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def check_image(shared: Shared, photo: Photo, body: bytes, what: str) -> None:
    if not (body[:3] == b"\xff\xd8\xff" and body[-2:] == b"\xff\xd9"):
        shared.error(f"{what} of photo {photo.n}: not a complete JPEG ({len(body)} bytes)")
    elif len(body) != photo.size or hashlib.sha256(body).hexdigest() != photo.sha:
        shared.error(f"{what} of photo {photo.n}: {len(body)} bytes that differ from the "
                     f"file's {photo.size}")


def phone(n: int, ports: list[int], shared: Shared, stop_at: float) -> None:
    """Phone n (from 127.0.0.<10 + n>) until stop_at: the newest photos' image, download and
    page through any of the servers on `ports`; the owner of every third photo deletes it
    once it has been downloaded a few times."""
    rng = random.Random(n)
    links = [Link(port, f"127.0.0.{10 + n}") for port in ports]
    while time.monotonic() < stop_at:
        live = shared.live()
        if not live:
            time.sleep(0.05)
            continue
        photo = rng.choice(live)
        link = rng.choice(links)
        roll = rng.random()
        route = ("photo.jpg" if roll < 0.5 else "download" if roll < 0.9 else "")
        path = f"/p/{photo.token}" + (f"/{route}" if route else "")
        try:
            status, headers, body, seconds = link.request("GET", path)
        except (OSError, http.client.HTTPException) as exc:
            shared.error(f"phone {n}: GET {path[:12]}...: {type(exc).__name__}: {exc}")
            link.close()
            continue
        with shared.lock:
            gone = photo.deleting
        if status == 200:
            if route:
                check_image(shared, photo, body, route)
                with shared.lock:
                    shared.downloads += 1
                    shared.received += len(body)
                    shared.latencies.append(seconds)
                    photo.downloads += 1
            else:
                with shared.lock:
                    shared.pages += 1
                if photo.token not in body.decode("utf-8", "replace"):
                    shared.error(f"phone {n}: photo page of {photo.n} without its links")
        elif status == 404 and gone:
            with shared.lock:
                shared.expected_404 += 1
        else:
            shared.error(f"phone {n}: HTTP {status} for {route or 'page'} of photo "
                         f"{photo.n}{' (deleted)' if gone else ''}")
        if photo.n % shared.clients == n and photo.n % DELETE_EVERY == 0:  # its owner
            with shared.lock:
                ready = photo.downloads >= DELETE_AFTER and not photo.deleting
                if ready:
                    photo.deleting = True
            if ready:
                delete(n, link, shared, photo)


def delete(n: int, link: Link, shared: Shared, photo: Photo) -> None:
    """The visitor's own delete: the confirmation page, then the form with its token."""
    base = f"/p/{photo.token}/delete"
    began = time.monotonic()
    try:
        status, headers, body, _ = link.request("GET", base)
        found = CSRF.search(body.decode("utf-8", "replace"))
        cookie = headers.get("set-cookie", "").split(";")[0]
        if status != 200 or not found or not cookie.startswith("booth_session="):
            shared.error(f"phone {n}: delete page of photo {photo.n}: HTTP {status}")
            return
        form = f"csrf_token={quote(found.group(1))}".encode()
        status, _, body, _ = link.request(
            "POST", base, body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie})
        if status != 200 or b"deleted" not in body.lower():
            shared.error(f"phone {n}: delete of photo {photo.n}: HTTP {status}")
            return
        where = shared.still_stored(photo)
        with shared.lock:
            shared.deletes += 1
            shared.delete_seconds.append(time.monotonic() - began)
        if where:
            shared.error(f"photo {photo.n} still {where} after its delete")
        status, _, _, _ = link.request("GET", f"/p/{photo.token}/photo.jpg")
        if status != 404:
            shared.error(f"photo {photo.n} still served after its delete: HTTP {status}")
        else:
            with shared.lock:
                shared.expected_404 += 1
    except (OSError, http.client.HTTPException) as exc:
        shared.error(f"phone {n}: delete of photo {photo.n}: {type(exc).__name__}: {exc}")
        link.close()
