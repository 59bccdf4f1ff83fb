"""CUPS through its standard command-line clients: `lpstat` for a queue's state, `lpoptions`
for its paper sizes, `lp` to print.

Chosen over pycups (libcups in the station's process) by measurement (docs/printing.md,
scripts/print_time.py): both hand a job to cupsd in tens of milliseconds, but a hung cupsd
(SIGSTOPped) holds a pycups call for as long as it hangs, with no timeout to give it, and a
thread cannot be stopped; a client program is killed at its timeout, and every call here has
one. Each runs in the C locale, so its words are CUPS's own, whatever the station's language.
CUPS_SERVER in the environment (or the client's own configuration) says which cupsd to ask.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

from booth.station.outputs.page import Paper

TIMEOUT = 10.0  # seconds for any one client call
# Printer-state-reasons that mean nothing prints now (CUPS adds -error, -warning or -report).
_BLOCKING = ("offline", "paused", "media-empty", "media-needed", "media-jam", "door-open",
             "cover-open", "input-tray-missing", "marker-supply-empty", "shutdown", "stopped")
_JOB = re.compile(r"request id is (\S+)")


class PrintFailed(Exception):
    """What CUPS said, or that it said nothing in time: one line for the log and staff."""


@dataclass(frozen=True)
class QueueState:
    state: str  # idle, printing, paused, rejecting jobs, missing, CUPS not running, unknown
    message: str = ""  # the queue's message and its alerts
    blocked: bool = False  # an alert such as offline-report or media-empty

    @property
    def usable(self) -> bool:
        return self.state in ("idle", "printing") and not self.blocked


def _run(args: list[str], *, data: bytes | None = None,
         timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, input=data, capture_output=True, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        raise PrintFailed(f"CUPS did not answer `{args[0]}` within {timeout:g} s") from None
    except OSError as exc:
        raise PrintFailed(f"cannot run {args[0]} ({exc.strerror}); apt-get install "
                          "cups-client") from None


def _text(done: subprocess.CompletedProcess) -> str:
    lines = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


def queue_state(name: str, timeout: float = TIMEOUT) -> QueueState:
    """The queue as CUPS sees it now (never raises: a failure is a state)."""
    try:
        done = _run(["lpstat", "-l", "-p", name, "-a", name], timeout=timeout)
        if done.returncode != 0:  # no such queue, or no cupsd to ask (which lpstat tells apart)
            running = _run(["lpstat", "-r"], timeout=timeout).stdout.startswith(b"scheduler is "
                                                                                b"running")
            return QueueState("missing", f"no queue {name!r} in CUPS") if running else \
                QueueState("CUPS not running", _text(done))
    except PrintFailed as exc:
        return QueueState("unknown", str(exc))
    return parse_lpstat(done.stdout.decode(errors="replace"))


def parse_lpstat(text: str) -> QueueState:
    """`lpstat -l -p Q -a Q`'s words (C locale) as a QueueState."""
    lines = text.splitlines()
    first = lines[0] if lines else ""
    state = ("paused" if " disabled since " in first else
             "printing" if " now printing " in first else "idle" if " is idle." in first else
             "unknown")
    if any(" not accepting requests" in line for line in lines):
        state = "paused" if state == "paused" else "rejecting jobs"
    said = lines[1].strip() if len(lines) > 1 and ":" not in lines[1] else ""
    alerts = next((line.split(":", 1)[1].split() for line in lines
                   if line.strip().startswith("Alerts:")), [])
    alerts = [a for a in alerts if a not in ("none", "paused")]
    blocked = any(re.sub(r"-(error|warning|report)$", "", a).startswith(_BLOCKING) or
                  a.endswith("-error") for a in alerts)
    message = "; ".join(part for part in (said, " ".join(alerts)) if part)
    return QueueState(state, message, blocked)


def media(name: str, paper: Paper | None, timeout: float = TIMEOUT) -> str | None:
    """The `media` option for the paper on this queue: the queue's own size of that paper,
    its borderless variant where it has one (PPD names such as 4x6.Borderless, A6.FullBleed),
    else the IPP media name, for CUPS to match; None for the queue's default paper."""
    if paper is None:
        return None
    done = _run(["lpoptions", "-p", name, "-l"], timeout=timeout)
    line = next((line for line in done.stdout.decode(errors="replace").splitlines()
                 if line.startswith("PageSize")), "")
    return choose_media([size.lstrip("*") for size in line.partition(":")[2].split()], paper)


def choose_media(sizes: list[str], paper: Paper) -> str:
    """The paper among a queue's PageSize choices (see media)."""
    wanted = {paper.name.lower(), paper.pwg.lower(), *_OTHER_NAMES.get(paper.name, ())}
    own = [s for s in sizes if s.split(".")[0].lower() in wanted]
    borderless = [s for s in own if re.search(r"borderless|fullbleed", s, re.I)]
    if borderless or own:
        return (borderless or own)[0]
    if any(s.startswith("Custom.") for s in sizes):  # a PDF queue (cups-pdf) and others
        return f"Custom.{paper.width_in:.4g}x{paper.height_in:.4g}in"
    return paper.pwg


# What PPDs call the papers besides [printer] paper's and IPP's names (w..h..: in points).
_OTHER_NAMES = {"4x6in": ("4x6", "w288h432", "postcard4x6", "photo4x6"),
                "10x15cm": ("100x150mm", "w283h425"), "A6": ("w298h420",)}


def submit(name: str, document: bytes, *, copies: int, media_option: str | None,
           title: str, timeout: float = TIMEOUT) -> str:
    """Hand a PDF to the queue (on lp's standard input: no file of the photo is left
    behind); returns the job's id once cupsd has accepted it."""
    args = ["lp", "-d", name, "-n", str(copies), "-t", title]
    if media_option:
        args += ["-o", f"media={media_option}"]
    done = _run(args, data=document, timeout=timeout)
    found = _JOB.search(done.stdout.decode(errors="replace"))
    if done.returncode != 0 or found is None:
        raise PrintFailed(_text(done))
    return found.group(1)
