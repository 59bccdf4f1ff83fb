"""What the scripts share: where the shared media are, composites made as the station makes
them, `booth` child processes, the machine's description and the report table. (What tests
share with scripts, the load client and the CPU meter among it, is in devtools/.)

Importing it puts this checkout first on sys.path, so the scripts use its `booth` package
and its devtools.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PLATE = "scenes/sol46/PIA24542_large.jpg"
VIDEO = "video/intel_asl_book.mp4"


def add_assets_argument(ap: argparse.ArgumentParser) -> None:
    # Absolute (argparse converts a string default too): child processes run elsewhere.
    ap.add_argument("--assets", type=lambda path: Path(path).resolve(),
                    default=os.environ.get("BOOTH_ASSETS") or str(ROOT.parent / "shared" /
                                                                  "assets"),
                    help="the shared media folder (default: $BOOTH_ASSETS or "
                         "../shared/assets)")


def missing_media(prog: str, assets: Path, *relative: str | Path) -> bool:
    """Say on stderr which media are missing, if any (an absolute path is taken as is)."""
    missing = [str(assets / p) for p in relative if not (assets / p).is_file()]
    if missing:
        print(f"{prog}: missing {', '.join(missing)} (set BOOTH_ASSETS or pass --assets)",
              file=sys.stderr)
    return bool(missing)


def assets_and_out(doc: str, out: str) -> argparse.Namespace:
    """--assets and --out, for the scripts that draw one picture from the media."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    add_assets_argument(parser)
    parser.add_argument("--out", type=Path, default=Path(out))
    return parser.parse_args()


def config_for(assets: Path, cache: Path | None = None):
    """Default settings with the shared plate (and a plate cache of the script's own)."""
    from booth.config import Config

    cfg = Config()
    cfg.scene.plate, cfg.cache_dir = str(assets / PLATE), str(cache or "")
    return cfg


def composites(prog: str, assets: Path, people: list[tuple[str, bool]], cache: Path):
    """The final photo (plate, person, caption band) the station makes from each shared photo
    in `people` ((path under assets, mirrored)), in order; one pipeline for all."""
    import cv2

    from booth.quiet import quiet_stderr
    from booth.station.photo import with_band
    from booth.wiring import load_pipeline

    pipeline = load_pipeline(config_for(assets, cache), mirror=False)
    made = {}
    for relative, mirrored in people:
        if (relative, mirrored) in made:
            continue
        with quiet_stderr():  # libpng warns on fd 2 about files it decodes fine
            frame = cv2.imread(str(assets / relative), cv2.IMREAD_COLOR)
        if frame is None:
            raise SystemExit(f"{prog}: cannot read {assets / relative}")
        if mirrored:
            frame = cv2.flip(frame, 1)
        analysis = pipeline.photo_analysis(frame)
        if not analysis.people.found:
            raise SystemExit(f"{prog}: nobody found in {relative}")
        made[relative, mirrored] = with_band(pipeline.final(frame, analysis), pipeline.scene,
                                             datetime.now())
    return [made[key] for key in people]


def label(image, text: str, size: int = 20):
    """The picture with `text` in its top left corner, in the station's bold type."""
    from PIL import ImageDraw

    from booth.station.graphics import INK, font, to_bgr, to_pil

    pil = to_pil(image)
    ImageDraw.Draw(pil).text((8, 6), text, font=font(size, "Bold"), fill=INK, stroke_width=2,
                             stroke_fill=(0, 0, 0))
    return to_bgr(pil)


def machine() -> str:
    """The CPU model, its cores and the Python version: the figures' context."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def finish(prog: str, args: argparse.Namespace, media: list[str | Path], run, table,
           errors: str) -> int:
    """A benchmark's main: check the media, run, report; 2 if media are missing, 1 if the
    result's `errors` entry (a list of messages) is not empty, else 0."""
    if missing_media(prog, args.assets, *media):
        return 2
    result = run(args)
    report(prog, result, args.json, table, result[errors])
    return 1 if result[errors] else 0


def report(prog: str, result: dict, as_json: bool, table, errors: list[str]) -> None:
    """The result as one JSON object, or as the two-column table `table(result)` makes (and
    the errors on stderr)."""
    if as_json:
        print(json.dumps(result))
        return
    rows = table(result)
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for line in errors:
        print(f"{prog}: error: {line}", file=sys.stderr)


class Proc:
    """A child process of this checkout's Python; stderr lines collected, stdout lines handed
    to `on_line`; stopped with SIGTERM as a service manager stops the booth."""

    def __init__(self, name: str, cmd: list[str], on_line=None) -> None:
        self.name = name
        # `python -m booth` imports the booth of its working folder before PYTHONPATH's: run
        # in this checkout, so a script started from another one measures this one's code.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
        self.stderr: list[str] = []
        self._threads = [threading.Thread(target=self._err, daemon=True),
                         threading.Thread(target=self._out, args=(on_line,), daemon=True)]
        for t in self._threads:
            t.start()

    def _err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def _out(self, on_line) -> None:
        for line in self.proc.stdout:
            if on_line is not None:
                on_line(line.strip())

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        """The first stderr line matching pattern; exits the script if none comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise SystemExit(f"{self.name} did not start:\n" + "\n".join(self.stderr[-20:]))

    def stop(self) -> int | None:
        """SIGTERM, then the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                return None
        for t in self._threads:
            t.join(timeout=5)
        return self.proc.returncode


def serve(data: Path, config: Path, on_line=None) -> tuple[Proc, int]:
    """`booth serve` on 127.0.0.1 and a free port, on `data` with `config`; (process, port)."""
    proc = Proc("booth serve", [sys.executable, "-m", "booth", "serve", "--host", "127.0.0.1",
                                "--port", "0", "--data-dir", str(data), "--config",
                                str(config)], on_line)
    port = int(proc.wait_for(r"serving on http://\S+?:(\d+)", 60).group(1))
    return proc, port
