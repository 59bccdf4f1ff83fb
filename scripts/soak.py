"""Soak test: the station's frame loop for a long time, watching memory and frame time.

Runs the headless station in this process on a looping shared video, frame after frame, as
fast as it goes: decode and scale to the camera size (booth.bench.LoopingVideo, which reopens
the file at its end, as the station's video source does; not timed), then one Station.step()
(timed: the frame time), on a clock that moves 1/30 s per frame as a camera's frames do. The
station's own state machine walks through attract, countdown, flash, processing and result,
taking a photo about every --capture-every frames with the real PhotoMaker (final composite,
JPEG, thumbnail, store, QR, result screen) into a temporary store that keeps only the newest
--keep photos (the rest deleted, expired ones purged), as a day at the booth does.

    python scripts/soak.py                      # 100000 frames (about 25 min), a table
    python scripts/soak.py --frames 3000 --json # a short run, one JSON object

It reports the RSS after the warm-up (--warmup frames and one photo) and at the end, the
highest RSS seen, and the median frame time of each tenth of the run (wall clock, and the
process's CPU time, which another program on the machine does not inflate). Exit status 1
if the RSS grew more than --max-rss-growth-mb after the warm-up, if the last tenth's median
frame time is more than --max-drift above the first tenth's, if a photo failed, or if the
photo folder holds more files than the photos kept. Contacts no network.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import (
    PLATE,
    VIDEO,
    add_assets_argument,
    config_for,
    finish,
    machine,
)

from devtools.cpu import cpu_seconds

RSS_EVERY = 50  # frames between RSS samples


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100_000,
                    help="frames after the warm-up (default: 100000)")
    ap.add_argument("--warmup", type=int, default=500,
                    help="frames before the measured run (default: 500)")
    ap.add_argument("--capture-every", type=int, default=500, metavar="N",
                    help="take a photo every N frames (default: 500)")
    ap.add_argument("--keep", type=int, default=10,
                    help="photos the store keeps; older ones are deleted (default: 10)")
    ap.add_argument("--max-rss-growth-mb", type=float, default=50.0,
                    help="fail if the RSS grows more than this after the warm-up (default: 50)")
    ap.add_argument("--max-drift", type=float, default=0.25,
                    help="fail if the last tenth's median frame time is more than this share "
                         "above the first tenth's (default: 0.25)")
    ap.add_argument("--drift-clock", choices=("wall", "cpu", "both"), default="wall",
                    help="which frame time the drift check uses: wall clock, the process's "
                         "CPU time, or fail only when both drift (a slowdown this process "
                         "causes shows in both; a busy machine only in the wall clock) "
                         "(default: wall)")
    ap.add_argument("--source", type=Path, help=f"the video (default: the shared {VIDEO})")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--progress", action="store_true",
                    help="a line on stderr after each tenth of the run")
    add_assets_argument(ap)
    args = ap.parse_args(argv)
    if args.frames < 10:
        ap.error("--frames must be at least 10")
    if args.warmup < 1 or args.capture_every < 2 or args.keep < 1:
        ap.error("--warmup, --capture-every and --keep must be positive (capture-every >= 2)")
    return args


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def deciles(values: list[float]) -> list[float]:
    """Median of each tenth of the run, in ms."""
    n = len(values)
    return [round(statistics.median(values[k * n // 10:(k + 1) * n // 10]) * 1000, 3)
            for k in range(10)]


def machine_for(every: int):
    """A state machine that takes a photo about every `every` frames at 30 frames a second:
    the attract screen, a 1 s countdown, the flash, the photo being made, 1 s of result."""
    from booth.station.machine import FLASH_SECONDS, Machine

    attract = max(0.1, (every - 30 - 30) / 30 - FLASH_SECONDS - 0.5)
    return Machine(countdown_seconds=1, result_seconds=1, auto_capture_seconds=attract)


def run(args: argparse.Namespace) -> dict:
    import cv2

    from booth.bench import LoopingVideo
    from booth.clock import ManualClock
    from booth.station.machine import State
    from booth.store import Store
    from booth.wiring import assemble_station, load_pipeline

    source = args.source or args.assets / VIDEO
    clock = ManualClock()  # a camera's 30 frames a second, however long a step takes
    with tempfile.TemporaryDirectory(prefix="booth-soak-") as tmp:
        cfg = config_for(args.assets, Path(tmp) / "cache")
        video = LoopingVideo(str(source), cfg.camera.width, cfg.camera.height)
        pipeline = load_pipeline(cfg, mirror=cfg.station.mirror)
        store = Store(Path(tmp) / "data")
        station = assemble_station(cfg, pipeline, video, store, "http://192.0.2.1:8000",
                                   machine=machine_for(args.capture_every), clock=clock,
                                   out=io.StringIO())

        wall: list[float] = []
        cpu: list[float] = []
        capture_ms: list[float] = []
        failures: list[str] = []
        rss_samples: list[tuple[int, float]] = []
        max_files = 0
        start_rss = None
        began = time.monotonic()
        total = args.warmup + args.frames
        outcome = None
        with station:
            for i in range(total):
                if i == args.warmup:  # warm-up over: settle, then the baseline
                    gc.collect()
                    start_rss = rss_mb()
                    began = time.monotonic()
                video.advance()
                clock.advance(1 / 30)
                t0, c0 = time.perf_counter(), cpu_seconds()
                station.step()
                t1, c1 = time.perf_counter(), cpu_seconds()
                if station.machine.state in (State.CAPTURE, State.PROCESSING):
                    # A camera's frames come 1/30 s apart in wall time too: without this pause
                    # the loop spins through the photo's frames while the worker makes it,
                    # and the run can end (or starve the worker) before any photo is saved.
                    time.sleep(max(0.0, 1 / 30 - (t1 - t0)))
                if i >= args.warmup:
                    wall.append(t1 - t0)
                    cpu.append(c1 - c0)
                if station.outcome is not outcome:  # a photo was made (or failed)
                    outcome = station.outcome
                    if outcome.ok:
                        capture_ms.append(outcome.seconds * 1000)
                    else:
                        failures.append(outcome.error)
                    old = store.captures(limit=10 * args.keep + 100)[args.keep:]
                    store.delete([c.id for c in old])
                    store.purge_expired()
                    max_files = max(max_files, sum(1 for _ in os.scandir(store.photos)))
                if i % RSS_EVERY == 0 or i == total - 1:
                    rss_samples.append((i, rss_mb()))
                if args.progress and i >= args.warmup and (i - args.warmup + 1) % max(
                        1, args.frames // 10) == 0:
                    done = i - args.warmup + 1
                    print(f"soak: {done}/{args.frames} frames, RSS {rss_samples[-1][1]:.0f} "
                          f"MB, median {statistics.median(wall[-1000:]) * 1000:.2f} ms",
                          file=sys.stderr, flush=True)
        elapsed = time.monotonic() - began
        gc.collect()
        end_rss = rss_mb()
        photos = store.count()
        store.close()
        video.close()
        reopened = video.reopened
    cv2.destroyAllWindows()

    wall_d, cpu_d = deciles(wall), deciles(cpu)
    wall_drift = wall_d[-1] / wall_d[0] - 1
    cpu_drift = cpu_d[-1] / cpu_d[0] - 1
    growth = end_rss - start_rss
    measured = [mb for i, mb in rss_samples if i >= args.warmup]
    errors = []
    if growth > args.max_rss_growth_mb:
        errors.append(f"RSS grew {growth:.1f} MB after the warm-up (limit "
                      f"{args.max_rss_growth_mb:g} MB)")
    drifted = {"wall": wall_drift > args.max_drift, "cpu": cpu_drift > args.max_drift}
    if (all(drifted.values()) if args.drift_clock == "both" else
            drifted["wall" if args.drift_clock == "wall" else "cpu"]):
        errors.append(f"frame time drifted: last tenth's median {wall_d[-1]:.2f} ms vs first "
                      f"{wall_d[0]:.2f} ms ({wall_drift:+.0%} wall, {cpu_drift:+.0%} CPU; "
                      f"limit +{args.max_drift:.0%}, clock: {args.drift_clock})")
    errors += [f"photo failed: {f}" for f in failures[:5]]
    if max_files > 3 * args.keep:  # photo + thumbnail per kept photo, and the newest one
        errors.append(f"the photo folder held {max_files} files for {args.keep} photos kept")
    return {
        "frames": args.frames,
        "warmup_frames": args.warmup,
        "seconds": round(elapsed, 1),
        "fps": round(args.frames / elapsed, 1),
        "rss_mb": {"after_warmup": round(start_rss, 1), "end": round(end_rss, 1),
                   "max": round(max(measured), 1), "growth": round(growth, 1)},
        "frame_ms_median": round(statistics.median(wall) * 1000, 3),
        "frame_ms_by_tenth": wall_d,
        "cpu_ms_by_tenth": cpu_d,
        "drift": {"wall": round(wall_drift, 3), "cpu": round(cpu_drift, 3)},
        "photos": {"made": len(capture_ms), "failed": len(failures),
                   "median_ms": round(statistics.median(capture_ms), 1) if capture_ms else None,
                   "kept_at_end": photos, "max_files_in_folder": max_files},
        "video_reopened": reopened,
        "limits": {"max_rss_growth_mb": args.max_rss_growth_mb, "max_drift": args.max_drift,
                   "drift_clock": args.drift_clock},
        "errors": errors,
        "machine": machine(),
    }


def table(result: dict) -> list[tuple[str, str]]:
    """The report as rows of a table."""
    rss = result["rss_mb"]
    return [
        ("frames", f"{result['frames']} after {result['warmup_frames']} of warm-up, "
                   f"{result['seconds']} s ({result['fps']} fps)"),
        ("RSS", f"{rss['after_warmup']} MB after warm-up -> {rss['end']} MB at the end "
                f"({rss['growth']:+} MB), max {rss['max']} MB"),
        ("frame ms by tenth", " ".join(f"{v:.2f}" for v in result["frame_ms_by_tenth"])),
        ("CPU ms by tenth", " ".join(f"{v:.2f}" for v in result["cpu_ms_by_tenth"])),
        ("drift, last vs first", f"{result['drift']['wall']:+.1%} wall, "
                                 f"{result['drift']['cpu']:+.1%} CPU"),
        ("photos", f"{result['photos']['made']} made (median "
                   f"{result['photos']['median_ms']} ms), {result['photos']['failed']} "
                   f"failed, {result['photos']['kept_at_end']} kept, at most "
                   f"{result['photos']['max_files_in_folder']} files"),
        ("video reopened", str(result["video_reopened"])),
        ("machine", result["machine"]),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish("soak", args, [PLATE, args.source or VIDEO], run, table, "errors")


if __name__ == "__main__":
    sys.exit(main())
