"""The `booth` command: run the station, compose one photo, benchmark the pipeline."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from booth import __version__
from booth.config import Config, load_config
from booth.errors import BoothError


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML settings file (all optional)")
    common.add_argument("--data-dir", metavar="DIR", help="where photos and the database live")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="booth", description="A museum selfie station: stand on Mars beside Perseverance.")
    parser.add_argument("--version", action="version", version=f"booth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = _common()

    run = sub.add_parser("run", parents=[common], help="run the station (fullscreen window)")
    run.add_argument("--source", default="0",
                     help="camera index, video file, image or folder of images (default 0)")
    run.add_argument("--headless", action="store_true",
                     help="no window; each capture prints its download link on stdout")
    run.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    run.add_argument("--auto-capture", type=float, metavar="SECONDS",
                     help="start a countdown after this many seconds of attract screen")
    run.add_argument("--max-captures", type=int, metavar="N", help="stop after N photos")
    run.add_argument("--save-screens", metavar="DIR",
                     help="save the first screen of every state as a PNG in DIR")

    compose = sub.add_parser("compose", parents=[common],
                             help="put the person in one photo into the scene")
    compose.add_argument("photo")
    compose.add_argument("-o", "--output", required=True, metavar="OUT.jpg")
    compose.add_argument("--mask-out", metavar="MASK.png", help="also write the cut-out's alpha")
    compose.add_argument("--mirror", action="store_true", help="mirror the person, as the "
                         "station's preview does")

    bench = sub.add_parser("bench", parents=[common], help="measure the pipeline's speed")
    bench.add_argument("--source", required=True, metavar="VIDEO")
    bench.add_argument("--frames", type=int, default=300)
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    if args.data_dir:
        cfg.data_dir = args.data_dir
    return cfg


def _positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise BoothError(f"{name} must be greater than 0, got {value:g}")


def write_atomically(path: Path, data: bytes) -> None:
    """Write the whole file or nothing: a temp file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_compose(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from booth.compositing import alpha_from_confidence
    from booth.photo import encode_jpeg, with_band
    from booth.quiet import quiet_stderr
    from booth.wiring import load_pipeline

    cfg = _config(args)
    photo = Path(args.photo)
    frame = None
    if photo.is_file():  # OpenCV logs a warning of its own for a missing file
        with quiet_stderr():  # libpng/libjpeg warn on fd 2 even about files they decode
            frame = cv2.imread(args.photo, cv2.IMREAD_COLOR)
    if frame is None:
        what = "does not exist" if not photo.exists() else "is not an image"
        raise BoothError(f"cannot read {args.photo}: it {what}; give a JPEG or PNG photo")
    pipeline = load_pipeline(cfg, mirror=args.mirror)
    analysis = pipeline.analyse(frame)
    if not analysis.people.found:
        raise BoothError(f"no person found in {args.photo}; use a photo in which someone is "
                         "clearly visible")
    result = with_band(pipeline.final(frame, analysis), pipeline.scene, datetime.now())
    files = [(Path(args.output), encode_jpeg(result, cfg.store.jpeg_quality))]
    if args.mask_out:
        h, w = frame.shape[:2]
        alpha = alpha_from_confidence(
            cv2.resize(analysis.people.mask, (w, h), interpolation=cv2.INTER_LINEAR))
        _, png = cv2.imencode(".png", (alpha * 255 + 0.5).astype(np.uint8))
        files.append((Path(args.mask_out), png.tobytes()))
    written: list[Path] = []
    for target, data in files:
        try:
            write_atomically(target, data)
        except OSError as exc:
            for done in written:  # all of the outputs or none of them
                done.unlink(missing_ok=True)
            # mkdir(exist_ok=True) says "File exists" when a file sits where a folder must be
            reason = (f"{exc.filename} is a file, not a folder"
                      if isinstance(exc, FileExistsError) else exc.strerror or str(exc))
            raise BoothError(f"cannot write {target}: {reason}; give -o (and --mask-out) a "
                             "path in a folder you can write to") from None
        written.append(target)
    print(args.output)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from booth.wiring import run_station

    _positive("--auto-capture", args.auto_capture)
    _positive("--max-captures", args.max_captures)
    return run_station(_config(args), source=args.source, headless=args.headless,
                       windowed=args.windowed, auto_capture=args.auto_capture,
                       max_captures=args.max_captures,
                       save_screens=Path(args.save_screens) if args.save_screens else None)


def cmd_bench(args: argparse.Namespace) -> int:
    from booth.bench import run_bench

    _positive("--frames", args.frames)
    return run_bench(_config(args), args.source, frames=args.frames, as_json=args.json)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = {"run": cmd_run, "compose": cmd_compose, "bench": cmd_bench}[args.command]
    try:
        return handler(args)
    except BoothError as exc:
        print(f"booth: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
