"""The boomerang clip's encoding: its cost a frame by preset and size, the time from the end of
a recording to the file, the file's size and the memory a recording holds.

The frames are composites as the preview draws them (the shared webcam-like videos at
1280x720, the visitor cut out by MediaPipe's mask and placed into the sol-46 plate, the
caption band below), made before anything is timed, then scaled to each size measured:
- cost: each x264 --presets at each --sizes, one encoder thread, --frames frames encoded as
  fast as they go; the process's CPU milliseconds a frame (the encoder and the colour
  conversion, as the recorder's thread spends them);
- finish: a ClipRecorder at the clip's size, fed --seconds of frames at --fps as a camera
  delivers them, then finish(): the seconds from the end of the recording to the MP4 and
  poster bytes (--rounds times), the file's size, and the process's RSS above what it was
  before the recording (sampled every 5 ms);
- worst case: the same recording with heavy sensor noise in every frame (Gaussian, sigma 20),
  the largest file a camera could make.

    python scripts/clip_time.py              # a table
    python scripts/clip_time.py --json       # one JSON object
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import datetime

from common import PLATE, VIDEO, add_assets_argument, config_for, finish, machine

VIDEOS = (VIDEO, "video/intel_asl_again.mp4")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", default="ultrafast,superfast,veryfast,faster",
                    help="x264 presets for the cost (default: ultrafast..faster)")
    ap.add_argument("--sizes", default="1280x720,902x720,1920x1532",
                    help="sizes for the cost (default: 1280x720, the clip's 902x720 and "
                         "the photo's 1920x1532)")
    ap.add_argument("--frames", type=int, default=60, help="frames a cost run (default: 60)")
    ap.add_argument("--seconds", type=float, default=2.5, help="recording (default: 2.5)")
    ap.add_argument("--fps", type=float, default=30.0, help="camera rate (default: 30)")
    ap.add_argument("--threads", type=int, default=1, help="x264 threads (default: 1)")
    ap.add_argument("--crf", type=int, default=None, help="x264 CRF (default: the booth's)")
    ap.add_argument("--rounds", type=int, default=3, help="recordings (default: 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    add_assets_argument(ap)
    return ap.parse_args(argv)


def composites(args: argparse.Namespace, count: int) -> list:
    """`count` preview composites with the caption band, from the shared videos in turn."""
    import cv2
    import numpy as np

    from booth.bench import cover
    from booth.station.photo import band_height, caption_band
    from booth.wiring import load_pipeline

    pipeline = load_pipeline(config_for(args.assets), mirror=False)
    h, w = pipeline.plate.shape[:2]
    band = caption_band(w, band_height(h), pipeline.scene, datetime.now())
    made: list = []
    now = 0.0
    while len(made) < count:
        for name in VIDEOS:
            cap = cv2.VideoCapture(str(args.assets / name))
            while len(made) < count:
                ok, frame = cap.read()
                if not ok:
                    break
                frame = cover(frame, 1280, 720)
                now += 1 / 30
                analysis = pipeline.preview_analysis(frame, now)
                canvas = pipeline.plate.copy()
                pipeline.draw_photo(canvas, frame, analysis)
                made.append(np.vstack([canvas, band]))
            cap.release()
    return made


def scaled(frames: list, size: tuple[int, int]) -> list:
    import cv2

    return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


def cost(frames: list, size: tuple[int, int], preset: str, threads: int,
         crf: int | None) -> dict:
    """CPU and wall milliseconds a frame, and the bytes a frame, encoding `frames`."""
    import cv2

    from booth.station.clip import CRF, Encoder, require_encoder

    encoder = Encoder(require_encoder(), size, 30, crf or CRF, preset, threads, maxrate=None)
    cpu, wall = time.process_time(), time.perf_counter()
    for frame in frames:
        encoder.encode(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420))
    data = encoder.close()
    n = len(frames)
    return {"cpu_ms": round((time.process_time() - cpu) * 1000 / n, 2),
            "wall_ms": round((time.perf_counter() - wall) * 1000 / n, 2),
            "kb_per_frame": round(len(data) / 1000 / n, 1)}


def record(frames: list, size: tuple[int, int], fps: float, threads: int,
           crf: int | None) -> dict:
    """One recording at the camera's pace, then finish(); RSS sampled throughout."""
    import psutil

    from booth.station.clip import ClipRecorder

    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu = time.process_time()
    recorder = ClipRecorder(size, fps, threads=threads, **({"crf": crf} if crf else {}))
    start = time.perf_counter()
    for i, frame in enumerate(frames):
        time.sleep(max(0.0, start + (i + 1) / fps - time.perf_counter()))
        recorder.add(frame)
    ended = time.perf_counter()
    clip = recorder.finish()
    seconds = time.perf_counter() - ended
    cpu = time.process_time() - cpu
    done.set()
    sampler.join()
    return {"finish_s": seconds, "mb": len(clip.mp4) / 1e6, "poster_kb": len(clip.poster) / 1e3,
            "rss_mb": (peak[0] - base) / 2**20, "frames": clip.frames,
            "cpu_ms_per_frame": cpu * 1000 / clip.frames}


def run(args: argparse.Namespace) -> dict:
    import numpy as np

    from booth.station.clip import CRF, clip_size

    errors: list[str] = []
    load = [os.getloadavg()[0]]
    n = round(args.seconds * args.fps)
    base = composites(args, max(n, args.frames))
    load.append(os.getloadavg()[0])
    h, w = base[0].shape[:2]
    size = clip_size(w, h)
    costs = {}
    for spec in args.sizes.split(","):
        cw, ch = (int(v) for v in spec.split("x"))
        frames = scaled(base[:args.frames], (cw, ch))
        for preset in args.presets.split(","):
            costs[f"{preset} {spec}"] = cost(frames, (cw, ch), preset, args.threads, args.crf)
        load.append(os.getloadavg()[0])
    clip_frames = scaled(base[:n], size)
    runs = [record(clip_frames, size, args.fps, args.threads, args.crf) for _ in range(args.rounds)]
    load.append(os.getloadavg()[0])
    rng = np.random.default_rng(0)
    noisy = [np.clip(f + rng.normal(0, 20, f.shape), 0, 255).astype(np.uint8)
             for f in clip_frames]
    worst = record(noisy, size, args.fps, args.threads, args.crf)
    load.append(os.getloadavg()[0])
    if worst["mb"] > 6 or max(r["mb"] for r in runs) > 6:
        errors.append("a clip is over 6 MB")
    return {
        "machine": machine(), "clip_size": f"{size[0]}x{size[1]}", "frames_recorded": n,
        "threads": args.threads, "crf": args.crf or CRF, "cost": costs,
        "finish_s_median": round(statistics.median(r["finish_s"] for r in runs), 3),
        "finish_s_max": round(max(r["finish_s"] for r in runs), 3),
        "mb_median": round(statistics.median(r["mb"] for r in runs), 2),
        "poster_kb": round(runs[0]["poster_kb"], 1),
        "recording_cpu_ms_per_frame": round(statistics.median(r["cpu_ms_per_frame"]
                                                              for r in runs), 2),
        "recording_rss_mb_max": round(max(r["rss_mb"] for r in runs), 1),
        "noisy_mb": round(worst["mb"], 2), "noisy_finish_s": round(worst["finish_s"], 3),
        "noisy_rss_mb": round(worst["rss_mb"], 1),
        "load_avg": [round(v, 2) for v in load], "errors": errors,
    }


def table(result: dict) -> list[tuple[str, str]]:
    rows = [("machine", result["machine"]),
            ("clip", f"{result['clip_size']}, {result['frames_recorded']} frames recorded, "
                     f"x264 threads {result['threads']}, CRF {result['crf']}")]
    for key, c in result["cost"].items():
        rows.append((f"cost {key}", f"{c['cpu_ms']} ms CPU, {c['wall_ms']} ms wall, "
                                    f"{c['kb_per_frame']} kB a frame"))
    rows += [("end of recording to bytes", f"median {result['finish_s_median']} s, "
                                           f"max {result['finish_s_max']} s"),
             ("clip size", f"{result['mb_median']} MB (poster {result['poster_kb']} kB)"),
             ("recording CPU a frame", f"{result['recording_cpu_ms_per_frame']} ms"),
             ("recording RSS above base", f"{result['recording_rss_mb_max']} MB"),
             ("noisy clip", f"{result['noisy_mb']} MB in {result['noisy_finish_s']} s, "
                            f"RSS +{result['noisy_rss_mb']} MB"),
             ("load average", " ".join(str(v) for v in result["load_avg"]))]
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish("clip_time", args, [PLATE, *VIDEOS], run, table, "errors")


if __name__ == "__main__":
    sys.exit(main())
