"""The web app phones and staff use: Flask, served by waitress.

It reads and writes the store only; it never imports the camera code or mediapipe, so
`booth serve` starts at once and runs on a machine with no camera.

Modules: visitor (the photo page, download, delete), staff (login, gallery, delete, purge,
the station's status), statistics (the staff's counts, chart and CSV), health (/healthz,
/readyz, /metrics), security (headers, CSRF and Origin checks, rate limits, trusted
proxies, the session cookie), languages (the page's language), errors (every failure a page
a visitor understands), network (the LAN address phones use), server (waitress, and the
janitor that purges expired photos). create_app, here, puts them together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from flask import Flask, has_request_context

from booth.config import Config
from booth.resources import data_dir
from booth.store import Store
from booth.store.metrics import Metrics
from booth.webapp import errors, health, languages, security, staff, statistics, visitor

# Forms only; nothing is uploaded. waitress refuses larger bodies before reading them
# (booth.webapp.server), so nothing is ever spooled to disk.
MAX_BODY = 64 * 1024


def create_app(cfg: Config, store: Store, *, testing: bool = False,
               metrics: Metrics | None = None,
               clock: Callable[[], float] = time.time) -> Flask:
    """The web app on `store`; `metrics`: the station's, when one runs in this process (else
    the app has its own); `clock`: the time the statistics are counted up to (tests fix it)."""
    web = data_dir("web")
    app = Flask(__name__, template_folder=str(web / "templates"),
                static_folder=str(web / "static"), static_url_path="/static")
    app.config.update(
        TESTING=testing,
        # One key for every booth process on this data dir, so sessions survive restarts;
        # in a file of its own (0600), never in the database.
        # (The shared store's is a row: out of reach at start, it is read by the first
        # request that finds the database back, see security.session_key.)
        SECRET_KEY=security.session_key(store, now=True),
        SESSION_COOKIE_NAME="booth_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),  # one shift
        MAX_CONTENT_LENGTH=MAX_BODY,
        WTF_CSRF_TIME_LIMIT=None,  # valid for the session's life
        # Photo pages send no Referer (it would carry the token), so Flask-WTF's HTTPS-only
        # Referer check would refuse their forms; the token, the Origin check and the
        # SameSite cookie remain.
        WTF_CSRF_SSL_STRICT=False,
    )
    app.extensions["booth.store"] = store
    # Only a few web threads wait on a hung store; the rest serve what needs none.
    store.gate.cap(has_request_context)
    app.extensions["booth.config"] = cfg
    app.extensions["booth.clock"] = clock
    health.init(app, metrics)
    security.init(app, cfg)
    errors.init(app)
    languages.init(app, cfg)
    app.register_blueprint(visitor.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(statistics.bp)
    return app
