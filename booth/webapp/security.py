"""Headers, CSRF, rate limits and the session cookie's Secure flag."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(get_remote_address, storage_uri="memory://", default_limits=[],
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
