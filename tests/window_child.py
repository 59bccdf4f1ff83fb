"""The station's window on its own, for tests/test_kiosk.py to drive under Xvfb.

    python tests/window_child.py fullscreen|windowed

Shows a screen whose left half is red and right half blue, and prints "ready", then every
event the window reports (booth.station.events: "Press()", "Tap(x=800, y=360)", "Quit()")
on its own line; exits 0 after Quit().
"""

from __future__ import annotations

import sys

import numpy as np

from booth.errors import BoothError
from booth.station.display import WindowDisplay
from booth.station.events import Quit


def main() -> int:
    try:
        display = WindowDisplay(fullscreen=sys.argv[1] == "fullscreen", size=(1280, 720))
    except BoothError as exc:
        print(f"booth: error: {exc}", file=sys.stderr)
        return 1
    screen = np.zeros((720, 1280, 3), np.uint8)
    screen[:, :640] = (0, 0, 255)
    screen[:, 640:] = (255, 0, 0)
    print("ready", flush=True)
    try:
        while True:
            display.show(screen)
            for event in display.poll(20):
                print(event, flush=True)
                if isinstance(event, Quit):
                    return 0
    finally:
        display.close()


if __name__ == "__main__":
    sys.exit(main())
