"""Capture to QR, photo after photo, and where its time goes.

`booth bench` times capture-to-QR on one frame; this times the station's PhotoMaker on
--photos frames spread over the shared videos (the person in a different pose in each), each
made --rounds times, as the station makes a photo after its countdown: the preview's analysis
of the frame (not timed), then PhotoMaker.make (timed: the pose check, the refined cut-out,
MODNet, the fusion, the composite, JPEG, store, QR, result screen). The stages are timed by
wrapping the functions the photo path calls, so they add up to less than the whole (what is
left is the rest of the composite). The matting model is the configured one ($BOOTH_MODNET).

    python scripts/capture_time.py              # a table
    python scripts/capture_time.py --json       # one JSON object

Reports the median and p95 capture-to-QR, the process's CPU time a photo, the median of each
stage, the process's peak RSS (booth.bench.peak_rss_mb, as `booth bench` reports it) and the
load average while it ran.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import PLATE, VIDEO, add_assets_argument, finish, machine

VIDEOS = (VIDEO, "video/intel_asl_again.mp4")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=12, help="frames (default: 12)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="photos made of each frame (default: 2)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    add_assets_argument(ap)
    return ap.parse_args(argv)


def frames(assets: Path, count: int, width: int, height: int) -> list:
    """`count` frames spread evenly over the shared videos, scaled as a camera delivers them."""
    import cv2

    from booth.bench import cover

    picked = []
    for i, name in enumerate(VIDEOS):
        cap = cv2.VideoCapture(str(assets / name))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        want = count // len(VIDEOS) + (i < count % len(VIDEOS))
        for k in range(want):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int((k + 0.5) * total / want))
            ok, frame = cap.read()
            if ok:
                picked.append(cover(frame, width, height))
        cap.release()
    return picked


class Stages:
    """Wall time per call of the functions wrapped, by name (seconds)."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def wrap(self, owner, attr: str, name: str) -> None:
        inner = getattr(owner, attr)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[name].append(time.perf_counter() - t0)

        setattr(owner, attr, timed)


def run(args: argparse.Namespace) -> dict:
    import booth.station.loop as loop
    import booth.vision.pipeline as vision
    from booth.bench import peak_rss_mb
    from booth.config import load_config
    from booth.store import Store
    from booth.wiring import assemble_station, load_pipeline

    errors: list[str] = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="booth-capture-") as tmp:
        cfg = load_config(None)  # the defaults and the environment ($BOOTH_MODNET)
        cfg.scene.plate, cfg.cache_dir = str(args.assets / PLATE), str(Path(tmp) / "cache")
        pipeline = load_pipeline(cfg, mirror=cfg.station.mirror)
        if pipeline.portrait is None:
            errors.append("no matting model: set $BOOTH_MODNET (the figures are MediaPipe's)")
        store = Store(Path(tmp) / "data")
        station = assemble_station(cfg, pipeline, None, store, "http://192.0.2.1:8000",
                                   out=io.StringIO())
        stages = Stages()
        stages.wrap(pipeline.presence, "visitors", "pose check")
        stages.wrap(vision, "refined_alpha", "refine (MediaPipe)")
        stages.wrap(vision, "fused_matte", "fusion")
        if pipeline.portrait is not None:
            stages.wrap(pipeline.portrait, "alpha", "MODNet")
        stages.wrap(pipeline, "draw_photo", "composite")
        stages.wrap(pipeline, "_photo_colours", "edge colours")
        stages.wrap(loop, "encode_jpeg", "JPEG (photo, thumbnail)")
        stages.wrap(store, "publish", "store")
        stages.wrap(loop, "qr_matrix", "QR")
        stages.wrap(station.screens, "result", "result screen")
        pictures = frames(args.assets, args.photos, cfg.camera.width, cfg.camera.height)
        analyses = []
        for frame in pictures:
            pipeline.forget()
            analyses.append(pipeline.preview_analysis(frame, time.perf_counter()))
        with station:
            warm = station.maker.make(pictures[0].copy(), analyses[0])  # sessions warmed
            if not warm.ok:
                errors.append(f"warm-up photo failed: {warm.error or warm.nobody}")
            stages.seconds.clear()
            totals, cpu = [], []
            for _ in range(args.rounds):
                for frame, analysis in zip(pictures, analyses, strict=True):
                    c0 = time.process_time()
                    outcome = station.maker.make(frame.copy(), analysis)
                    cpu.append(time.process_time() - c0)
                    load.append(os.getloadavg()[0])
                    if not outcome.ok:
                        errors.append(f"a photo failed: {outcome.error or outcome.nobody}")
                        continue
                    totals.append(outcome.seconds)
        store.close()
    ms = sorted(s * 1000 for s in totals)
    return {
        "capture_to_qr_ms_median": round(statistics.median(ms), 1) if ms else None,
        "capture_to_qr_ms_p95": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1)
        if ms else None,
        "photos": len(ms),
        # The process's CPU time a photo, all threads: what the photo costs the machine,
        # which other programs on it inflate less than the wall clock.
        "cpu_ms_median": round(statistics.median(cpu) * 1000, 1),
        "stages_ms_median": {name: round(statistics.median(v) * 1000, 1)
                             for name, v in stages.seconds.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_average": [round(min(load), 2), round(max(load), 2)],
        "input": f"{cfg.camera.width}x{cfg.camera.height}",
        "machine": machine(),
        "errors": errors,
    }


def table(result: dict) -> list[tuple[str, str]]:
    rows = [("capture to QR, median / p95",
             f"{result['capture_to_qr_ms_median']} / {result['capture_to_qr_ms_p95']} ms "
             f"({result['photos']} photos, {result['input']})"),
            ("process CPU time a photo, median", f"{result['cpu_ms_median']} ms")]
    rows += [(f"- {name}", f"{ms} ms") for name, ms in result["stages_ms_median"].items()]
    rows += [("peak RSS", f"{result['peak_rss_mb']} MB"),
             ("load average while it ran", "{} - {}".format(*result["load_average"])),
             ("machine", result["machine"])]
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish("capture_time", args, list(VIDEOS), run, table, "errors")


if __name__ == "__main__":
    sys.exit(main())
