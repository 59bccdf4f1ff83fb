"""Assemble the station from configuration: scene, plate, camera, pipeline, store, screen."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shlex
import sqlite3
import subprocess
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
    from booth.station.printpanel import PrintPanel
    from booth.station.screens import Screens
    from booth.store import Store
    from booth.store.metrics import Metrics
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
    is kept; a failed write is dropped, since another comes in 2 s. It adds the outbox's
    backlog (the shared store's station), which the statistics page shows."""

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
            if self.store.uploader is not None:  # the outbox, for the staff's banner
                status = dataclasses.replace(status, backlog=self.store.uploader.pending(),
                                             offline=bool(self.store.uploader.failing))
            with contextlib.suppress(sqlite3.Error, BoothError):  # busy, full or unreachable
                status.save(self.store)


def start_web(cfg: Config, store: Store, *, background: bool = True,
              metrics: Metrics | None = None) -> tuple[WebServer, Janitor]:
    """The web app on [server] host:port, and the janitor that purges expired photos;
    `metrics`: the station's in this process, for /metrics."""
    from booth.webapp import create_app
    from booth.webapp.server import Janitor, WebServer

    web = WebServer(create_app(cfg, store, metrics=metrics), cfg.server.host, cfg.server.port)
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
    from booth.station.outputs.printer import PrinterOutput
    from booth.station.outputs.store import StoreOutput

    builders: dict[str, Callable[[], Output]] = {
        "store": lambda: StoreOutput(store, base_url),
        "printer": lambda: PrinterOutput(cfg.printer, store),
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
                     report: Callable[[StationStatus], None] | None = None,
                     metrics: Metrics | None = None) -> Station:
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
    outputs = make_outputs(cfg, store, base_url)
    maker = PhotoMaker(pipeline, screens, outputs, retention_hours=cfg.store.retention_hours,
                       jpeg_quality=cfg.store.jpeg_quality, keep_raw=st.keep_raw, clock=clock)
    machine = machine or Machine(st.countdown_seconds, st.result_seconds)
    return Station(source, Renderer(pipeline, screens), maker, machine, clock=clock,
                   out=out, report=report, printing=print_panel(screens, outputs),
                   metrics=metrics)


def print_panel(screens: Screens, outputs: list[Output]) -> PrintPanel | None:
    """The result screen's Print button and line, when a printer is among the outputs."""
    from booth.station.outputs.printer import PrinterOutput
    from booth.station.printpanel import PrintPanel

    printer = next((o for o in outputs if isinstance(o, PrinterOutput)), None)
    return None if printer is None else PrintPanel(screens, printer)


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
    from booth.store.counts import CountRecorder
    from booth.store.metrics import Metrics
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
        # One set of metrics for the station and the web app (/metrics); the station's own
        # counts (camera, languages) reach the statistics through the recorder.
        metrics = Metrics()
        metrics.recorder = CountRecorder(store)
        last.callback(metrics.recorder.close)
        store.listeners.append(metrics.store_event)
        metrics.watch_uploads(store.uploader)
        web, janitor = start_web(cfg, store, metrics=metrics)
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
            report=reporter, metrics=metrics)
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


# `booth service install`: the unit files in systemd/ (booth/systemd in a wheel), filled in
# with this install's paths. The station is a user service of the kiosk's desktop session
# (its window needs the session's display); `booth serve` a hardened system service.
STATION_UNIT, SERVE_UNIT = "booth-station.service", "booth-serve.service"
SERVICE_USER = "booth"  # the system service's own user
SYSTEM_DATA_DIR = Path("/var/lib/booth")  # the system service's data folder by default
_HOMES = ("/home", "/root", "/run/user")  # what ProtectHome hides
# systemd 254 and later lengthen the pause after each failed start: 10 s up to 5 minutes.
BACKOFF = "RestartSteps=5\nRestartMaxDelaySec=5min"


def booth_command() -> list[str]:
    """This install's `booth`: the script beside this Python (a venv's bin/), else the
    module run by this Python. Not resolved: a venv's python is a link to the system's."""
    script = Path(sys.executable).absolute().with_name("booth.exe" if os.name == "nt"
                                                       else "booth")
    return [str(script)] if script.is_file() else [str(Path(sys.executable).absolute()),
                                                   "-m", "booth"]


def _word(text: str, *, command: bool = False) -> str:
    """One word of a unit file: its % (and, in a command, $) taken literally, quoted when it
    holds a space, a quote or a backslash."""
    if "\n" in text or "\r" in text:
        raise BoothError(f"{text!r} holds a line break; a unit file cannot name it")
    text = text.replace("%", "%%")
    if command:
        text = text.replace("$", "$$")
    if any(c in text for c in " \t\"'\\"):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def systemd_version() -> int | None:
    """The installed systemd's version (None: none here, or unknown)."""
    try:
        out = subprocess.run(["systemctl", "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.match(r"systemd (\d+)", out)
    return int(found.group(1)) if found else None


def service_data_dir(cfg: Config, system: bool) -> Path:
    """The configured data folder (--data-dir, data_dir), else the desktop user's for the
    station and /var/lib/booth for the system service."""
    return Path(cfg.data_dir).absolute() if cfg.data_dir else (
        SYSTEM_DATA_DIR if system else cfg.data_path().absolute())


def service_unit(cfg: Config, *, system: bool, config_file: str | None, source: str | None,
                 version: int | None) -> str:
    """The unit's text: `booth run` (system=False) or `booth serve`, with this install's
    booth, the config file and the data folder as absolute paths."""
    from booth.config import ENV_MODNET, ENV_PLATE
    from booth.resources import data_dir

    data = service_data_dir(cfg, system)
    args = ["--data-dir", str(data)]
    if config_file:
        args[:0] = ["--config", str(Path(config_file).absolute())]
    if source is not None:
        args += ["--source", source]
    command = booth_command()
    values = {
        "exec": " ".join(_word(w, command=True) for w in command),
        "args": "".join(" " + _word(a, command=True) for a in args),
        "backoff": BACKOFF if (version or 0) >= 254 else
        "# (systemd 254 and later: RestartSteps and RestartMaxDelaySec lengthen the pause)",
        "stop_timeout": f"{int(cfg.store.upload_wait_seconds) + 15}s",
        "data_dir": _word(str(data)), "user": SERVICE_USER,
    }
    if system:
        paths = [Path(command[0]), data, *([Path(config_file).absolute()] if config_file else [])]
        values["protect_home"] = ("read-only" if any(
            p.is_relative_to(home) for p in paths for home in _HOMES) else "yes")
        values["state_directory"] = (
            f"StateDirectory={_word(str(data.relative_to('/var/lib')))}\nStateDirectoryMode=0700"
            if data.is_relative_to("/var/lib") and data != Path("/var/lib") else
            "# The data folder is not under /var/lib: make it the booth user's, 0700.")
    else:  # the plate and the model where this shell found them
        found = {ENV_PLATE: cfg.scene.plate_from == ENV_PLATE and cfg.scene.plate,
                 ENV_MODNET: cfg.models.modnet_from == ENV_MODNET and cfg.models.modnet}
        values["environment"] = "\n".join(
            f"Environment={_word(f'{name}={Path(path).absolute()}')}"
            for name, path in found.items() if path)
    text = (data_dir("systemd") / (SERVE_UNIT if system else STATION_UNIT)).read_text("utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}" + ("" if value else "\n"), value)
    return text


def install_service(cfg: Config, *, system: bool, config_file: str | None,
                    source: str | None, dry_run: bool, unit_dir: str | None,
                    out: TextIO | None = None) -> int:
    """`booth service install`: write the unit (or with dry_run print it) and print the
    commands that enable it; systemctl is left to the technician."""
    import platformdirs

    from booth.store.files import write_atomically

    name = SERVE_UNIT if system else STATION_UNIT
    text = service_unit(cfg, system=system, config_file=config_file, source=source,
                        version=systemd_version())
    folder = Path(unit_dir) if unit_dir else (
        Path("/etc/systemd/system") if system else
        Path(platformdirs.user_config_dir()) / "systemd" / "user")
    path = folder.absolute() / name
    if dry_run:
        print(f"# {path} (not written: --dry-run)\n{text}", file=out)
    elif os.name == "nt":
        raise BoothError("systemd units are for Linux; on Windows, start the booth with a "
                         "Task Scheduler task (see docs/season.md)")
    else:
        try:  # world-readable, as systemd's own units
            write_atomically(path, text.encode("utf-8"), mode=0o644)
        except OSError as exc:
            raise BoothError(f"cannot write {path}: {exc.strerror or exc}; run it as "
                             f"{'root (sudo)' if system else 'the kiosk user'}, or add "
                             "--dry-run to see the unit") from None
        print(f"wrote {path}", file=out)
    sudo = "sudo " if system and os.name != "nt" and os.geteuid() != 0 else ""
    scope = "" if system else "--user "
    steps = []
    if system:
        data = shlex.quote(str(service_data_dir(cfg, system)))
        steps.append(f"{sudo}useradd --system --home-dir /nonexistent --shell "
                     f"/usr/sbin/nologin {SERVICE_USER}    # once")
        if "StateDirectory=" not in text:
            steps.append(f"{sudo}install -d -o {SERVICE_USER} -g {SERVICE_USER} -m 0700 {data}")
    steps += [f"{sudo}systemctl {scope}daemon-reload",
              f"{sudo}systemctl {scope}enable --now {name}",
              f"{sudo}journalctl {scope}-u {name} -f    # its log"]
    print("then run:\n" + "\n".join(f"    {step}" for step in steps), file=out)
    if not system and os.name != "nt" and os.geteuid() == 0:
        print("note: this is root's user service; the station belongs to the kiosk user: run "
              "`booth service install` as that user", file=out)
    if system and "ProtectHome=read-only" in text:
        print(f"note: the booth, its config or data folder is in a home folder, which user "
              f"{SERVICE_USER} may not read; better install it under /opt", file=out)
    return 0
