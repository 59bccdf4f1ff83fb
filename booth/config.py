"""Typed configuration from an optional TOML file and the environment: the one place where
settings and environment variables are read; the rest of the package is given a Config.

Every setting has a default; a file only lists what it changes. Unknown keys, wrong types and
out-of-range values are refused with one line naming the setting and what it accepts. Three
environment variables count too: BOOTH_PLATE (a path to the plate; it wins over the file),
BOOTH_MODNET (a path to the matting model; it wins over the file) and BOOTH_CACHE_DIR (where
downloaded plates go, unless the file says).

Each setting's doc= is its description in docs/configuration.md, which reference_markdown()
generates (`python -m booth.config > docs/configuration.md`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

import platformdirs

from booth.errors import BoothError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

APP_NAME = "selfie-booth"
ENV_PLATE = "BOOTH_PLATE"
ENV_CACHE_DIR = "BOOTH_CACHE_DIR"
ENV_MODNET = "BOOTH_MODNET"
ENVIRONMENT = {
    ENV_PLATE: "a path to the plate image; wins over [scene] plate (an offline kiosk: a copy of "
               "PIA24542~large.jpg)",
    ENV_MODNET: "a path to the matting model modnet.onnx; wins over [models] modnet (where "
                "`booth models install` puts it, and where the booth looks for it)",
    ENV_CACHE_DIR: "where downloaded plates go, unless cache_dir is set",
}


def _opt(default: Any, *, lo: float | None = None, hi: float | None = None,
         choices: tuple[str, ...] | None = None, doc: str = "") -> Any:
    return field(default=default, metadata={"lo": lo, "hi": hi, "choices": choices, "doc": doc})


def _internal(default: Any) -> Any:
    """Known to the booth, not a setting: a file that names it is refused like a typo."""
    return field(default=default, metadata={"internal": True})


@dataclass
class SceneConfig:
    name: str = _opt("sol46", doc="a scene folder under overlays/, or a path to a scene.toml")
    plate: str = _opt("", doc="path to the plate image (else BOOTH_PLATE, the cache, a download)")
    plate_url: str = _opt("", doc="where to download the plate (default: the scene's URL)")
    plate_from: str = _internal("the config's [scene] plate")  # for messages about `plate`


@dataclass
class ModelsConfig:
    modnet: str = _opt("", doc="path to modnet.onnx, the saved photo's matting model (empty: "
                       "models/modnet.onnx in the data dir; BOOTH_MODNET wins); `booth models "
                       "install` puts it there; without it, MediaPipe alone cuts the photo out")
    modnet_from: str = _internal("the config's [models] modnet")  # for messages about `modnet`


@dataclass
class CameraConfig:
    width: int = _opt(1280, lo=160, hi=7680, doc="the preview's camera mode, in pixels")
    height: int = _opt(720, lo=120, hi=4320, doc="with width")
    fps: int = _opt(30, lo=1, hi=120, doc="frames per second asked of the camera")
    stall_seconds: float = _opt(1.5, lo=0.2, hi=30.0,
                                doc="no new frame for this long means the camera is lost")
    still_width: int = _opt(0, lo=0, hi=12000, doc="the photo is taken in this mode of the "
                            "camera (0: from the preview)")
    still_height: int = _opt(0, lo=0, hi=9000, doc="with still_width, in the shape of width x "
                             "height (0 x 0: the photo from the preview frame)")

    def __post_init__(self) -> None:
        # Checked here because the two settings only make sense together and with the preview.
        still = (self.still_width, self.still_height)
        if still == (0, 0):
            return
        if 0 in still:
            raise BoothError("config: camera.still_width and camera.still_height go together; "
                             "set both, or both to 0 for no still")
        if self.still_height <= self.height:
            raise BoothError(f"config: camera.still_height = {self.still_height} is no bigger "
                             f"than camera.height = {self.height}; a still must be larger than "
                             "the preview (or set both still sizes to 0)")
        if abs(self.still_width * self.height - self.still_height * self.width) > \
                0.01 * self.width * self.still_height:
            raise BoothError(f"config: camera.still_width x camera.still_height "
                             f"({self.still_width}x{self.still_height}) must have the shape of "
                             f"camera.width x camera.height ({self.width}x{self.height}), e.g. "
                             f"{round(self.still_height * self.width / self.height)}x"
                             f"{self.still_height}: the photo keeps the preview's framing")


@dataclass
class SegmentationConfig:
    model: str = _opt("landscape", doc="landscape, square, or a path to a .tflite selfie model")
    min_person_fraction: float = _opt(0.01, lo=0.0, hi=0.5,
                                      doc="blobs smaller than this share of the frame are ignored")


@dataclass
class StationConfig:
    countdown_seconds: int = _opt(3, lo=1, hi=10, doc="the countdown before the photo")
    result_seconds: float = _opt(30.0, lo=3.0, hi=600.0, doc="the result screen (photo and QR "
                                 "code) stays this long, unless a press ends it")
    mirror: bool = _opt(True, doc="show the preview as a mirror (the photo is what was seen)")
    fullscreen: bool = _opt(True, doc="fill the screen (false: a window; `booth run --windowed`)")
    display_width: int = _opt(1280, lo=320, hi=7680, doc="the station's screen is drawn at this "
                              "size and scaled to fit: the screen's resolution is sharpest")
    display_height: int = _opt(720, lo=240, hi=4320, doc="with display_width")
    keep_raw: bool = _opt(False, doc="also keep the raw camera frame of each capture")
    boomerang: bool = _opt(True, doc="offer a Boomerang beside the Photo on the attract screen: "
                           "a 2.5 s clip of the visitor in the scene, played forwards then "
                           "backwards (needs PyAV's libx264, and a camera of 24 fps or more)")


@dataclass
class StoreConfig:
    retention_hours: float = _opt(24.0, lo=0.05, hi=24.0 * 90, doc="photos are deleted this "
                                  "long after they were taken (0.05: 3 minutes; 2160: 90 days)")
    jpeg_quality: int = _opt(90, lo=50, hi=100, doc="the saved photo's JPEG quality")
    database_url: str = _opt("", doc="the shared store's PostgreSQL, e.g. "
                             "postgresql://booth@db.example:5432/booth (password: in the URL "
                             "or PGPASSWORD; empty: SQLite in the data dir); with photos_url")
    photos_url: str = _opt("", doc="the shared store's bucket, e.g. s3://bucket/prefix "
                           "(empty: the data dir); with database_url")
    s3_endpoint_url: str = _opt("", doc="an S3-compatible server (MinIO, SeaweedFS, R2...), e.g. "
                                "http://127.0.0.1:8333 (empty: AWS; credentials from "
                                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION or ~/.aws)")
    upload_wait_seconds: float = _opt(20.0, lo=0, hi=600, doc="at a clean exit, how long a "
                                      "station waits for its photos to reach the shared store")
    outbox_limit_mb: float = _opt(2000.0, lo=10, hi=1e7, doc="a station on the shared store "
                                  "keeps at most this many MB of captures waiting for it (a "
                                  "long outage; about 1 MB a photo): past it, captures fail")

    def __post_init__(self) -> None:
        if bool(self.database_url) != bool(self.photos_url):
            raise BoothError("config: store.database_url and store.photos_url go together: "
                             "set both for a shared store, or neither for the data dir")
        if self.database_url and urlsplit(self.database_url).scheme not in (
                "postgresql", "postgres"):
            raise BoothError(f"config: store.database_url = {redacted_url(self.database_url)!r}; "
                             "use postgresql://user@host:5432/database")
        if self.photos_url and not self.photos_url.startswith("s3://"):
            raise BoothError(f"config: store.photos_url = {self.photos_url!r}; use "
                             "s3://bucket or s3://bucket/prefix")
        if self.s3_endpoint_url and urlsplit(self.s3_endpoint_url).scheme not in (
                "http", "https"):
            raise BoothError(f"config: store.s3_endpoint_url = {self.s3_endpoint_url!r}; use "
                             "http://host:port or https://host")


@dataclass
class ServerConfig:
    public_url: str = _opt("", doc="what the QR codes open, e.g. http://192.168.1.20:8000 "
                           "(empty: this machine's LAN address and port)")
    host: str = _opt("0.0.0.0", doc="the address the web app listens on (0.0.0.0: every "
                     "network); `--host` wins")
    port: int = _opt(8000, lo=1, hi=65535, doc="the web app's port; `--port` wins")
    photo_requests_per_minute: int = _opt(60, lo=1, hi=100000,
                                          doc="per phone, on the photo pages and images")
    trusted_proxies: int = _opt(0, lo=0, hi=5, doc="reverse proxies in front of the booth "
                                "whose X-Forwarded-For/-Proto/-Host are believed (0: none)")
    metrics_token: str = _opt("", doc="a bearer token (at least 16 characters) that opens "
                              "/metrics to a Prometheus server on another machine (empty: "
                              "/metrics answers this machine only)")
    # LAN mode only (phones reach the booth on the venue's own network): operators of a booth
    # whose photos are on a public server leave wifi_ssid empty, and no Wi-Fi code is shown.
    wifi_ssid: str = _opt("", doc="the venue network's name: the result screen adds a "
                          "'1. Join the Wi-Fi' code beside the photo's (empty: no Wi-Fi code)")
    wifi_password: str = _opt("", doc="its WPA password, 8 to 63 characters, shown on the "
                              "screen too: a guest network's (empty: an open network)")
    wifi_hidden: bool = _opt(False, doc="the network does not broadcast its name")

    def __post_init__(self) -> None:
        if self.metrics_token and (len(self.metrics_token) < 16 or not self.metrics_token
                                   .isascii() or not self.metrics_token.isprintable()
                                   or " " in self.metrics_token):
            raise BoothError("config: server.metrics_token must be at least 16 printable "
                             "ASCII characters without spaces (e.g. the output of "
                             "`openssl rand -hex 16`), or empty")
        if not self.wifi_ssid:
            if self.wifi_password or self.wifi_hidden:
                name = "wifi_password" if self.wifi_password else "wifi_hidden"
                raise BoothError(f"config: server.{name} needs server.wifi_ssid, the network's "
                                 "name; set it too (or remove both for no Wi-Fi code)")
            return
        if len(self.wifi_ssid.encode("utf-8")) > 32:
            raise BoothError(f"config: server.wifi_ssid is {_length(self.wifi_ssid)} long; a "
                             "Wi-Fi network's name has at most 32 bytes, as the router shows it")
        password = self.wifi_password
        raw_key = len(password) == 64 and all(c in "0123456789abcdefABCDEF" for c in password)
        if password and not (8 <= len(password.encode("utf-8")) <= 63 or raw_key):
            raise BoothError(f"config: server.wifi_password is {_length(password)} long; a "
                             "WPA password has 8 to 63 (or is 64 hex digits); leave it empty "
                             "for an open network")


def _length(text: str) -> str:
    """A length as the limits count it: in bytes, which are characters unless it is not ASCII."""
    size = len(text.encode("utf-8"))
    return f"{size} characters" if size == len(text) else f"{size} bytes (UTF-8)"


# What may happen to a capture, each an output module in booth/station/outputs/ (built by
# booth.wiring.make_outputs): a new output adds its name here.
OUTPUTS = {"store": "publish each capture to the store (the data dir or the shared store); "
                    "its link is the result screen's QR code",
           "printer": "print photos through CUPS ([printer]; on when its name is set)"}
PAPERS = ("4x6in", "10x15cm", "A6", "default")  # booth.station.outputs.page's sizes


@dataclass
class OutputsConfig:
    enabled: tuple[str, ...] = _opt(("store",), choices=tuple(OUTPUTS), doc="what happens to "
                                    "each capture, in this order: " + "; ".join(
                                        f"{name}: {doc}" for name, doc in OUTPUTS.items()))

    def __post_init__(self) -> None:
        if "store" not in self.enabled:
            raise BoothError(f"config: outputs.enabled = {list(self.enabled)!r} has no "
                             "\"store\"; the result screen's QR code is the store's link, "
                             "so every station keeps it")


@dataclass
class PrinterConfig:
    name: str = _opt("", doc="the CUPS queue photos are printed on (`lpstat -p` lists them; "
                     "empty: no printing); see printing.md")
    paper: str = _opt("4x6in", choices=PAPERS, doc="the paper in the printer (default: the "
                      "queue's own default size)")
    copies_per_photo: int = _opt(1, lo=1, hi=10, doc="prints a visitor may ask for one photo")
    daily_limit: int = _opt(0, lo=0, hi=100000, doc="prints a day on this queue, counted in "
                            "the store, staff prints too (0: no limit)")
    auto_print: bool = _opt(False, doc="print every photo once (copies_per_photo copies) "
                            "instead of offering a Print button")


@dataclass
class LanguagesConfig:
    default: str = _opt("en", doc="the station's language at every attract; the web's fallback")
    folder: str = _opt("", doc="a folder of more .po files, one per language code (new "
                       "languages, or changed messages)")


@dataclass
class PrivacyConfig:
    text: str = _opt("", doc="the museum's own privacy notice (default: the booth's, translated)")
    policy_url: str = _opt("", doc="the museum's privacy policy, e.g. https://museum.org/privacy")


@dataclass
class Config:
    data_dir: str = _opt("", doc="where photos, the database and secrets/ live (empty: the "
                         "user's data folder, e.g. ~/.local/share/selfie-booth); `--data-dir` "
                         "wins")
    cache_dir: str = _opt("", doc="where downloaded plates are kept (empty: BOOTH_CACHE_DIR, "
                          "else the user's cache folder)")
    scene: SceneConfig = field(default_factory=SceneConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)
    station: StationConfig = field(default_factory=StationConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    printer: PrinterConfig = field(default_factory=PrinterConfig)
    languages: LanguagesConfig = field(default_factory=LanguagesConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    def __post_init__(self) -> None:  # a queue's name is enough to turn printing on
        if self.printer.name and "printer" not in self.outputs.enabled:
            self.outputs.enabled += ("printer",)
        elif "printer" in self.outputs.enabled and not self.printer.name:
            raise BoothError("config: outputs.enabled names \"printer\" but [printer] name is "
                             "empty; set it to the CUPS queue's name (`lpstat -p` lists them)")

    def data_path(self) -> Path:
        return Path(self.data_dir or platformdirs.user_data_dir(APP_NAME, appauthor=False))

    def cache_path(self) -> Path:
        return Path(self.cache_dir or platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def redacted_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


_KIND = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _coerce(where: str, value: Any, typ: type, meta: dict) -> Any:
    if typing.get_origin(typ) is tuple:  # a list of names, each one of the choices, once
        return _coerce_list(where, value, meta)
    if typ is bool:
        ok = isinstance(value, bool)
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typ is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, str)
    if not ok:
        raise BoothError(f"config: {where} must be {_KIND.get(typ, typ.__name__)}, "
                         f"got {value!r}")
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    # Written as "not inside" so that nan (TOML allows it) is refused too.
    if (lo is not None and not value >= lo) or (hi is not None and not value <= hi):
        raise BoothError(f"config: {where} = {value!r} is out of range; use {lo} to {hi}")
    if choices and value not in choices:
        raise BoothError(f"config: {where} = {value!r}; use one of {', '.join(choices)}")
    return value


def _coerce_list(where: str, value: Any, meta: dict) -> tuple[str, ...]:
    choices = meta["choices"]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BoothError(f"config: {where} must be a list of names, e.g. [\"{choices[0]}\"], "
                         f"got {value!r}")
    for name in value:
        if name not in choices:
            raise BoothError(f"config: {where} names {name!r}; use some of "
                             f"{', '.join(choices)}")
        if value.count(name) > 1:
            raise BoothError(f"config: {where} names {name!r} twice; name each once")
    return tuple(value)


def _build(cls: type, data: dict, prefix: str) -> Any:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}{unknown[0]}"
        raise BoothError(f"config: unknown setting {where!r}; known here: {', '.join(fields)}")
    kwargs = {}
    for name, value in data.items():
        typ = hints[name]
        where = f"{prefix}{name}"
        if dataclasses.is_dataclass(typ):
            if not isinstance(value, dict):
                raise BoothError(f"config: [{where}] must be a table of settings")
            kwargs[name] = _build(typ, value, f"{where}.")
        else:
            kwargs[name] = _coerce(where, value, typ, dict(fields[name].metadata))
    return cls(**kwargs)


def load_config(path: str | os.PathLike | None,
                environ: Mapping[str, str] | None = None) -> Config:
    """Read a config file (None: all defaults) and the environment (default: os.environ).
    Raises BoothError on any problem."""
    cfg = Config() if path is None else _read(Path(path))
    environ = os.environ if environ is None else environ
    if environ.get(ENV_PLATE):
        cfg.scene.plate, cfg.scene.plate_from = environ[ENV_PLATE], ENV_PLATE
    if environ.get(ENV_MODNET):
        cfg.models.modnet, cfg.models.modnet_from = environ[ENV_MODNET], ENV_MODNET
    if not cfg.cache_dir and environ.get(ENV_CACHE_DIR):
        cfg.cache_dir = environ[ENV_CACHE_DIR]
    return cfg


def settings(cls: type = Config, prefix: str = "") -> list[tuple[str, type, dataclasses.Field]]:
    """Every setting a file may name, as (dotted name, type, field), in the file's order."""
    hints = get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            found += settings(hints[f.name], f"{prefix}{f.name}.")
        else:
            found.append((f"{prefix}{f.name}", hints[f.name], f))
    return found


def _toml(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def reference_markdown() -> str:
    """docs/configuration.md, made from the settings' own descriptions
    (`python -m booth.config > docs/configuration.md`; a test keeps the two in step)."""
    lines = ["# Configuration reference", "",
             "<!-- Generated by `python -m booth.config > docs/configuration.md`; "
             "edit the descriptions in booth/config.py. -->", "",
             "A TOML file given with `--config FILE`; every setting is optional. Unknown keys "
             "and bad values are refused with one line naming the setting. For example:", "",
             "```toml", "data_dir = \"/srv/booth\"", "", "[station]",
             "display_width = 1920", "display_height = 1080", "```", "",
             "A scene (the plate, where visitors stand, the effects) is a file of its own, "
             "`overlays/NAME/scene.toml`: see [cut-out quality](cutout-quality.md#effects)."]
    section = None
    for name, typ, f in settings():
        table = name.rpartition(".")[0]
        if table != section:
            section = table
            lines += ["", f"## [{table}]" if table else "## Top level (before any table)", "",
                      "| key | default | accepts | description |", "|---|---|---|---|"]
        meta = f.metadata
        accepts = _KIND.get(typ, getattr(typ, "__name__", ""))
        if typing.get_origin(typ) is tuple:
            accepts = "a list of names, each once: " + ", ".join(meta["choices"])
        elif meta["choices"]:
            accepts = "one of " + ", ".join(meta["choices"])
        elif meta["lo"] is not None:
            accepts += f", {meta['lo']} to {meta['hi']}"
        lines.append(f"| `{name.rpartition('.')[2]}` | `{_toml(f.default)}` | {accepts} | "
                     f"{_cell(meta['doc'])} |")
    lines += ["", "## Environment", "", "| variable | meaning |", "|---|---|"]
    lines += [f"| `{var}` | {_cell(doc)} |" for var, doc in ENVIRONMENT.items()]
    return "\n".join(lines) + "\n"


def _read(p: Path) -> Config:
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BoothError(f"config file {p} does not exist; check the --config path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BoothError(f"config file {p} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BoothError(f"config file {p} is not valid TOML: {exc}") from None
    return _build(Config, data, "")


if __name__ == "__main__":
    print(reference_markdown(), end="")
