"""The one HTTP client of the load tools: keep-alive connections from loopback addresses of
their own (the per-client rate limit sees each phone as a visitor), and the phones that
download, page through and delete photos with it.

    link = Link(port, "127.0.0.10")           # one phone's connection to 127.0.0.1:port
    status, headers, body, seconds = link.request("GET", "/p/<token>/download")

`phone()` is a visitor's phone in a thread until a deadline; `Shared` is what the phones
share (the photos, the counts, the latencies, the errors); `latency_ms()` sums latencies up.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

NEWEST = 6  # phones pick among the newest photos not being deleted
DELETE_EVERY = 3  # the owner deletes every third photo...
DELETE_AFTER = 3  # ...once it has been downloaded this many times
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
FAILURES = (OSError, http.client.HTTPException)  # what a request may raise


class Link:
    """One keep-alive connection to host:port from a fixed loopback source address."""

    def __init__(self, port: int, source: str, *, host: str = "127.0.0.1",
                 timeout: float = 30.0) -> None:
        self.host, self.port, self.source, self.timeout = host, port, source, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes, float]:
        """(status, headers with lower-case names, body, seconds); raises FAILURES."""
        began = time.perf_counter()
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=self.timeout,
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
            except FAILURES:
                self.close()
                raise
            if r.will_close:
                self.close()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data, \
                time.perf_counter() - began
        raise AssertionError("unreachable")

    def post_form(self, path: str, page: bytes, cookie: str, **fields: str):
        """POST a form with the csrf_token of `page` (the form's page) and its session
        cookie; request()'s tuple."""
        token = CSRF.search(page.decode("utf-8", "replace"))
        if token is None:
            raise http.client.HTTPException(f"no csrf_token on the page before {path}")
        form = "&".join(f"{k}={quote(v)}" for k, v in
                        {"csrf_token": token.group(1), **fields}.items()).encode()
        return self.request("POST", path, body=form, headers={**FORM, "Cookie": cookie})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def cookie_of(headers: dict) -> str:
    """The `name=value` of a response's Set-Cookie ("" if none)."""
    return headers.get("set-cookie", "").split(";")[0]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_ms(seconds: list[float]) -> dict:
    """Median, p95 and max in milliseconds (None each when there are none)."""
    if not seconds:
        return {"median": None, "p95": None, "max": None}
    return {"median": round(statistics.median(seconds) * 1000, 1),
            "p95": round(percentile(seconds, 0.95) * 1000, 1),
            "max": round(max(seconds) * 1000, 1)}


# --- phones -----------------------------------------------------------------------------------


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
    delete_seconds: list[float] = field(default_factory=list)  # POST to gone everywhere

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def live(self) -> list[Photo]:
        with self.lock:
            return [p for p in self.photos if not p.deleting][-NEWEST:]


def check_image(shared: Shared, photo: Photo, body: bytes, what: str) -> None:
    if not (body[:3] == b"\xff\xd8\xff" and body[-2:] == b"\xff\xd9"):
        shared.error(f"{what} of photo {photo.n}: not a complete JPEG ({len(body)} bytes)")
    elif len(body) != photo.size or sha256(body) != photo.sha:
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
        except FAILURES as exc:
            shared.error(f"phone {n}: GET {path[:12]}...: {type(exc).__name__}: {exc}")
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


def visitor_delete(link: Link, token: str) -> tuple[int, bytes]:
    """The visitor's own delete: the confirmation page, then its form; (status, body)."""
    status, headers, page, _ = link.request("GET", f"/p/{token}/delete")
    if status != 200:
        return status, page
    status, _, body, _ = link.post_form(f"/p/{token}/delete", page, cookie_of(headers))
    return status, body


def delete(n: int, link: Link, shared: Shared, photo: Photo) -> None:
    """Phone n deletes its photo, then checks it is gone from the store and from its link."""
    began = time.monotonic()
    try:
        status, body = visitor_delete(link, photo.token)
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
    except FAILURES as exc:
        shared.error(f"phone {n}: delete of photo {photo.n}: {type(exc).__name__}: {exc}")
