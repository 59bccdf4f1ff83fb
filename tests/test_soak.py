"""Smoke runs of the long-running benchmarks: the soak (memory and frame time over many
frames), the load tool's downloads and two-process modes (phones through `booth serve`; a
station and `booth serve` on one data dir under phones) and the station's CPU scene by scene.

They run the scripts themselves, as separate processes, for a few seconds: enough to show
that they run end to end and report, and that nothing fails (no failed photo, no 5xx, no
"database is locked"). They assert no speed or memory figure: those are measured by the full
runs, `python scripts/soak.py`, `python scripts/load.py downloads|two-process` and
`python scripts/station_cores.py`, and their results are in docs/. (The load tool's shared
mode needs PostgreSQL and SeaweedFS and runs for minutes: tests/test_shared_*.py hold the
shared store to its behaviour.)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, asset

pytestmark = pytest.mark.slow

ENV = dict(os.environ, PYTHONPATH=str(ROOT))


pytestmark = pytest.mark.slow


def script(name: str, *args: str, timeout: float) -> tuple[int, dict, str]:
    """Run a script; its `booth` children go with it, even when the test fails: they are in
    its process group, which is killed whatever happens."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / name), *args, "--json",
                             "--assets", str(asset("video/intel_asl_book.mp4").parents[1])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert stdout.strip(), stderr[-3000:]
    return proc.returncode, json.loads(stdout), stderr


def test_soak_smoke_run():
    """300 frames, a photo about every 100: the station's own state machine takes them."""
    asset("scenes/sol46/PIA24542_large.jpg")
    rc, report, stderr = script("soak.py", "--frames", "300", "--warmup", "20",
                                "--capture-every", "100", "--keep", "2",
                                "--max-drift", "100", "--max-rss-growth-mb", "1000",
                                timeout=240)
    assert rc == 0, (report["errors"], stderr[-2000:])
    assert report["errors"] == [] and report["frames"] == 300
    assert len(report["frame_ms_by_tenth"]) == 10 and report["frame_ms_median"] > 0
    assert report["photos"]["made"] >= 1 and report["photos"]["failed"] == 0
    assert report["photos"]["kept_at_end"] <= 2 + 1  # and one being made as the run ended
    assert report["photos"]["max_files_in_folder"] <= 2 * 3  # photo + thumbnail, no leftovers
    assert report["video_reopened"] >= 2  # the 109-frame clip looped


def test_downloads_smoke_run():
    """3 phones, 2 downloads each of their own full-size photo through `booth serve`."""
    asset("people/skimage_astronaut.png")
    rc, report, stderr = script("load.py", "downloads", "--phones", "3", "--rounds", "2",
                                timeout=240)
    assert rc == 0 and report["errors"] == [], stderr[-2000:]
    assert report["requests"] == 6 and report["latency_ms"]["median"] > 0


def test_two_process_load_smoke_run():
    """8 s: a station process taking a photo about every second, 5 phones downloading and
    deleting through `booth serve`, staff browsing the gallery. Any "database is locked" or
    traceback in either process's stderr is one of the errors."""
    asset("scenes/sol46/PIA24542_large.jpg")
    rc, report, stderr = script("load.py", "two-process", "--seconds", "8", "--phones", "5",
                                timeout=240)
    assert rc == 0 and report["errors"] == [], (report["errors"], stderr[-2000:])
    assert report["photos_taken"] >= 3
    assert report["downloads"] >= 20 and report["staff_requests"] >= 2


def test_station_cores_smoke_run():
    """A second of `booth run --headless` per scene asked for (a moving visitor and an empty
    room, each a Motion JPEG clip made from the shared media): each is measured, no other."""
    asset("scenes/sol46/PIA24542_large.jpg")
    rc, report, stderr = script("station_cores.py", "--seconds", "1", "--warmup", "5",
                                "--rounds", "1", "--scene", "moving", "--scene", "empty room",
                                timeout=240)
    assert rc == 0 and report["errors"] == [], stderr[-2000:]
    assert set(report["cores"]) == {"moving", "empty room"}
    assert all(0 < cores < 2.5 for [cores] in report["cores"].values()), report["cores"]
