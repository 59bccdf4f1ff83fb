"""The boomerang at the station, timed: the preview while recording against the preview
alone, the time from the end of a recording to its QR code on the screen, and the memory.

The station as `booth run` assembles it (the real store, SQLite in a temporary folder, its
StoreOutput) on the screen's size from the config (1280x720 by default), fed by a shared
video decoded on a reader thread at the camera's 30 fps (booth.bench.CameraLikeVideo), on
the system's clock; each round: --idle seconds of preview with the visitor in view, a
Boomerang press, the 1 s countdown, the 2.5 s recording, the clip made, its result screen.

- preview: for the steps that took a new frame, the step's wall time (median, 95th
  percentile) and the frames the station took a second, in the attract and countdown states
  (the preview alone) and while recording (the preview, the clip's composite and the
  encoder's thread beside it); and the camera's frames the station never took (its sequence
  numbers skipped), a second, in each;
- clip's composite: what the extra composite at the clip's size costs the screen's thread;
- end of recording to QR: from the step that ended the recording to the first step that
  returned the result screen, and its parts: the rest of the encoding (the backward half,
  recorder.finish), the outputs (the store), the result screen (its QR code);
- memory: the process's RSS, sampled every 5 ms, before the first recording and at its peak.

    python scripts/boomerang_time.py              # a table
    python scripts/boomerang_time.py --json       # one JSON object
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import PLATE, VIDEO, add_assets_argument, config_for, finish, machine


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="boomerangs (default: 5)")
    ap.add_argument("--idle", type=float, default=3.0,
                    help="seconds of preview before each (default: 3)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    add_assets_argument(ap)
    return ap.parse_args(argv)


class Peak:
    """The process's RSS sampled every 5 ms on a thread of its own."""

    def __init__(self) -> None:
        import psutil

        self.process, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def reset(self) -> int:
        self.peak = self.process.memory_info().rss
        return self.peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def timed(owner, name: str) -> list[tuple[float, float, float]]:
    """Wrap owner.name; each call's (wall seconds, CPU seconds on its own thread, when it
    ended) go into the list returned. The CPU is what the call costs a core of its own,
    however busy the cores are."""
    original, calls = getattr(owner, name), []

    def wrapper(*args, **kwargs):
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            t1 = time.perf_counter()
            calls.append((t1 - t0, time.thread_time() - c0, t1))

    setattr(owner, name, wrapper)
    return calls


def run(args: argparse.Namespace) -> dict:
    from booth.bench import CameraLikeVideo, LoopingVideo
    from booth.station import boomerang, clip
    from booth.station.machine import Machine, State
    from booth.station.outputs import Kind
    from booth.store import Store
    from booth.wiring import assemble_station, load_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_for(args.assets, Path(tmp) / "cache")
        cfg.station.countdown_seconds = 1
        cfg.models.modnet = os.environ.get("BOOTH_MODNET", "")  # as the station has it
        pipeline = load_pipeline(cfg, mirror=True)
        store = Store(Path(tmp) / "data")
        video = CameraLikeVideo(LoopingVideo(str(args.assets / VIDEO), cfg.camera.width,
                                             cfg.camera.height), 30.0)
        station = assemble_station(cfg, pipeline, video, store, "http://192.0.2.1:8000",
                                   machine=Machine(1, 30), out=io.StringIO())
        parts = {"finish": timed(boomerang.ClipRecorder, "finish"),
                 "outputs": timed(station.maker.outputs[0], "deliver"),
                 "screen": timed(station.screens, "result")}
        encoding = timed(clip.Encoder, "encode")  # the encoder thread's calls
        closing = timed(clip.Encoder, "close")
        finish_cpu: list[float] = []
        steps: dict[str, list[float]] = {"preview": [], "recording": []}
        taken = {"preview": 0.0, "recording": 0.0}  # seconds spent in each
        frames = {"preview": 0, "recording": 0}
        skipped = {"preview": 0, "recording": 0}
        to_qr: list[float] = []
        composite: list[float] = []
        errors: list[str] = []
        backlog: list[int] = []
        round_peaks: list[int] = []
        last_phase = None
        rss = Peak()
        video.start()
        try:
            with station:
                rss_before = rss.reset()
                for _ in range(args.rounds):
                    round_peaks.append(rss.reset())  # the round's start, then its peak
                    phase_end = time.perf_counter() + args.idle
                    pressed = False
                    ended_at = None
                    while True:
                        t0 = time.perf_counter()
                        seq_before = station.frame_seq
                        station.step()
                        t1 = time.perf_counter()
                        state = station.machine.state
                        phase = ("recording" if state is State.RECORDING else "preview"
                                 if state in (State.ATTRACT, State.COUNTDOWN) else None)
                        if station.new_frame and phase:
                            steps[phase].append(t1 - t0)
                            frames[phase] += 1
                            if phase == last_phase:  # not the jump over a result screen
                                skipped[phase] += station.frame_seq - seq_before - 1
                        last_phase = phase
                        if phase:
                            taken[phase] += t1 - t0
                        if station._recording is not None and ended_at is None:
                            recording = station._recording
                        if (state is State.PROCESSING and ended_at is None
                                and station.machine.kind is Kind.CLIP):
                            ended_at = t1
                            composite += recording.seconds
                            # Frames the encoder had still to take when the recording ended.
                            backlog.append(recording.recorder._queue.qsize())
                            recording = None  # its frames go with the clip's loop
                        if state is State.RESULT:
                            round_peaks[-1] = rss.peak
                            to_qr.append(t1 - ended_at)
                            finish_cpu.append(sum(cpu for _, cpu, done in encoding + closing
                                                  if done > ended_at))
                            encoding.clear()
                            closing.clear()
                            station.press()  # back to attract for the next round
                            break
                        if state in (State.FAILED, State.NOBODY):
                            errors.append(f"a boomerang failed ({state.value}: "
                                          f"{station.outcome and station.outcome.error})")
                            station.press()
                            break
                        if not pressed and time.perf_counter() >= phase_end:
                            station.press(Kind.CLIP)
                            pressed = True
                        wait_t0 = time.perf_counter()
                        # As Station.run: the display's poll waits 1 ms (headless, a sleep),
                        # then the camera is waited on. Without the poll the loop spins while
                        # the clip is made (no new frame is taken then), and the encoder's
                        # thread waits on the GIL behind it.
                        time.sleep(0.001)
                        video.wait(station.frame_seq, 0.010)
                        if phase:
                            taken[phase] += time.perf_counter() - wait_t0
        finally:
            video.close()
            rss.stop()
            store.close()

    def ms(values: list[float], q: float = 0.5) -> float:
        ordered = sorted(values)
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "machine": machine(), "rounds": args.rounds,
        "load_average": [round(x, 1) for x in os.getloadavg()],  # other work on the cores
        "preview": {phase: {"step_ms_median": ms(steps[phase]),
                            "step_ms_p95": ms(steps[phase], 0.95),
                            "fps": round(frames[phase] / taken[phase], 1),
                            "skipped_per_s": round(skipped[phase] / taken[phase], 2)}
                    for phase in steps},
        "clip_composite_ms_median": ms(composite),
        "encoder_backlog_frames_median": statistics.median(backlog) if backlog else None,
        "to_qr_s_median": round(statistics.median(to_qr), 3) if to_qr else None,
        "to_qr_s_max": round(max(to_qr), 3) if to_qr else None,
        "parts_ms_median": {name: ms([wall for wall, _, _ in calls])
                            for name, calls in parts.items()},
        # The encoder's CPU after the recording ended: finish's time on a core of its own.
        "finish_cpu_ms_median": ms(finish_cpu),
        "rss_mb": {"before": round(rss_before / 2**20),
                   "peak": round(max(round_peaks) / 2**20),
                   "peak_by_round": [round(peak / 2**20) for peak in round_peaks]},
        "errors": errors,
    }


def table(result: dict) -> list[tuple[str, object]]:
    p = result["preview"]
    return [("machine", result["machine"]), ("boomerangs", result["rounds"]),
            ("load average (1, 5, 15 min) at the end", result["load_average"]),
            ("preview alone: step ms (median / p95)",
             f"{p['preview']['step_ms_median']} / {p['preview']['step_ms_p95']}"),
            ("recording: step ms (median / p95)",
             f"{p['recording']['step_ms_median']} / {p['recording']['step_ms_p95']}"),
            ("frames a second (preview / recording)",
             f"{p['preview']['fps']} / {p['recording']['fps']}"),
            ("camera frames skipped a second (preview / recording)",
             f"{p['preview']['skipped_per_s']} / {p['recording']['skipped_per_s']}"),
            ("clip's composite ms (median)", result["clip_composite_ms_median"]),
            ("frames still to encode when the recording ended (median)",
             result["encoder_backlog_frames_median"]),
            ("end of recording to QR s (median / max)",
             f"{result['to_qr_s_median']} / {result['to_qr_s_max']}"),
            ("  of which finish / outputs / result screen ms",
             " / ".join(str(v) for v in result["parts_ms_median"].values())),
            ("  finish's CPU on the encoder's thread ms", result["finish_cpu_ms_median"]),
            ("RSS MB (before / peak)",
             f"{result['rss_mb']['before']} / {result['rss_mb']['peak']}"),
            ("  peak by round", result["rss_mb"]["peak_by_round"])]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return finish("boomerang_time", args, [PLATE, VIDEO], run, table, "errors")


if __name__ == "__main__":
    sys.exit(main())
