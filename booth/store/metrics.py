"""The process's Prometheus metrics: what the station, the store and the web app in this
process count, for /metrics (booth.webapp.health).

Here, beside the store both use (as booth.store.status is), so that the station reports into
it without knowing the web app, and the web app reads it without importing the station's
camera or vision code. Each Metrics has a registry of its own, never prometheus_client's
global one: two apps in one process (tests) count apart.

Labels hold fixed words only (a capture's kind, a rate limit's scope, where an error was),
never a token, an address or anything else a visitor sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from booth.store import counts

# No "_created" series beside each counter: the booth's start time is no use to anyone
# graphing it, and they double the scrape. (prometheus_client's switch is for the process.)
disable_created_metrics()

# The web app's rate limits (booth.webapp.security) and where errors are counted.
SCOPES = ("photo", "photo-miss", "login")
PLACES = ("web", "station")
KINDS = ("photo", "clip")


class _Uploads(Collector):
    """The station's outbox, read when scraped: how many captures wait, how many tries
    failed (booth.store.outbox.Uploader)."""

    def __init__(self) -> None:
        self.uploader = None

    def collect(self) -> Iterator:
        pending = GaugeMetricFamily("booth_uploads_pending", "Captures in this station's "
                                    "outbox, not in the shared store yet")
        failed = CounterMetricFamily("booth_upload_failures", "Upload attempts that failed "
                                     "(the shared store out of reach, a broken record)")
        uploader = self.uploader
        pending.add_metric([], uploader.pending() if uploader is not None else 0)
        failed.add_metric([], uploader.failures if uploader is not None else 0)
        yield pending
        yield failed


class Metrics:
    """Everything /metrics shows, in a registry of its own. The station calls frame(),
    camera(), captured(), nobody() and language(); the store's counts arrive through
    `store_event` (a Store listener); the web app calls rate_limited() and error().

    `recorder` (a booth.store.counts.CountRecorder, set by the station's wiring) is where the
    station's own events go for the statistics: camera drop-outs and downtime, languages."""

    def __init__(self) -> None:
        self.registry = reg = CollectorRegistry()
        self.recorder: counts.CountRecorder | None = None
        self.station_running = False  # a station reports into this process's metrics
        self.camera_up = False
        self._down_since: float | None = None
        self.captures = Counter("booth_captures", "Captures saved by the station", ["kind"],
                                registry=reg)
        self.nobody_screens = Counter("booth_nobody_screens", "Shutters that found nobody "
                                      "in front of the camera (no photo taken)", registry=reg)
        self.photo_seconds = Histogram(
            "booth_photo_seconds", "Shutter to result screen: making, saving and linking a "
            "capture", registry=reg, buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 8, 13))
        self.frame_seconds = Histogram(
            "booth_frame_seconds", "Analysing one preview frame (segmentation, placement)",
            registry=reg, buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5))
        self.camera_reconnects = Counter("booth_camera_reconnects", "Times the camera came "
                                         "back after delivering nothing", registry=reg)
        self.camera_gauge = Gauge("booth_camera_up", "1 while the camera delivers frames "
                                  "(a station in this process only)", registry=reg)
        self.downloads = Counter("booth_downloads", "Captures downloaded by visitors",
                                 registry=reg)
        self.deletes = Counter("booth_deletes", "Captures deleted by their visitor or the "
                               "staff", registry=reg)
        self.purges = Counter("booth_purges", "Captures purged (expired, or by the staff)",
                              registry=reg)
        self.refusals = Counter("booth_rate_limit_refusals", "Requests refused by a rate "
                                "limit", ["scope"], registry=reg)
        self.errors = Counter("booth_errors", "Failures: web requests answered with a 5xx, "
                              "captures that failed", ["place"], registry=reg)
        for kind in KINDS:  # every series exists from the start, at 0
            self.captures.labels(kind)
        for scope in SCOPES:
            self.refusals.labels(scope)
        for place in PLACES:
            self.errors.labels(place)
        self._uploads = _Uploads()
        reg.register(self._uploads)
        self._by_event: dict[str, Callable[[int], None]] = {
            counts.DOWNLOAD: self.downloads.inc, counts.DELETE: self.deletes.inc,
            counts.PURGE: self.purges.inc}

    def render(self) -> bytes:
        """The Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry)

    def watch_uploads(self, uploader) -> None:
        self._uploads.uploader = uploader

    # --- the store

    def store_event(self, event: str, n: int) -> None:
        """A Store listener: downloads, deletes and purges as the store commits them.
        (Captures are the station's: a web server alone has none.)"""
        count = self._by_event.get(event)
        if count is not None:
            count(n)

    # --- the web app

    def rate_limited(self, scope: str) -> None:
        if scope in SCOPES:
            self.refusals.labels(scope).inc()

    def error(self, place: str) -> None:
        self.errors.labels(place).inc()

    # --- the station

    def frame(self, seconds: float) -> None:
        self.frame_seconds.observe(seconds)

    def captured(self, kind: str, seconds: float) -> None:
        self.captures.labels(kind if kind in KINDS else "photo").inc()
        self.photo_seconds.observe(seconds)

    def nobody(self) -> None:
        self.nobody_screens.inc()

    def language(self, code: str, when: float | None = None) -> None:
        """A visitor picked a language on the station's screen."""
        if self.recorder is not None:
            self.recorder.record(counts.LANGUAGE + code, 1, when)

    def camera(self, up: bool, when: float | None = None) -> None:
        """The camera's state at each step (`when`: wall time). A drop-out after it had
        delivered is counted, its downtime recorded when it is back (or the station ends)."""
        when = time.time() if when is None else when
        self.station_running = True
        if up == self.camera_up:
            return
        self.camera_up = up
        self.camera_gauge.set(1 if up else 0)
        if not up:
            self._down_since = when
            if self.recorder is not None:
                self.recorder.record(counts.CAMERA_DROP, 1, when)
            return
        if self._down_since is not None:
            self.camera_reconnects.inc()
            self._end_downtime(when)

    def station_stopped(self, when: float | None = None) -> None:
        self._end_downtime(time.time() if when is None else when)
        self.station_running = False

    def _end_downtime(self, when: float) -> None:
        if self._down_since is not None and self.recorder is not None:
            self.recorder.record_span(counts.CAMERA_DOWN_SECONDS, self._down_since, when)
        self._down_since = None
