"""Assemble the station from configuration: scene, plate, camera, pipeline, store, screen."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import cv2
import numpy as np

from booth.config import Config
from booth.errors import BoothError
from booth.scene.definition import Scene, load_scene
from booth.scene.plate import obtain_plate
from booth.station.stops import STOPS, StopSignals
from booth.store.status import StationStatus
from booth.vision.pipeline import Pipeline

# For the type hints only: each function imports what it uses, when it runs (`booth serve`
# loads no camera or station code, `booth run` nothing heavy before its window opens).
if TYPE_CHECKING:
    from booth.camera.sources import FrameSource
    from booth.clock import Clock
    from booth.station.loop import Station
    from booth.station.machine import Machine
    from booth.station.outputs import Output
    from booth.store import Store
    from booth.webapp.server import Janitor, WebServer

log = logging.getLogger(__name__)


def load_plate(cfg: Config) -> tuple[Scene, np.ndarray]:
    scene = load_scene(cfg.scene.name)
    path = obtain_plate(scene, configured=cfg.scene.plate, origin=cfg.scene.plate_from,
                        url=cfg.scene.plate_url, cache_dir=cfg.cache_path())
    plate = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if plate is None:
        raise BoothError(f"plate {path} cannot be decoded; delete it so it is downloaded again")
    return scene, plate


def load_pipeline(cfg: Config, *, mirror: bool) -> Pipeline:
    from booth.vision.models import load_modnet
    from booth.vision.segmentation import Segmenter

    scene, plate = load_plate(cfg)
    return Pipeline(scene, plate, Segmenter(cfg.segmentation.model), mirror=mirror,
                    min_person_fraction=cfg.segmentation.min_person_fraction,
                    matting=load_modnet(cfg))


class StatusReporter:
    """The station's health, for the staff page (which may run in another process), written
    on a thread of its own: a database out of reach delays no photo. Only the newest status
    is kept; a failed write is dropped, since another comes in 2 s."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._newest: StationStatus | None = None
        self._closed = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)
        self._thread.start()

    def __call__(self, status: StationStatus) -> None:
        with self._ready:
            self._newest = status
            self._ready.notify()

    def close(self, timeout: float = 5.0) -> None:
        """The thread ends after the write it is on (the last status is not written)."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while self._newest is None and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                status, self._newest = self._newest, None
            with contextlib.suppress(sqlite3.Error, BoothError):  # busy, full or unreachable
                status.save(self.store)


def start_web(cfg: Config, store: Store, *, background: bool = True) -> tuple[WebServer, Janitor]:
    """The web app on [server] host:port, and the janitor that purges expired photos."""
    from booth.webapp import create_app
    from booth.webapp.server import Janitor, WebServer

    web = WebServer(create_app(cfg, store), cfg.server.host, cfg.server.port)
    janitor = Janitor(store)
    janitor.start()
    if background:
        web.start()
    return web, janitor


def serve_web(cfg: Config, *, stops: StopSignals = STOPS) -> int:
    """`booth serve`: the web app alone, beside a station in another process or none, or
    one of the shared store's servers. A stop signal ends the serving loop (see
    booth.station.stops)."""
    from booth.store import open_store
    from booth.webapp.network import public_base_url

    with contextlib.ExitStack() as stack:
        store = open_store(cfg, gentle=True)
        stack.callback(store.close)
        stops.check()
        web, janitor = start_web(cfg, store, background=False)
        stack.callback(janitor.stop)
        stack.callback(web.close)
        base_url, warning = public_base_url(cfg.server.public_url, cfg.server.host, web.port)
        log.info("serving on %s (staff pages: %s/staff)", base_url, base_url)
        if warning:
            log.warning("%s", warning)
        with stops.anywhere():  # the loop only waits: nothing is half-done where it stops
            web.serve_forever()
    return 0


def make_outputs(cfg: Config, store: Store, base_url: str) -> list[Output]:
    """What happens to each capture: the outputs [outputs] enabled names, in its order (see
    booth.station.outputs; a new output is one module there and one line here)."""
    from booth.station.outputs.store import StoreOutput

    builders: dict[str, Callable[[], Output]] = {
        "store": lambda: StoreOutput(store, base_url),
    }
    return [builders[name]() for name in cfg.outputs.enabled]


def boomerang_offered(cfg: Config) -> bool:
    """[station] boomerang, where PyAV's encoder is there: else one warning, and the attract
    screen offers photos alone."""
    from booth.station.clip import require_encoder

    if not cfg.station.boomerang:
        return False
    try:
        require_encoder()
    except BoothError as exc:
        log.warning("no Boomerang on the attract screen: %s", exc)
        return False
    return True


def assemble_station(cfg: Config, pipeline: Pipeline, source: FrameSource, store: Store,
                     base_url: str, *, machine: Machine | None = None,
                     clock: Clock | None = None, out: TextIO = sys.stdout,
                     report: Callable[[StationStatus], None] | None = None) -> Station:
    """The station as `booth run` has it (screens, renderer, photo maker and its outputs,
    state machine), for `booth run`, `booth bench` and the scripts alike."""
    from booth.clock import SYSTEM
    from booth.station.loop import PhotoMaker, Station
    from booth.station.machine import Machine
    from booth.station.renderer import Renderer
    from booth.station.screens import Screens, screen_settings

    st, clock = cfg.station, clock or SYSTEM
    screens = Screens(st.display_width, st.display_height, pipeline.plate, pipeline.scene,
                      st.countdown_seconds, when=clock.now(), boomerang=boomerang_offered(cfg),
                      **screen_settings(cfg))
    maker = PhotoMaker(pipeline, screens, make_outputs(cfg, store, base_url),
                       retention_hours=cfg.store.retention_hours,
                       jpeg_quality=cfg.store.jpeg_quality, keep_raw=st.keep_raw, clock=clock)
    machine = machine or Machine(st.countdown_seconds, st.result_seconds)
    return Station(source, Renderer(pipeline, screens), maker, machine, clock=clock,
                   out=out, report=report)


def run_station(cfg: Config, *, source: str, headless: bool, windowed: bool,
                auto_capture: float | None, max_captures: int | None,
                save_screens: Path | None, capture_kind: str = "photo",
                stops: StopSignals = STOPS) -> int:
    """`booth run`. A stop signal is taken between the start-up's steps and once a pass of
    the station's loop (see booth.station.stops); what was started is closed in reverse, so
    every thread has ended when this returns."""
    from booth.camera.sources import open_source
    from booth.station.display import HeadlessDisplay, WindowDisplay
    from booth.station.machine import Machine
    from booth.station.outputs import Kind
    from booth.store import open_store
    from booth.webapp.network import public_base_url

    st = cfg.station
    kind = Kind.CLIP if capture_kind == "boomerang" else Kind.PHOTO
    if kind is Kind.CLIP and not boomerang_offered(cfg):
        raise BoothError("--capture-kind boomerang: this station cannot make clips (see the "
                         "warning above)" if cfg.station.boomerang else "--capture-kind "
                         "boomerang: [station] boomerang is false in the config; set it to true")
    if save_screens is not None:
        try:
            save_screens.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BoothError(f"cannot create {save_screens}: {exc.strerror}") from None
    # The window first: without a display the booth says so before loading anything.
    display = HeadlessDisplay() if headless else WindowDisplay(
        fullscreen=st.fullscreen and not windowed, size=(st.display_width, st.display_height))
    with contextlib.ExitStack() as stack:
        # Closed in reverse: the screens' warm-up, the status writer, the web server, the
        # janitor, the window; then (`last`, entered before the window's close) the camera,
        # the models and the store, whose last uploads may take seconds with the window
        # already gone.
        last = stack.enter_context(contextlib.ExitStack())
        stack.callback(display.close)
        stops.check()
        store = open_store(cfg, station=True)
        last.callback(store.close)
        last.callback(finish_uploads, store, cfg.store.upload_wait_seconds)
        if store.outbox is not None:
            store.start_uploader()
        stops.check()
        pipeline = load_pipeline(cfg, mirror=st.mirror)
        last.callback(pipeline.close)
        stops.check()
        frames = open_source(source, width=cfg.camera.width, height=cfg.camera.height,
                             fps=cfg.camera.fps, stall_seconds=cfg.camera.stall_seconds,
                             still_width=cfg.camera.still_width,
                             still_height=cfg.camera.still_height)
        last.callback(frames.close)
        frames.start()  # a camera that is not there yet does not stop the station
        stops.check()
        web, janitor = start_web(cfg, store)
        stack.callback(janitor.stop)
        stack.callback(web.close)
        base_url, warning = public_base_url(cfg.server.public_url, cfg.server.host, web.port)
        if store.shared and not cfg.server.public_url:
            warning = ("the shared store's photos are meant for phones anywhere: set [server] "
                       "public_url to the public server's address (the QR codes now point "
                       "at this station)")
        if warning:
            log.warning("%s", warning)
        log.info("web app on %s (staff pages: %s/staff)", base_url, base_url)
        reporter = StatusReporter(store)
        stack.callback(reporter.close)
        station = assemble_station(
            cfg, pipeline, frames, store, base_url,
            machine=Machine(st.countdown_seconds, st.result_seconds, auto_capture,
                            auto_kind=kind),
            report=reporter)
        station.screens.warm_up()
        stack.callback(station.screens.stop_warm_up)
        return station.run(display, max_captures=max_captures, save_screens=save_screens,
                           stops=stops)


def finish_uploads(store: Store, wait: float) -> None:
    """A clean exit on the shared store: the outbox's photos go up first, for at most `wait`
    seconds; what is left goes up at the next start."""
    if store.uploader is None:
        return
    if store.uploader.pending():
        log.info("uploading the last photos (at most %g s)", wait)
    left = store.uploader.stop(wait)
    if left:
        log.warning("%d photo(s) wait in the outbox for the next start (%s)", left,
                    store.uploader.failing or "not uploaded in time")
