"""The kiosk's first morning: no display, no camera yet, a service manager's SIGTERM, and the
fullscreen window on a bare X server (Xvfb, no window manager) driven by real key presses and
clicks (xdotool) and read back pixel by pixel (xwd)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, unavailable

SCREEN = (1600, 900)  # the Xvfb screen: not the station's 1280x720, so fullscreen must scale


def booth_env(**changes: str | None) -> dict[str, str]:
    """This test's environment (its BOOTH_PLATE among it), with changes; None removes."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def free_display() -> int:
    for number in range(90, 200):
        if not Path(f"/tmp/.X11-unix/X{number}").exists() and not Path(
                f"/tmp/.X{number}-lock").exists():
            return number
    raise AssertionError("no free X display number")


@pytest.mark.parametrize("display", [None, "unreachable"])
def test_no_display_is_one_line_pointing_to_headless(tmp_path: Path, display):
    env = booth_env(DISPLAY=None if display is None else f":{free_display()}",
                    WAYLAND_DISPLAY=None)
    proc = subprocess.run([sys.executable, "-m", "booth", "run", "--data-dir",
                           str(tmp_path / "data"), "--port", "0", "--host", "127.0.0.1"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr  # no Qt plugin chatter, no traceback
    assert lines[0].startswith("booth: error: no display to open the station's window on")
    assert "--headless" in lines[0] and "desktop session" in lines[0]
    assert not (tmp_path / "data").exists(), "nothing is started before the display is known"


@pytest.mark.slow
def test_no_camera_at_start_runs_reconnecting_and_sigterm_exits_0(tmp_path: Path):
    """A USB camera not yet there at boot: the station runs, says so on stderr (headless)
    and keeps trying; a service manager's SIGTERM then stops it cleanly with status 0.
    (Before, a missing camera was "booth: error: camera 97 is not available" and exit 1.)"""
    proc = subprocess.Popen(
        [sys.executable, "-m", "booth", "run", "--headless", "--source", "97",
         "--data-dir", str(tmp_path / "data"), "--port", "0", "--host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=booth_env())
    lines: list[str] = []
    said = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if " WARNING booth.station.loop: Camera unavailable, reconnecting" in line:
                said.set()
        said.set()  # it ended: the assertion below says how

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert said.wait(60) and proc.poll() is None, lines
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        reader.join(5)
        proc.stdout.close()
        proc.stderr.close()
    assert rc == 0, lines
    assert any(line.endswith(
        "Camera unavailable, reconnecting: camera 97 is not available; check the cable, "
        "close other programs using it, or try --source 0") for line in lines), lines
    assert any(" INFO booth.wiring: web app on http://" in line for line in lines)  # it runs
    assert not any("Traceback" in line for line in lines), lines


# --- the window, on a bare X server ---------------------------------------------------------


@pytest.fixture
def xvfb():
    """Xvfb with no window manager on a free display; yields the DISPLAY value."""
    for tool in ("Xvfb", "xdotool", "xwd"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (apt-get install xvfb xdotool x11-apps)")
    number = free_display()
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0",
                               f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Until the server answers: its socket can exist before it accepts clients, and a
        # window opened then fails (seen on a loaded machine).
        env = dict(os.environ, DISPLAY=f":{number}")
        for _ in range(200):
            if server.poll() is not None or subprocess.run(
                    ["xdotool", "getdisplaygeometry"], capture_output=True, env=env,
                    timeout=20).returncode == 0:
                break
            time.sleep(0.05)
        assert server.poll() is None, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def x(display: str, *args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=20, check=True,
                          env=dict(os.environ, DISPLAY=display)).stdout


def grab(display: str) -> np.ndarray:
    """The whole X screen as RGB, from xwd's dump (X Window Dump: a big-endian header)."""
    data = subprocess.run(["xwd", "-root", "-silent"], capture_output=True, timeout=20,
                          check=True, env=dict(os.environ, DISPLAY=display)).stdout
    header = np.frombuffer(data[:100], ">u4")
    size, width, height = int(header[0]), int(header[4]), int(header[5])
    byte_order, bits, line = int(header[7]), int(header[11]), int(header[12])
    assert bits == 32, bits
    pixels = np.frombuffer(data, np.uint8, offset=size + int(header[19]) * 12,
                           count=line * height).reshape(height, line)[:, :width * 4]
    pixels = pixels.reshape(height, width, 4)
    return pixels[:, :, [2, 1, 0]] if byte_order == 0 else pixels[:, :, [1, 2, 3]]


class Child:
    def __init__(self, display: str, mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "window_child.py"), mode],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=booth_env(DISPLAY=display))

    def line(self) -> str:
        return self.proc.stdout.readline().strip()

    def close(self) -> tuple[int, str]:
        """Its exit code and stderr (again on a second call: a failed assertion shows them)."""
        if self.proc.stderr.closed:
            return self.proc.returncode, self.err
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, self.err


@pytest.mark.kiosk
def test_fullscreen_window_covers_a_screen_without_window_manager_and_answers(xvfb: str):
    child = Child(xvfb, "fullscreen")
    try:
        assert child.line() == "ready", child.close()
        window = x(xvfb, "xdotool", "search", "--sync", "--name", "selfie-booth").split()[0]
        screen = None
        for _ in range(100):  # until the window is mapped and painted
            geometry = x(xvfb, "xdotool", "getwindowgeometry", window)
            screen = grab(xvfb)
            if "Geometry: 1600x900" in geometry and screen[450, 100, 0] > 200:
                break
            time.sleep(0.05)
        assert re.search(r"Position: 0,0", geometry) and "Geometry: 1600x900" in geometry, (
            geometry)
        # The 1280x720 screen is scaled to fill the 1600x900 one: red left half, blue right.
        left, right = screen[:, :790].reshape(-1, 3), screen[:, 810:].reshape(-1, 3)
        assert (np.abs(left.astype(int) - (255, 0, 0)).max(axis=1) < 40).mean() > 0.99
        assert (np.abs(right.astype(int) - (0, 0, 255)).max(axis=1) < 40).mean() > 0.99
        # A touch (a click) at the screen's pixel (1000, 450) is the station screen's
        # (800, 360) (scaled by 1.25), then the space bar, then Esc.
        x(xvfb, "xdotool", "mousemove", "1000", "450", "click", "1")
        assert child.line() == "Tap(x=800, y=360)"
        x(xvfb, "xdotool", "key", "space")
        assert child.line() == "Press()"
        x(xvfb, "xdotool", "key", "Escape")
        assert child.line() == "Quit()"
    finally:
        rc, err = child.close()
    assert rc == 0
    assert err == "", err  # no Qt noise on the console
