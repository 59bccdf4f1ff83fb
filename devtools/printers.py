"""A real CUPS server on loopback with a PDF queue, started and stopped by the tests and the
scripts themselves.

    with cups_server() as cups:        # cups.env (CUPS_SERVER for clients), cups.queue
        subprocess.run(["lp", "-d", cups.queue, "photo.pdf"], env=cups.env)
        pdf = cups.wait_for_pdf()      # the page cups-pdf wrote

cupsd runs in the foreground (`cupsd -f`) with its own cupsd.conf and cups-files.conf in a
temporary folder, on a free loopback port, without authentication; its queue prints through
Debian's cups-pdf backend into that folder's out/. cups-pdf reads its configuration only from
/etc/cups (a compiled-in path): a queue whose device is `cups-pdf:/NAME` reads
/etc/cups/cups-pdf-NAME.conf, so each server writes such a file naming its own out/ folder
and removes it when it stops. Hence root (CI runs as root; cups-pdf's backend is root's
alone anyway). The server is stopped and its files removed when the block ends, even on
failure; a SIGSTOPped cupsd gets SIGCONT first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from devtools.services import (
    START_TIMEOUT,
    ServiceUnavailable,
    _log_tail,
    _on_free_ports,
    _temp_dir,
    free_ports,
)

CUPS_PDF_PPD = Path("/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd")
CUPS_PDF_BACKEND = Path("/usr/lib/cups/backend/cups-pdf")
CUPS_PDF_CONF_DIR = Path("/etc/cups")  # cups-pdf's compiled-in configuration folder

# Everyone on loopback may do everything: the server lives for one test.
_CUPSD_CONF = """LogLevel debug
Listen 127.0.0.1:{port}
Browsing No
WebInterface No
DefaultAuthType None
JobRetryLimit 0
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""
_FILES_CONF = """ServerRoot {root}/etc
RequestRoot {root}/spool
CacheDir {root}/cache
StateDir {root}/state
TempDir {root}/tmp
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
SystemGroup root
"""


class CupsServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "out"  # where cups-pdf writes the printed pages
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.queue = "booth"
        self.instance = f"booth-test-{uuid.uuid4().hex[:10]}"
        self.cups_pdf_conf = CUPS_PDF_CONF_DIR / f"cups-pdf-{self.instance}.conf"

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process that talks to this server (lp, lpstat, the booth)."""
        return {**os.environ, "CUPS_SERVER": f"127.0.0.1:{self.port}", "LC_ALL": "C"}

    def prepare(self) -> None:
        for sub in ("etc", "spool", "cache", "state", "log", "out"):
            (self.root / sub).mkdir()
        # Filters run as the lp user: they write temporary files here and read the spool.
        (self.root / "tmp").mkdir(mode=0o1777)
        (self.root / "tmp").chmod(0o1777)
        (self.root / "etc" / "cups-files.conf").write_text(_FILES_CONF.format(root=self.root))
        self.cups_pdf_conf.write_text(f"Out {self.out}\nAnonDirName {self.out}\nLabel 0\n")

    def start(self) -> None:
        """Start (again) on the same port; nothing if it is running."""
        if self.process is not None:
            return
        (self.root / "etc" / "cupsd.conf").write_text(_CUPSD_CONF.format(port=self.port))
        log = (self.root / "log" / "cupsd.out").open("ab")
        self.process = subprocess.Popen(
            ["cupsd", "-f", "-c", str(self.root / "etc" / "cupsd.conf"),
             "-s", str(self.root / "etc" / "cups-files.conf")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.run("lpstat", "-r", check=False).stdout.startswith("scheduler is running"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"cupsd did not start on port {self.port}:\n"
                                   f"{_log_tail(self.root / 'log' / 'error_log')}\n"
                                   f"{_log_tail(self.root / 'log' / 'cupsd.out')}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop cupsd (a stopped one is continued first); start() brings it back."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: cupsd hangs (every client waits); resume() continues it."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=30)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}")
        return done

    def add_queue(self, name: str | None = None) -> str:
        """A cups-pdf queue (the default one, self.queue, unless named), enabled, accepting."""
        name = name or self.queue
        self.run("lpadmin", "-p", name, "-E", "-v", f"cups-pdf:/{self.instance}",
                 "-P", str(CUPS_PDF_PPD))
        return name

    def pdfs(self) -> list[Path]:
        return sorted(self.out.glob("*.pdf"), key=lambda p: p.stat().st_mtime)

    def wait_for_pdf(self, count: int = 1, timeout: float = 30.0) -> Path:
        """The newest page once cups-pdf has written `count` of them (complete: its job is
        no longer among the queue's)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pdfs = self.pdfs()
            if len(pdfs) >= count and not self.run("lpstat", "-o", check=False).stdout.strip():
                return pdfs[-1]
            time.sleep(0.1)
        raise AssertionError(f"cups-pdf wrote {len(self.pdfs())} page(s) of {count} in "
                             f"{timeout} s:\n{_log_tail(self.root / 'log' / 'error_log', 15)}")


def _check_installed() -> None:
    if shutil.which("cupsd") is None or shutil.which("lpadmin") is None:
        raise ServiceUnavailable("CUPS is not installed (no cupsd or lpadmin); run "
                                 "scripts/setup-tests or apt-get install cups")
    if not CUPS_PDF_PPD.is_file() or not CUPS_PDF_BACKEND.exists():
        raise ServiceUnavailable("cups-pdf is not installed; apt-get install "
                                 "printer-driver-cups-pdf")
    if os.geteuid() != 0:
        raise ServiceUnavailable("the test CUPS server needs root: cups-pdf reads its output "
                                 "folder only from /etc/cups, and its backend is root's")


@contextlib.contextmanager
def cups_server(queue: bool = True) -> Iterator[CupsServer]:
    """A fresh cupsd on a free loopback port; with `queue`, its PDF queue `.queue` added."""
    _check_installed()
    server = CupsServer(_temp_dir("booth-cups-"))
    server.root.chmod(0o755)  # the lp user reaches the spool and out/ through it
    try:
        server.prepare()

        def start_on(port: int) -> None:
            server.port = port
            server.start()

        _on_free_ports(lambda: start_on(free_ports(1)[0]))
        if queue:
            server.add_queue()
        yield server
    finally:
        server.stop()
        server.cups_pdf_conf.unlink(missing_ok=True)
        shutil.rmtree(server.root, ignore_errors=True)
