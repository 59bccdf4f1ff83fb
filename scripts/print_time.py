"""Printing's figures, against a real cupsd with a cups-pdf queue (devtools/printers.py):

1. the two standard clients compared: `lp` (a program per job) and pycups (libcups in the
   process), each handing the same page to cupsd --jobs times; then with cupsd hung
   (SIGSTOP): whether a call comes back, and whether the rest of the process keeps running;
2. press to job accepted by CUPS through the printer output (the queue's state, the day's
   count in the store, the page, lp), --jobs presses;
3. the station's preview frame rate on the shared video at 30 fps, --seconds without
   printing and as many with a print every --print-every seconds, in alternating phases of
   5 s (cups-pdf's Ghostscript runs on the same cores, as a real printer's filters do).

    python scripts/print_time.py            # a table
    python scripts/print_time.py --json     # one JSON object

Needs root (cups-pdf) and the Debian packages cups and printer-driver-cups-pdf; pycups is
measured where it is installed (pip install pycups; it is not a dependency of the booth).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from common import PLATE, VIDEO, add_assets_argument, config_for, finish, machine

HANG_SECONDS = 5.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=20, help="jobs per measure (default: 20)")
    ap.add_argument("--seconds", type=float, default=20.0,
                    help="seconds of preview without printing, and as many with, in phases "
                         "of 5 s (default: 20)")
    ap.add_argument("--print-every", type=float, default=1.0,
                    help="seconds between prints while printing (default: 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    add_assets_argument(ap)
    return ap.parse_args(argv)


def _ms(samples: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples)
    return {"median_ms": round(statistics.median(ms), 1),
            "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 1)}


def clients(cups, document: Path, jobs: int) -> dict:
    """lp against pycups: time per accepted job, then the hung cupsd."""
    result: dict = {}
    lp = ["lp", "-d", cups.queue, "-o", "media=Custom.4x6in", str(document)]

    def run_lp(timeout: float = 10.0) -> float:
        t0 = time.perf_counter()
        subprocess.run(lp, env=cups.env, capture_output=True, check=True, timeout=timeout)
        return time.perf_counter() - t0

    result["lp"] = _ms([run_lp() for _ in range(jobs)])
    try:
        import cups as pycups
    except ImportError:
        pycups = None
    if pycups is not None:
        pycups.setServer("127.0.0.1")
        pycups.setPort(cups.port)

        def run_pycups() -> float:
            t0 = time.perf_counter()
            pycups.Connection().printFile(cups.queue, str(document), "t",
                                          {"media": "Custom.4x6in"})
            return time.perf_counter() - t0

        result["pycups"] = _ms([run_pycups() for _ in range(jobs)])
    cups.wait_for_pdf(jobs * (2 if pycups else 1), timeout=jobs * 10)
    cups.pause()
    try:
        t0 = time.perf_counter()
        try:
            run_lp(timeout=2.0)
            result["lp_hung"] = "returned"
        except subprocess.TimeoutExpired:
            result["lp_hung"] = f"killed at its timeout after {time.perf_counter() - t0:.2f} s"
        if pycups is not None:
            ticks, done = [0], threading.Event()

            def call() -> None:
                pycups.Connection().getPrinters()
                done.set()

            threading.Thread(target=call, daemon=True).start()
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < HANG_SECONDS:
                ticks[0] += 1
                time.sleep(0.01)
            result["pycups_hung"] = ("returned" if done.is_set() else
                                     f"still blocked after {HANG_SECONDS:g} s (no timeout to "
                                     f"give it); the main thread ran {ticks[0]} of "
                                     f"{int(HANG_SECONDS * 100)} 10 ms ticks meanwhile")
    finally:
        cups.resume()
    return result


def press_to_accepted(store, picture, jobs: int) -> dict:
    from booth.config import PrinterConfig
    from booth.station.outputs import Kind, Product
    from booth.station.outputs.printer import PrinterOutput, PrintState
    from booth.station.photo import encode_jpeg

    output = PrinterOutput(PrinterConfig(name="booth"), store, watch_seconds=3600)
    seconds = []
    try:
        for _ in range(jobs):
            output.deliver(Product(Kind.PHOTO, encode_jpeg(picture), b"", picture,
                                   datetime.now(), 1.0))
            t0 = time.perf_counter()
            output.press()
            while output.shown()[0] is PrintState.PRINTING:
                time.sleep(0.002)
            assert output.shown()[0] is PrintState.PRINTED, output.last_error
            seconds.append(time.perf_counter() - t0)
    finally:
        output.close()
    return _ms(seconds)


def _prints(printer, picture, stop: threading.Event, printed: list[int], every: float) -> None:
    while not stop.wait(every):
        printed[0] += printer._print(picture, 1, "visitor").value == "printed"


def frame_rate(assets: Path, data: Path, seconds: float, every: float) -> dict:
    """Preview frames a second, without printing and with a print every second."""
    import cv2

    from booth.bench import CameraLikeVideo, LoopingVideo
    from booth.store import Store
    from booth.wiring import assemble_station, load_pipeline

    cfg = config_for(assets)
    cfg.printer.name = "booth"
    cfg.outputs.enabled = ("store", "printer")
    pipeline = load_pipeline(cfg, mirror=True)
    camera = CameraLikeVideo(LoopingVideo(str(assets / VIDEO), 1280, 720), 30)
    camera.start()
    store = Store(data)
    station = assemble_station(cfg, pipeline, camera, store, "http://booth.test")
    printer = station.printing.printer
    picture = cv2.imread(str(assets / PLATE))
    frames = {"idle": 0, "printing": 0}
    wall = {"idle": 0.0, "printing": 0.0}
    printed = [0]
    try:
        with station:
            # Alternating phases of 5 s: the machine's other load falls on both alike.
            for phase in ("idle", "printing") * max(1, round(seconds / 5)):
                stop = threading.Event()
                printing = threading.Thread(target=_prints, daemon=True,
                                            args=(printer, picture, stop, printed, every))
                if phase == "printing":
                    printing.start()
                t0 = time.perf_counter()
                while time.perf_counter() - t0 < 5.0:
                    camera.wait(station.frame_seq, 0.05)
                    station.step()
                    frames[phase] += station.new_frame
                wall[phase] += time.perf_counter() - t0
                stop.set()
                if printing.is_alive():
                    printing.join()
    finally:
        printer.close()
        camera.close()
        store.close()
    return {"idle_fps": round(frames["idle"] / wall["idle"], 1),
            "printing_fps": round(frames["printing"] / wall["printing"], 1),
            "prints": printed[0]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("print_time: needs root (cups-pdf's backend and configuration)", file=sys.stderr)
        return 2

    def run(args: argparse.Namespace) -> dict:
        import cv2

        from booth.station.graphics import to_pil
        from booth.station.outputs.page import PAPERS, page_pdf
        from booth.store import Store
        from devtools.printers import cups_server

        picture = cv2.imread(str(args.assets / PLATE))
        with tempfile.TemporaryDirectory() as tmp, cups_server() as cups:
            os.environ["CUPS_SERVER"] = f"127.0.0.1:{cups.port}"
            document = Path(tmp) / "page.pdf"
            document.write_bytes(page_pdf(to_pil(picture), PAPERS["4x6in"]))
            result = {"machine": machine(), "clients": clients(cups, document, args.jobs)}
            store = Store(Path(tmp) / "data")
            try:
                result["press_to_accepted"] = press_to_accepted(store, picture, args.jobs)
            finally:
                store.close()
            result["frame_rate"] = fps = frame_rate(args.assets, Path(tmp) / "data2",
                                                    args.seconds, args.print_every)
        result["errors"] = []
        if result["press_to_accepted"]["median_ms"] > 1000:
            result["errors"].append("press to job accepted: median over the 1 s target")
        if fps["printing_fps"] < 0.9 * fps["idle_fps"]:
            result["errors"].append("the preview lost over 10 % of its frame rate printing")
        return result

    def table(result: dict) -> list[tuple[str, object]]:
        c = result["clients"]
        return [("lp, a job accepted", c["lp"]),
                ("pycups, a job accepted", c.get("pycups", "not installed")),
                ("lp, cupsd hung", c["lp_hung"]),
                ("pycups, cupsd hung", c.get("pycups_hung", "not installed")),
                ("press to job accepted", result["press_to_accepted"]),
                ("preview fps, idle / printing", result["frame_rate"])]

    return finish("print_time", args, [PLATE, VIDEO], run, table, "errors")


if __name__ == "__main__":
    sys.exit(main())
