"""`booth bench`: per-stage timings of the live preview and of capture-to-QR, on a video.

The video stands in for a webcam: each frame is scaled (keeping its shape, centre-cropped) to
the camera resolution in the config, 1280x720 by default.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

from booth.config import Config
from booth.errors import BoothError

STAGES = ("read", "segment", "place", "composite", "ui", "display")


def cover(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to fill width x height without distortion, cropping the overflow."""
    h, w = frame.shape[:2]
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    scaled = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_LINEAR)
    x, y = (sw - width) // 2, (sh - height) // 2
    return scaled[y:y + height, x:x + width]


class LoopingVideo:
    def __init__(self, path: str, width: int, height: int) -> None:
        self.path, self.size = path, (width, height)
        self.cap = self._open()

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened() or not cap.read()[0]:
            raise BoothError(f"cannot read video {self.path}; give a video file OpenCV can "
                             "decode, e.g. ../shared/assets/video/intel_asl_book.mp4")
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        return cap

    def read(self) -> np.ndarray:
        ok, frame = self.cap.read()
        if not ok:
            self.cap.release()
            self.cap = self._open()
            ok, frame = self.cap.read()
        return cover(frame, *self.size)


def peak_rss_mb() -> float:
    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)  # Windows
    if peak is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB
    return peak / 2**20


def _summary(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {"median_ms": round(statistics.median(ms), 3),
            "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 3)}


def run_bench(cfg: Config, source: str, *, frames: int, as_json: bool) -> int:
    from booth.display import HeadlessDisplay
    from booth.screens import Screens
    from booth.station import Machine, PhotoMaker, State, Station
    from booth.store import Store
    from booth.wiring import load_pipeline

    if not Path(source).is_file():
        raise BoothError(f"no such video: {source}; bench needs a video file")
    video = LoopingVideo(source, cfg.camera.width, cfg.camera.height)
    pipeline = load_pipeline(cfg, mirror=cfg.station.mirror)
    st = cfg.station
    screens = Screens(st.display_width, st.display_height, pipeline.plate, pipeline.scene,
                      st.countdown_seconds)
    with tempfile.TemporaryDirectory(prefix="booth-bench-") as tmp:
        store = Store(Path(tmp))
        maker = PhotoMaker(pipeline, screens, store, "http://192.0.2.1:8000",
                           retention_hours=cfg.store.retention_hours,
                           jpeg_quality=cfg.store.jpeg_quality)
        station = Station(None, pipeline, screens, maker, HeadlessDisplay(),
                          Machine(st.countdown_seconds, st.result_seconds))
        station.camera_ok = True
        screen = screens.base.copy()
        stages: dict[str, list[float]] = {name: [] for name in STAGES}
        totals: list[float] = []
        warmup = 10
        frame = analysis = None
        for i in range(frames + warmup):
            t0 = time.perf_counter()
            frame = video.read()
            t1 = time.perf_counter()
            analysis = pipeline.analyse(frame, t1)
            t2 = time.perf_counter()
            station.compose_preview(screen, State.ATTRACT, frame, analysis)
            t3 = time.perf_counter()
            station.draw_ui(screen, State.ATTRACT, t3, analysis)
            t4 = time.perf_counter()
            cv2.cvtColor(screen, cv2.COLOR_BGR2RGB)  # what imshow's Qt back end does
            t5 = time.perf_counter()
            if i >= warmup:
                for name, value in zip(STAGES, (t1 - t0, pipeline.timings["segment"],
                                                pipeline.timings["place"], t3 - t2, t4 - t3,
                                                t5 - t4), strict=True):
                    stages[name].append(value)
                totals.append(t5 - t0)
        captures = []
        for _ in range(7):
            outcome = maker.make(frame.copy(), analysis)
            if not outcome.ok:
                raise BoothError(f"capture failed during the benchmark: {outcome.error}")
            captures.append(outcome.seconds)
        store.close()
    frame_ms = statistics.median(totals) * 1000
    report = {
        "fps": round(1000 / frame_ms, 1),
        "frame_ms_median": round(frame_ms, 3),
        "frame_ms_p95": _summary(totals)["p95_ms"],
        "stages": {name: _summary(values) for name, values in stages.items()},
        "capture_to_qr_ms": round(statistics.median(captures) * 1000, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "frames": frames,
        "input": f"{cfg.camera.width}x{cfg.camera.height}",
        "display": f"{st.display_width}x{st.display_height}",
        "model": cfg.segmentation.model,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
    }
    if as_json:
        print(json.dumps(report))
    else:
        _print_table(report, sys.stdout)
    return 0


def _print_table(report: dict, out) -> None:
    out.write(f"input {report['input']} -> display {report['display']}, model "
              f"{report['model']}, {report['frames']} frames; {report['machine']}\n\n")
    out.write("| stage | median ms | p95 ms |\n|---|---:|---:|\n")
    for name, s in report["stages"].items():
        out.write(f"| {name} | {s['median_ms']:.2f} | {s['p95_ms']:.2f} |\n")
    out.write(f"| **frame, read to display-ready** | **{report['frame_ms_median']:.2f}** | "
              f"{report['frame_ms_p95']:.2f} |\n\n")
    out.write(f"- end-to-end: {report['fps']:.0f} frames per second\n"
              f"- capture to result screen with QR: {report['capture_to_qr_ms']:.0f} ms\n"
              f"- peak RSS: {report['peak_rss_mb']:.0f} MB\n")
