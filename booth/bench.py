"""`booth bench`: per-stage timings of the live preview and of capture-to-QR, on a video.

The video stands in for a webcam: a reader thread decodes it at the camera's frame rate and
scales each frame (keeping its shape, centre-cropped) to the camera resolution in the
config, 1280x720 by default; the frame loop takes the newest frame, as the station does.

Two measurements: each step of the frame loop timed on its own (frame_ms, the stages, and
the process CPU time of the step, frame_cpu_ms: the preview places a frame on a second
thread while the model looks at it, so a frame's wall time is less than its work), and
the real station loop (Station.run on a headless display) fed at the camera's rate, for
what a station costs: process CPU seconds per wall second (cpu_cores, the reader thread's
decoding included) and the time from a frame's arrival to its screen being ready (latency).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

from booth.config import Config, OutputsConfig, PrinterConfig
from booth.errors import BoothError
from booth.station.events import Event, Quit

STAGES = ("read", "segment", "place", "composite", "ui", "display")


def cover(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to fill width x height without distortion, cropping the overflow (the crop is
    taken first, so only what is kept is scaled)."""
    h, w = frame.shape[:2]
    scale = max(width / w, height / h)
    cw, ch = min(w, round(width / scale)), min(h, round(height / scale))
    x, y = (w - cw) // 2, (h - ch) // 2
    return cv2.resize(frame[y:y + ch, x:x + cw], (width, height),
                      interpolation=cv2.INTER_LINEAR)


class LoopingVideo:
    """A video file, scaled to the camera's size and looping, one frame per advance(): a frame
    source the caller paces itself (scripts/soak.py steps the station with it)."""

    name = "looping video"
    problem = ""

    def __init__(self, path: str, width: int, height: int) -> None:
        self.path, self.size = path, (width, height)
        self.cap = self._open()
        self.reopened = 0
        self._frame: np.ndarray | None = None
        self._seq = 0

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
            self.reopened += 1
            ok, frame = self.cap.read()
        return cover(frame, *self.size)

    def advance(self) -> None:
        self._frame = self.read()
        self._seq += 1

    def start(self) -> None:
        self.advance()

    def latest(self) -> tuple[np.ndarray | None, int]:
        return self._frame, self._seq

    def wait(self, seq: int, seconds: float) -> bool:
        return self._seq > seq  # the caller advances it

    def status(self) -> str:
        return "ok"

    def close(self) -> None:
        self.cap.release()


class CameraLikeVideo:
    """The video delivered as a camera delivers it: decoded and scaled on a reader thread at
    the camera's frame rate, the newest frame waiting for the frame loop (as CameraSource
    does). Decoding then costs the frame loop only CPU contention, as in the station."""

    name = "camera-like video"
    problem = ""

    def __init__(self, video: LoopingVideo, fps: float) -> None:
        self.video, self.interval = video, 1.0 / fps
        self.decode_seconds: list[float] = []
        self.arrivals: dict[int, float] = {}  # perf_counter() when each frame was delivered
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._ready = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="bench-camera", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        due = time.perf_counter()
        while not self._stop:
            t0 = time.perf_counter()
            frame = self.video.read()
            self.decode_seconds.append(time.perf_counter() - t0)
            with self._ready:
                self._frame = frame
                self._seq += 1
                self.arrivals[self._seq] = time.perf_counter()
                self._ready.notify_all()
            due += self.interval
            time.sleep(max(0.0, due - time.perf_counter()))

    def wait(self, seq: int, seconds: float | None = None) -> bool:
        """Until a frame newer than `seq` is there (None: however long it takes)."""
        with self._ready:
            return self._ready.wait_for(lambda: self._seq > seq, seconds)

    def latest(self) -> tuple[np.ndarray | None, int]:
        with self._ready:
            return self._frame, self._seq

    def status(self) -> str:
        return "ok"

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.video.close()


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


def _preview(camera: CameraLikeVideo, station, frames: int):
    """Per-stage times of `frames` steps of the station loop (after a short warm-up), each on
    a new camera frame, the station on its attract screen; and the process CPU time of each
    step (all threads: the model's, and the one placing the frame while the model runs)."""
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    totals: list[float] = []
    cpu: list[float] = []
    warmup = 10
    pipeline, renderer = station.pipeline, station.renderer
    with station:
        for i in range(frames + warmup):
            camera.wait(station.frame_seq)
            c0, t0 = time.process_time(), time.perf_counter()
            screen = station.step()
            t1 = time.perf_counter()
            cv2.cvtColor(screen, cv2.COLOR_BGR2RGB)  # what imshow's Qt back end does
            t2, c2 = time.perf_counter(), time.process_time()
            if i >= warmup:
                cpu.append(c2 - c0)
                for name, value in zip(STAGES, (
                        station.timings["read"], pipeline.timings["segment"],
                        pipeline.timings["place"], renderer.timings["composite"],
                        renderer.timings["ui"], t2 - t1), strict=True):
                    stages[name].append(value)
                totals.append(t2 - t0)
    return stages, totals, cpu


class _LoopDisplay:
    """The headless display of the station loop under measurement: records, for each screen
    of a new camera frame, the time from that frame's arrival to the screen being handed to
    it, and quits after `frames` of them."""

    def __init__(self, camera: CameraLikeVideo, frames: int) -> None:
        self.camera, self.frames = camera, frames
        self.station = None
        self.latencies: list[float] = []
        self._seen = 0

    def show(self, screen: np.ndarray) -> None:
        cv2.cvtColor(screen, cv2.COLOR_BGR2RGB)  # what imshow's Qt back end does
        seq = self.station.frame_seq
        if seq != self._seen:
            self._seen = seq
            self.latencies.append(time.perf_counter() - self.camera.arrivals[seq])

    def poll(self, wait_ms: int) -> list[Event]:
        return [Quit()] if len(self.latencies) >= self.frames else []

    def close(self) -> None:
        pass


def _station_loop(camera: CameraLikeVideo, station, frames: int) -> tuple[float, list[float]]:
    """The real station loop for `frames` new frames after a warm-up of 30: (process CPU
    seconds per wall second, arrival-to-display-ready seconds of each frame)."""
    warmup = _LoopDisplay(camera, 30)
    warmup.station = station
    station.run(warmup)
    display = _LoopDisplay(camera, frames)
    display.station = station
    wall, cpu = time.perf_counter(), time.process_time()
    station.run(display)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return cpu / wall, display.latencies


def _captures(maker, frame: np.ndarray, analysis, count: int) -> list[float]:
    """Capture to result screen (final composite, JPEG, store, QR, screen), in seconds."""
    seconds = []
    for _ in range(count):
        outcome = maker.make(frame.copy(), analysis)
        if not outcome.ok:
            raise BoothError(f"capture failed during the benchmark: {outcome.error}")
        seconds.append(outcome.seconds)
    return seconds


def _effect_costs(pipeline, frame: np.ndarray, canvas: np.ndarray, maker,
                  capture_s: float, rounds: int = 150) -> dict[str, float]:
    """What each preview effect adds to a frame (analyse + composite), timed on one frame
    with the effect on and off in alternation, so drift cancels; the contact shadow is
    forced on (the clip shows no feet); refine is timed per capture."""
    effects, background = pipeline.effects, canvas.copy()
    people = pipeline.photo_analysis(frame).people
    feet = dataclasses.replace(people, bbox=(*people.bbox[:3], min(people.bbox[3], 0.9)))

    def frame_time(settings, forced_people=None) -> float:
        pipeline.effects = settings
        pipeline.forget()  # the whole analysis each time, the model's sight included
        t0 = time.perf_counter()
        analysis = pipeline.preview_analysis(frame, t0)
        if forced_people is not None:
            analysis = dataclasses.replace(analysis, people=forced_people)
        canvas[:] = background
        pipeline.draw_preview(canvas, frame, analysis)
        return time.perf_counter() - t0

    costs = {}
    try:
        for name in ("edge_colours", "temporal", "colour", "light_wrap", "shadow"):
            off = dataclasses.replace(effects, **{name: 0.0})
            forced = feet if name == "shadow" else None
            on_t, off_t = [], []
            for _ in range(rounds):
                on_t.append(frame_time(effects, forced))
                off_t.append(frame_time(off, forced))
            costs[name] = round((statistics.median(on_t) - statistics.median(off_t)) * 1000, 2)
    finally:
        pipeline.effects = effects
        canvas[:] = background
    refiner, pipeline.refiner = pipeline.refiner, None
    try:
        plain = statistics.median(_captures(maker, frame, pipeline.photo_analysis(frame), 5))
    finally:
        pipeline.refiner = refiner
    costs["refine (per capture)"] = round((capture_s - plain) * 1000, 1)
    return costs


def run_bench(cfg: Config, source: str, *, frames: int, as_json: bool) -> int:
    from booth.store import Store
    from booth.wiring import assemble_station, load_pipeline

    if not Path(source).is_file():
        raise BoothError(f"no such video: {source}; bench needs a video file")
    # Measured with the store alone: a benchmark's captures must never come out of a printer.
    cfg = dataclasses.replace(cfg, outputs=OutputsConfig(), printer=PrinterConfig())
    camera = CameraLikeVideo(LoopingVideo(source, cfg.camera.width, cfg.camera.height),
                             cfg.camera.fps)
    pipeline = load_pipeline(cfg, mirror=cfg.station.mirror)
    with tempfile.TemporaryDirectory(prefix="booth-bench-") as tmp:
        store = Store(Path(tmp))
        station = assemble_station(cfg, pipeline, camera, store, "http://192.0.2.1:8000")
        camera.start()
        try:
            cores, latencies = _station_loop(camera, station, frames)
            stages, totals, frame_cpu = _preview(camera, station, frames)
        finally:
            camera.close()
        frame, analysis, maker = station.frame, station.analysis, station.maker
        captures = _captures(maker, frame, analysis, 7)
        # Each effect on and off in alternation, up to 150 times (a short run, fewer).
        effect_ms = _effect_costs(pipeline, frame, station.screens.layout.plate_region(
            station.renderer.screen), maker, statistics.median(captures),
            rounds=max(3, min(150, frames // 2)))
        store.close()
    frame_ms = statistics.median(totals) * 1000
    report = {
        "fps": round(1000 / frame_ms, 1),
        "frame_ms_median": round(frame_ms, 3),
        "frame_ms_p95": _summary(totals)["p95_ms"],
        "frame_cpu_ms_median": round(statistics.median(frame_cpu) * 1000, 3),
        "cpu_cores": round(cores, 3),
        "latency_ms_median": round(statistics.median(latencies) * 1000, 2),
        "latency_ms_p95": _summary(latencies)["p95_ms"],
        "stages": {name: _summary(values) for name, values in stages.items()},
        "capture_to_qr_ms": round(statistics.median(captures) * 1000, 1),
        "reader_thread_ms": round(statistics.median(camera.decode_seconds) * 1000, 2),
        "effect_cost_ms": effect_ms,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "frames": frames,
        "input": f"{cfg.camera.width}x{cfg.camera.height}",
        "camera_fps": cfg.camera.fps,
        "display": f"{cfg.station.display_width}x{cfg.station.display_height}",
        "model": cfg.segmentation.model,
        # Which cut-out the capture times include: MODNet costs 200-400 ms of them.
        "matting_model": "MODNet" if pipeline.portrait is not None else "none",
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
              f"{report['model']}, matting model {report['matting_model']}, "
              f"{report['frames']} frames; {report['machine']}\n\n")
    out.write("| stage | median ms | p95 ms |\n|---|---:|---:|\n")
    for name, s in report["stages"].items():
        out.write(f"| {name} | {s['median_ms']:.2f} | {s['p95_ms']:.2f} |\n")
    out.write(f"| **frame, read to display-ready** | **{report['frame_ms_median']:.2f}** | "
              f"{report['frame_ms_p95']:.2f} |\n\n")
    out.write(f"- process CPU time per frame (all threads; the frame's wall time above is "
              f"shorter when they overlap): median {report['frame_cpu_ms_median']:.2f} ms\n")
    out.write(f"- the station loop at the camera's {report['camera_fps']:g} fps: "
              f"{report['cpu_cores']:.2f} cores (process CPU per wall second, decoding "
              f"included); latency, arrival to display-ready: median "
              f"{report['latency_ms_median']:.1f} ms, p95 {report['latency_ms_p95']:.1f} ms\n")
    out.write(f"- end-to-end: {report['fps']:.0f} frames per second\n"
              f"- the reader thread's decode and scale (off the frame loop): "
              f"{report['reader_thread_ms']:.1f} ms per frame\n"
              f"- capture to result screen with QR: {report['capture_to_qr_ms']:.0f} ms\n"
              f"- peak RSS: {report['peak_rss_mb']:.0f} MB\n\n")
    out.write("| effect | adds, median ms |\n|---|---:|\n")
    for name, ms in report["effect_cost_ms"].items():
        out.write(f"| {name} | {ms:.2f} |\n")
