"""Headers, CSRF and Origin checks, rate limits, trusted proxies and the session cookie.

Everything here is per app (made in create_app): two apps in one process share nothing,
but on the shared store the rate limits' counts, which all its servers share.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, Response, abort, current_app, request
from flask.globals import request_ctx
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from limits import parse_many
from limits.storage import MemoryStorage, Storage
from werkzeug.exceptions import BadHost, ServiceUnavailable, TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix

from booth.config import Config
from booth.errors import StoreUnavailable
from booth.store import Store
from booth.store.ratelimits import RateCounts

log = logging.getLogger(__name__)


class LockedMemoryStorage(MemoryStorage):
    """limits' in-memory storage with every count changed under one lock. Unlocked, two
    requests at once can both find the expiry timer stopped, and one then starts the other's
    new Timer a second time: "threads can only be started once" (a 500) or a "KeyError:
    <Timer ...>" traceback in the log, as `scripts/load.py two-process` saw under 20 phones
    (alisaifee/limits#26); and its per-key locks are dropped while in use. Under this lock
    an increment and the count it returns are one step, so RateLimits.require cannot race."""

    STORAGE_SCHEME = ["booth-memory"]  # registered with limits by this class statement

    def __init__(self, *args, **kwargs) -> None:
        self._timer_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def incr(self, *args, **kwargs):
        with self._timer_lock:
            return super().incr(*args, **kwargs)

    def decr(self, *args, **kwargs):
        with self._timer_lock:
            return super().decr(*args, **kwargs)

    def acquire_entry(self, *args, **kwargs):
        with self._timer_lock:
            return super().acquire_entry(*args, **kwargs)


class SharedStorage(Storage):
    """limits' storage on the shared store's database (booth.store.ratelimits), for every
    server behind one address to count into the same windows. Fixed windows only (what
    RateLimits uses). The database out of reach raises StoreUnavailable: the request gets
    the store's 503 page, as it would a moment later from its own query."""

    STORAGE_SCHEME = ["booth-shared"]  # registered with limits by this class statement

    def __init__(self, uri: str | None = None, *, counts: RateCounts,
                 clock: Callable[[], float] = time.time, **options) -> None:
        super().__init__(uri, **options)
        self.counts, self.clock = counts, clock

    @property
    def base_exceptions(self) -> type[Exception]:
        return StoreUnavailable

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self.counts.hit(key, expiry, amount, self.clock())

    def decr(self, key: str, amount: int = 1) -> int:
        return self.counts.give_back(key, amount, self.clock())

    def get(self, key: str) -> int:
        return self.counts.window(key, self.clock())[0]

    def get_expiry(self, key: str) -> float:
        return self.counts.window(key, self.clock())[1]

    def check(self) -> bool:
        try:
            self.counts.window("", self.clock())
        except StoreUnavailable:
            return False
        return True

    def reset(self) -> int | None:
        return self.counts.clear()

    def clear(self, key: str) -> None:
        self.counts.clear(key)


# Misses (unknown or expired tokens) are throttled much harder than hits.
MISS_LIMIT = "15 per minute;60 per hour"
# Staff login failures per client.
LOGIN_LIMIT = "10 per 15 minutes"


class RateLimits:
    """The booth's limits, per client address (the real client's behind a configured proxy),
    on this app's own Flask-Limiter storage: in this process's memory, or with `shared` (the
    shared store's counters) in the database every server behind the address uses.

    A request is counted *before* the work it would buy (a password check, a 404), in one
    atomic increment-and-compare (fixed window): of N parallel requests at most the limit
    pass. Counting after the response, as Flask-Limiter's deduct_when does, lets a burst
    through while the first answers are still being computed."""

    def __init__(self, app: Flask, photo_requests_per_minute: int,
                 shared: RateCounts | None = None) -> None:
        uri, options = (("booth-memory://", {}) if shared is None
                        else ("booth-shared://", {"counts": shared}))
        self.limiter = Limiter(get_remote_address, app=app, storage_uri=uri,
                               storage_options=options, strategy="fixed-window",
                               default_limits=[],
                               headers_enabled=False)  # no X-RateLimit-* headers
        self.photo = f"{photo_requests_per_minute} per minute"
        # A password check (argon2id, 64 MiB) takes both cores for ~0.4 s: one at a time,
        # so a burst of logins cannot hold every worker thread while pages wait.
        self._password_check = threading.Lock()

    def _keys(self, limits: str, scope: str):
        client = get_remote_address() or "unknown"
        return [(item, (client, scope)) for item in parse_many(limits)]

    def require(self, limits: str, scope: str) -> None:
        """Count one request against each limit, or refuse it with 429 (and count nothing:
        what is refused costs nothing, so every count is a request that went through)."""
        strategy = self.limiter.limiter
        results = [strategy.hit(item, *ids) for item, ids in self._keys(limits, scope)]
        if not all(results):
            self.give_back(limits, scope)
            current_app.extensions["booth.metrics"].rate_limited(scope)
            log.debug("rate limit %s on %s reached by client %r", limits, scope,
                      get_remote_address())
            raise TooManyRequests()

    def give_back(self, limits: str, scope: str) -> None:
        """Undo require() (e.g. a successful login does not count as a failure)."""
        for item, ids in self._keys(limits, scope):
            self.limiter.storage.decr(item.key_for(*ids))

    @contextlib.contextmanager
    def password_check(self) -> Iterator[None]:
        """Room for one password check, or 503 at once (never a wait on a worker thread)."""
        if not self._password_check.acquire(blocking=False):
            raise ServiceUnavailable(retry_after=2)
        try:
            yield
        finally:
            self._password_check.release()


def rate_limits() -> RateLimits:
    return current_app.extensions["booth.limits"]


# media-src: a clip's <video> plays from this site only (default-src says so too; named so
# that a change to default-src cannot open it).
CSP = ("default-src 'self'; img-src 'self' blob:; media-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# On every response, the app's and waitress's own error pages alike (booth.webapp.server).
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: Flask-WTF's CSRF check over HTTPS needs a Referer.
    "Referrer-Policy": "same-origin",
}


SESSION_KEY_FILE = "session-key"
# Endpoints that never touch the session, so answer while the database that may hold its
# key is out of reach: the 503 page's own stylesheet and pictures, the health checks.
SESSIONLESS = {"static", "health.healthz", "health.readyz", "health.prometheus"}


def session_key(store: Store, *, now: bool = False) -> str | None:
    """The key that signs session cookies: one for every booth process on this data dir (a
    file, 0600) or shared store (a row), so sessions survive restarts. now=True: None while
    the shared database is out of reach (at once if it was at start), not StoreUnavailable."""
    if now and store.offline:
        return None
    try:
        return store.secrets.read_or_create(SESSION_KEY_FILE, lambda: secrets.token_hex(32))
    except StoreUnavailable:
        if now:
            return None
        raise


class SessionInterface(SecureCookieSessionInterface):
    """Secure cookies whenever the request came over TLS (e.g. behind a proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


def private(response: Response) -> Response:
    """For photo pages and images: never cached, never indexed, no Referer leaks the token."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# Control characters: C0, DEL and (decoded text only) C1. A header value may hold a tab.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
QUOTED_MAX = 200  # characters of a client's string that a log line quotes


def quoted(text: str) -> str:
    """A client's string for a log line: its repr (a CR/LF cannot start a line of its own),
    cut to QUOTED_MAX characters (a 30 kB path cannot make a 30 kB line)."""
    return repr(text[:QUOTED_MAX]) + ("..." if len(text) > QUOTED_MAX else "")


def has_control_characters() -> bool:
    """Whether this request's path, query (decoded) or a header holds a control character:
    no page of the booth has one, and one in a path would reach a Location header or a log
    line."""
    query = unquote_to_bytes(request.query_string).decode("utf-8", "replace")
    return bool(_CONTROL.search(request.path) or _CONTROL.search(query) or any(
        _CONTROL_IN_HEADER.search(value) for value in request.headers.values()))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def init(app: Flask, cfg: Config) -> None:
    # Behind a reverse proxy every request comes from the proxy: with the number of proxies
    # configured, ProxyFix takes the client address (for the rate limits), scheme and host
    # from exactly that many X-Forwarded-* entries, and ignores the rest as spoofable.
    proxies = cfg.server.trusted_proxies
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies,
                                x_host=proxies)
    # No routing redirects: Werkzeug builds them from the Host header ("//x" -> "/x" would
    # send a visitor to http://<any host>/x). Doubled slashes get the not-found page.
    app.url_map.merge_slashes = False
    public_origin = _origin(cfg.server.public_url) if cfg.server.public_url else None

    @app.before_request
    def refuse_unusable_host() -> None:
        """A Host header no URL can be built for (an empty or over-long label, e.g. "a..b"):
        refused first, before the CSRF check or the staff guard build a page or redirect
        with url_for, which would fail on it and end in a 500."""
        if isinstance(request.routing_exception, BadHost):
            raise request.routing_exception

    @app.before_request
    def refuse_control_characters() -> None:
        """Before anything else reads the request (but after the Host check, without which
        the 400 page cannot be built): a CR/LF in a path would otherwise end in a header (a
        500) or a log line. (waitress refuses them in headers itself; a proxy may not.)"""
        if has_control_characters():
            log.warning("refused a request with control characters: %s %s", request.method,
                        quoted(request.full_path if request.query_string else request.path))
            abort(400)

    @app.before_request
    def refuse_other_origins() -> None:
        """A browser names the page a form was sent from: a POST from another site is
        refused before the CSRF token is even looked at. (No Origin at all: an older browser
        or a script, left to the CSRF token.)"""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        origin = request.headers.get("Origin")
        if origin is None:
            return
        own = f"{request.scheme}://{request.host}".lower()
        if origin.lower() not in (own, public_origin):
            log.debug("refused a %s from another origin: %s", request.method, quoted(origin))
            abort(403)

    store = app.extensions["booth.store"]

    @app.before_request
    def read_session_key() -> None:
        """A web app started while the shared database was out of reach has no key to sign
        cookies with: a request that needs the session reads it first (the store's 503 page
        while the database stays away), then opens the session that found no key."""
        if app.secret_key is None and request.endpoint not in SESSIONLESS:
            app.secret_key = session_key(store)
            request_ctx.session = app.session_interface.open_session(app, request)

    app.session_interface = SessionInterface()
    CSRFProtect(app)
    app.extensions["booth.limits"] = RateLimits(app, cfg.server.photo_requests_per_minute,
                                                app.extensions["booth.store"].rate_counts)

    @app.after_request
    def headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response
