"""Shared test set-up: where the real media live, a plate for every test that needs one, a
store and the web app on it, the real servers, and the tiers.

The media folder comes from BOOTH_ASSETS (default: ../shared/assets beside the checkout).
Tests that need a missing file or tool skip with the reason on a developer's machine; under CI
(`CI` set) they fail instead, so CI can never pass by skipping the real-media tests.

Tiers (markers declared in pyproject.toml): browser, services, kiosk, slow. The fast tier is
`pytest -m "not (browser or services or kiosk or slow)"`; plain `pytest` runs everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import numpy as np
    from flask import Flask

    from booth.config import Config
    from booth.store import Store

ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("BOOTH_ASSETS") or ROOT.parent / "shared" / "assets")
PLATE = "scenes/sol46/PIA24542_large.jpg"
# The real matting model, installed by scripts/setup-tests (`booth models install --dir .models`).
MODNET = ROOT / ".models" / "modnet.onnx"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable(reason: str):
    """A test cannot run here: skip it, but fail under CI, which must run every test."""
    if under_ci():
        pytest.fail(f"{reason} (CI runs every test; scripts/setup-tests installs what they need)")
    pytest.skip(reason)


def read_qr(image: np.ndarray) -> str:
    """The text of the QR code in a BGR image ("" for none), as OpenCV reads it: its classic
    detector, else its ArUco-based one. The classic one alone misses about 1 in 100 of the
    result screens' codes, whatever their rendering (1 of 300 in three screen sizes here, and
    one in a suite run); the second read all 300."""
    import cv2

    text = cv2.QRCodeDetector().detectAndDecode(image)[0]
    return text or cv2.QRCodeDetectorAruco().detectAndDecode(image)[0]


def asset(relative: str) -> Path:
    path = ASSETS / relative
    if not path.is_file():
        unavailable(f"test media {path} is missing; set BOOTH_ASSETS to the shared assets folder")
    return path


def headless_run(tmp_path: Path, *args: str, public_url: str = "",
                 timeout: float = 180) -> subprocess.CompletedProcess:
    """`booth run --headless` on the shared video into tmp_path/data, with a 1 s countdown and
    a 3 s result screen (and `public_url`, if given) and the web app on a free loopback port;
    `args` add to it (--auto-capture, --max-captures...)."""
    config = tmp_path / "booth.toml"
    server = f'[server]\npublic_url = "{public_url}"\n' if public_url else ""
    config.write_text(server + "[station]\ncountdown_seconds = 1\nresult_seconds = 3\n")
    return subprocess.run(
        [sys.executable, "-m", "booth", "run", "--headless", "--source",
         str(asset("video/intel_asl_book.mp4")), "--config", str(config), "--data-dir",
         str(tmp_path / "data"), "--host", "127.0.0.1", "--port", "0", *args],
        capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.fixture
def station_log() -> Iterator[list[str]]:
    """The station loop's log lines (booth.station.loop, INFO and up), as they come."""
    lines: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("booth.station.loop")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def plate_path() -> Path:
    return asset(PLATE)


@pytest.fixture
def modnet_path() -> Path:
    """The real MODNet file (skips, or fails under CI, when scripts/setup-tests has not run)."""
    if not MODNET.is_file():
        unavailable(f"the matting model {MODNET} is missing; install it with "
                    "`booth models install --dir .models` (scripts/setup-tests does)")
    return MODNET


@pytest.fixture(scope="session")
def issue8_measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict]]:
    """Issue 8's set measured once a session (devtools.quality.measure, about 30 s) for
    MODNet alone and the booth's saved photo with the model: tests/test_solid.py holds it
    to the opacity rule, tests/test_fusion.py to the held-out gate."""
    if not MODNET.is_file():
        unavailable(f"the matting model {MODNET} is missing (scripts/setup-tests installs it)")
    from booth.vision.modnet import Modnet
    from devtools.quality import cutout_of, measure, modnet_of

    alone = Modnet(MODNET)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BOOTH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        env.setenv("BOOTH_PLATE", str(asset(PLATE)))
        env.setenv("BOOTH_MODNET", str(MODNET))
        yield measure(ASSETS, {"modnet": modnet_of(alone), "booth": cutout_of},
                      sets=("issue8",))
    alone.close()


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Every test gets its own plate cache, BOOTH_PLATE points at the shared plate and
    BOOTH_MODNET at the checkout's model (never the user's own); CI must have the model."""
    monkeypatch.setenv("BOOTH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    plate = ASSETS / PLATE
    if plate.is_file():
        monkeypatch.setenv("BOOTH_PLATE", str(plate))
    else:
        monkeypatch.delenv("BOOTH_PLATE", raising=False)
    monkeypatch.setenv("BOOTH_MODNET", str(MODNET))
    if under_ci() and not MODNET.is_file():
        unavailable(f"the matting model {MODNET} is missing")


def plate_config():
    """Default settings with the shared plate configured (for module-scoped fixtures, which
    run before the per-test environment is set)."""
    from booth.config import Config

    cfg = Config()
    cfg.scene.plate = str(asset(PLATE))
    cfg.models.modnet = str(MODNET)
    return cfg


# A store in the test's own folder, and the web app on it.

@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A SQLite store of its own (tmp_path/data), closed after the test."""
    from booth.store import Store

    s = Store(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture
def make_app(request: pytest.FixtureRequest):
    """make_app(cfg=None, *, store=None, testing=True, clock=time.time, **sections) -> the
    Flask app (`clock`: the statistics' time).

    cfg defaults to Config(); sections change it, one dict per config section, e.g.
    make_app(server={"photo_requests_per_minute": 4}). store defaults to the `store` fixture
    (a module's own `store` fixture replaces it). testing=True gives the app limits of its own
    and Flask's test mode; testing=False is the app as `booth serve` makes it."""
    from booth.config import Config
    from booth.webapp import create_app

    def make(cfg: Config | None = None, *, store: Store | None = None, testing: bool = True,
             clock: Callable[[], float] = time.time, **sections: dict[str, Any]) -> Flask:
        cfg = cfg or Config()
        for section, values in sections.items():
            for key, value in values.items():
                assert hasattr(getattr(cfg, section), key), f"no setting [{section}] {key}"
                setattr(getattr(cfg, section), key, value)
        if store is None:
            store = request.getfixturevalue("store")
        return create_app(cfg, store, testing=testing, clock=clock)

    return make


@pytest.fixture
def app(make_app) -> Flask:
    """The web app on the `store` fixture, default settings, in test mode."""
    return make_app()


@pytest.fixture
def client(app: Flask):
    """Flask's test client on `app`."""
    return app.test_client()


# Real PostgreSQL and S3 servers (devtools/services.py): one of each per test session, started
# only when a test asks for it; every test gets its own database or bucket on it.

def _started(stack: contextlib.ExitStack, service):
    from devtools.services import ServiceUnavailable

    try:
        return stack.enter_context(service)
    except ServiceUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL 15 server: .url, .new_database(), .stop()/.start() (same port, same data)."""
    from devtools.services import postgres_server

    with contextlib.ExitStack() as stack:
        yield _started(stack, postgres_server())


@pytest.fixture(scope="session")
def s3_server():
    """A SeaweedFS S3 server: .endpoint_url, .new_bucket(), .client, .env (credentials),
    .stop()/.start() (same ports, same data)."""
    from devtools.services import s3_server as start_s3

    with contextlib.ExitStack() as stack:
        yield _started(stack, start_s3())


@pytest.fixture
def cups(monkeypatch: pytest.MonkeyPatch):
    """A cupsd of its own on loopback with a cups-pdf queue (devtools/printers.py), stopped
    after the test; CUPS_SERVER points every client (lp, lpstat, the booth) at it."""
    from devtools.printers import cups_server

    with contextlib.ExitStack() as stack:
        server = _started(stack, cups_server())
        monkeypatch.setenv("CUPS_SERVER", f"127.0.0.1:{server.port}")
        yield server


@pytest.fixture
def pg_url(pg_server) -> Iterator[str]:
    """The URL of a fresh database of its own, dropped after the test."""
    pg_server.start()  # back if an earlier test left it stopped
    url = pg_server.new_database()
    yield url
    with contextlib.suppress(Exception):  # this test may have left the server down
        pg_server.drop_database(url.rsplit("/", 1)[1])


@dataclass(frozen=True)
class S3Bucket:
    name: str
    endpoint_url: str
    client: Any  # a boto3 S3 client with the test credentials

    @property
    def url(self) -> str:
        return f"s3://{self.name}"


@pytest.fixture
def s3_bucket(s3_server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A fresh bucket of its own, removed after the test; the AWS_* credentials that the
    server accepts are set in the environment, as the product reads them."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    s3_server.start()  # back if an earlier test left it stopped
    bucket = S3Bucket(s3_server.new_bucket(), s3_server.endpoint_url, s3_server.client)
    yield bucket
    with contextlib.suppress(Exception):  # this test may have left the server down
        s3_server.client.delete_bucket(Bucket=bucket.name)  # with its objects (SeaweedFS)


@pytest.fixture
def s3_store_url(s3_bucket: S3Bucket) -> str:
    """s3://BUCKET for a fresh bucket; its server is at s3_bucket.endpoint_url."""
    return s3_bucket.url


@pytest.fixture
def shared(pg_url, s3_bucket):
    """The shared store's settings (booth.store.Shared) on a fresh database and bucket."""
    from booth.store import Shared

    return Shared(pg_url, f"s3://{s3_bucket.name}/booth", s3_bucket.endpoint_url)


# Any test that needs one of the real servers is in the `services` tier, however it asks for
# it (directly or through another fixture): no such test can miss the marker.
SERVICE_FIXTURES = frozenset({"pg_server", "s3_server", "pg_url", "s3_bucket", "s3_store_url",
                              "shared", "cups"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)
