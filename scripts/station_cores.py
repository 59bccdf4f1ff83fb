"""The station at camera rate: the CPU a real `booth run --headless` uses, scene by scene.

A kiosk's day is mostly an empty room, then a visitor who holds still for the countdown,
and now and then one who moves. For each, `booth run --headless` plays a 1280x720 Motion
JPEG clip at 30 fps as its camera (as many USB webcams deliver frames), and the process's
CPU seconds per wall second are measured (devtools/cpu.py) over --seconds after a --warmup start,
decoding included. The clips are made in a temporary folder, never kept:

- moving: the shared webcam-like video (a visitor signing), scaled to 1280x720;
- still visitor, empty room: the shared photo bgm_0001_img.png and its background plate
  bgm_0001_back_plate.png, as a webcam sees them standing still: each frame with its own
  sensor noise (Gaussian, --noise levels).

    python scripts/station_cores.py                  # a table
    python scripts/station_cores.py --scene moving   # one scene (repeatable)
    python scripts/station_cores.py --json           # one JSON object

Compare code by running it from two checkouts, alternating. Contacts no network beyond the
station's own web server on a free loopback port.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from common import PLATE, VIDEO, Proc, add_assets_argument, finish, machine

from devtools.cpu import cpu_seconds

STILL = {"still visitor": "people/bgm_0001_img.png",
         "empty room": "people/bgm_0001_back_plate.png"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=12.0,
                    help="how long the CPU is measured, per scene (default: 12)")
    ap.add_argument("--warmup", type=float, default=8.0,
                    help="seconds after start before measuring (default: 8)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="rounds of all scenes, one after another (default: 2)")
    ap.add_argument("--noise", type=float, default=2.0,
                    help="the still clips' sensor noise, levels (default: 2)")
    ap.add_argument("--scene", action="append", choices=["moving", *STILL],
                    help="measure only this scene (repeatable; default: all three)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    add_assets_argument(ap)
    return ap.parse_args(argv)


def clip(frames, out: Path) -> Path:
    """The frames (any size) at 1280x720, 30 fps, Motion JPEG."""
    from booth.bench import cover

    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1280, 720))
    for frame in frames:
        writer.write(cover(frame, 1280, 720))
    writer.release()
    return out


def video_frames(video: Path):
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    while ok:
        yield frame
        ok, frame = cap.read()
    cap.release()


def still_frames(image: Path, noise: float, count: int = 150):
    """`image` as a 1280x720 webcam standing still films it: each frame with its own noise."""
    from booth.bench import cover

    picture = cover(cv2.imread(str(image), cv2.IMREAD_COLOR), 1280, 720).astype(np.float32)
    rng = np.random.default_rng(1)
    for _ in range(count):
        yield np.clip(picture + rng.normal(0.0, noise, picture.shape), 0, 255).astype(np.uint8)


def cores(video: Path, tmp: Path, config: Path, args: argparse.Namespace) -> float:
    """Process CPU seconds per wall second of `booth run --headless` playing `video`."""
    data = Path(tempfile.mkdtemp(prefix="data-", dir=tmp))
    station = Proc("the station", [sys.executable, "-m", "booth", "run", "--headless",
                                   "--source", str(video), "--host", "127.0.0.1", "--port",
                                   "0", "--data-dir", str(data), "--config", str(config)])
    try:
        time.sleep(args.warmup)
        if station.proc.poll() is not None:
            raise SystemExit("station_cores: the station stopped:\n"
                             + "\n".join(station.stderr[-20:]))
        pid = station.proc.pid
        cpu, wall = cpu_seconds(pid), time.perf_counter()
        time.sleep(args.seconds)
        cpu, wall = cpu_seconds(pid) - cpu, time.perf_counter() - wall
    finally:
        station.stop()
    return cpu / wall


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="booth-cores-") as tmp:
        tmp = Path(tmp)
        os.environ["BOOTH_CACHE_DIR"] = str(tmp / "cache")
        os.environ["BOOTH_PLATE"] = str(args.assets / PLATE)
        config = tmp / "booth.toml"
        config.write_text("[camera]\nwidth = 1280\nheight = 720\n")
        wanted = args.scene or ["moving", *STILL]
        scenes = {}
        if "moving" in wanted:
            scenes["moving"] = clip(video_frames(args.assets / VIDEO), tmp / "moving.avi")
        scenes.update({name: clip(still_frames(args.assets / image, args.noise),
                                  tmp / f"{name}.avi")
                       for name, image in STILL.items() if name in wanted})
        measured: dict[str, list[float]] = {name: [] for name in scenes}
        loads = []
        for _ in range(args.rounds):
            for name, video in scenes.items():
                measured[name].append(round(cores(video, tmp, config, args), 3))
                loads.append(os.getloadavg()[0])
    return {"cores": measured,
            "cores_median": {k: round(statistics.median(v), 3) for k, v in measured.items()},
            "seconds": args.seconds, "noise": args.noise,
            "load_average": [round(min(loads), 1), round(max(loads), 1)],
            "machine": machine(), "errors": []}


def table(result: dict) -> list[tuple[str, str]]:
    rows = [(f"{name} (cores)", f"{result['cores_median'][name]:.3f}  "
             f"(rounds: {', '.join(f'{v:.3f}' for v in values)})")
            for name, values in result["cores"].items()]
    return rows + [("load average", f"{result['load_average'][0]}-{result['load_average'][1]}"),
                   ("machine", result["machine"])]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish("station_cores", args, [VIDEO, PLATE, *STILL.values()], run, table,
                  "errors")


if __name__ == "__main__":
    sys.exit(main())
