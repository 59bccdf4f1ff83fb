"""Headers, CSRF, rate limits and the session cookie's Secure flag."""

from __future__ import annotations

import threading

from flask import Flask, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect
from limits.storage import MemoryStorage
from werkzeug.exceptions import BadHost


class LockedMemoryStorage(MemoryStorage):
    """limits' in-memory storage, its expiry timer (re)started under a lock. Unlocked, two
    requests at once can both find the timer stopped, and one then starts the other's new
    Timer a second time: "threads can only be started once" (a 500) or a "KeyError: <Timer
    ...>" traceback in the log, as scripts/two_process_load.py saw under 20 phones
    (alisaifee/limits#26)."""

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


csrf = CSRFProtect()
limiter = Limiter(get_remote_address, storage_uri="booth-memory://", default_limits=[],
                  headers_enabled=True)


def photo_limit() -> str:
    """A phone needs a handful of requests per photo; token guessing gets nowhere."""
    return f"{current_app.extensions['booth.config'].server.photo_requests_per_minute} per minute"

# Misses (unknown or expired tokens) are throttled much harder than hits.
MISS_LIMIT = "15 per minute;60 per hour"
# Staff login failures per client.
LOGIN_LIMIT = "10 per 15 minutes"

CSP = ("default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


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


def init(app: Flask) -> None:
    @app.before_request
    def refuse_unusable_host() -> None:
        """A Host header no URL can be built for (an empty or over-long label, e.g. "a..b"):
        refused first, before the CSRF check or the staff guard build a page or redirect
        with url_for, which would fail on it and end in a 500."""
        if isinstance(request.routing_exception, BadHost):
            raise request.routing_exception

    app.session_interface = SessionInterface()
    csrf.init_app(app)
    limiter.init_app(app)

    @app.after_request
    def headers(response: Response) -> Response:
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        # same-origin, not no-referrer: Flask-WTF's CSRF check over HTTPS needs a Referer.
        h.setdefault("Referrer-Policy", "same-origin")
        if not request.path.startswith("/static/"):
            h.setdefault("Cache-Control", "no-store")
        return response
