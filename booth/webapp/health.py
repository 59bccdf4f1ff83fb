"""For load balancers, systemd and monitoring: /healthz (the process answers), /readyz (it
can do its work: the database and the bucket answer, and the camera delivers when a station
runs in this process) and /metrics (Prometheus's text format, booth.store.metrics).

/metrics is served to this machine (a loopback client) or to a request that carries
[server] metrics_token as its bearer token; behind a proxy the real client counts (the
address ProxyFix takes from the trusted proxies' X-Forwarded-For, booth.webapp.security).
Its answers hold counts only: no token, address or other personal data.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from flask import Blueprint, Flask, Response, current_app, request

from booth.store import Store
from booth.store.metrics import Metrics

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"
_PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


def metrics() -> Metrics:
    return current_app.extensions["booth.metrics"]


def _plain(body: str, status: int = 200, **headers: str) -> Response:
    response = Response(body, status, mimetype=None, content_type=_TEXT)
    response.headers.update(headers)
    return response


@bp.get("/healthz")
def healthz():
    return _plain("ok\n")


@bp.get("/readyz")
def readyz():
    """200 "ready", or 503 with one line per part that is down; the lines name the part
    only (the reasons, with hosts and errors, are in the log)."""
    store: Store = current_app.extensions["booth.store"]
    down = store.unreachable()
    if metrics().station_running and not metrics().camera_up:
        down.append("camera")
    if not down:
        return _plain("ready\n")
    return _plain("".join(f"{part}: down\n" for part in down), 503, **{"Retry-After": "5"})


def _from_this_machine() -> bool:
    """A loopback client, as the booth sees it: with trusted proxies, the real client
    (ProxyFix). (A proxy on this machine that is not configured as trusted makes every
    visitor look local, as it makes them one address for the rate limits: docs/monitoring.md
    says to configure it.)"""
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def _token_ok() -> bool:
    token = current_app.extensions["booth.config"].server.metrics_token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), token.encode("utf-8"))


@bp.get("/metrics")
def prometheus():
    if not (_token_ok() or _from_this_machine()):
        if current_app.extensions["booth.config"].server.metrics_token:
            return _plain("a valid bearer token is needed\n", 401,
                          **{"WWW-Authenticate": 'Bearer realm="metrics"'})
        return _plain("metrics are served to this machine only\n", 403)
    return Response(metrics().render(), content_type=_PROMETHEUS)


def init(app: Flask, given: Metrics | None) -> Metrics:
    """This app's metrics (the station's, when one runs in this process), told of the
    store's counts and of every 5xx answer."""
    store: Store = app.extensions["booth.store"]
    app.extensions["booth.metrics"] = found = given or Metrics()
    if found.store_event not in store.listeners:
        store.listeners.append(found.store_event)

    @app.after_request
    def count_errors(response: Response) -> Response:
        if response.status_code >= 500 and request.endpoint != "health.readyz":
            found.error("web")
        return response

    app.register_blueprint(bp)
    return found
