"""Every station screen in every language, as PNG files to look at (and for the README):

    python scripts/station_screens.py --out /tmp/screens            # all screens, all languages
    python scripts/station_screens.py --only attract --lang en de --size 1920x1080
    python scripts/station_screens.py --only result --config wifi.toml --out /tmp/screens
                                             # settings from a file: [server] wifi_ssid...

A shared photo of a person stands in for the camera (BOOTH_ASSETS, default ../shared/assets
beside the checkout); the screens are drawn exactly as the station draws them.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATE = "scenes/sol46/PIA24542_large.jpg"
PERSON = "people/rembg_girl-2.jpg"
SCREENS = ("attract", "countdown", "processing", "result", "failed", "camera")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    ap.add_argument("--only", nargs="+", choices=SCREENS, default=list(SCREENS))
    ap.add_argument("--lang", nargs="+", help="language codes (default: every language)")
    ap.add_argument("--size", default="1280x720", help="display size (default: 1280x720)")
    ap.add_argument("--format", choices=("png", "jpg"), default="png")
    ap.add_argument("--config", type=Path, help="a TOML settings file, as booth run reads")
    ap.add_argument("--assets", type=Path,
                    default=Path(os.environ.get("BOOTH_ASSETS") or ROOT.parent / "shared" /
                                 "assets"))
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.assets / PLATE).is_file():
        print(f"station_screens: the shared media are not in {args.assets} (set BOOTH_ASSETS "
              "or pass --assets)", file=sys.stderr)
        return 1
    import cv2

    from booth.config import load_config
    from booth.errors import BoothError
    from booth.station.photo import with_band
    from booth.station.qr import qr_image
    from booth.station.screens import Screens, dim, screen_settings
    from booth.wiring import load_pipeline

    width, height = (int(v) for v in args.size.lower().split("x"))
    try:
        cfg = load_config(args.config)
    except BoothError as exc:
        print(f"station_screens: {exc}", file=sys.stderr)
        return 1
    cfg.scene.plate = str(args.assets / PLATE)
    pipeline = load_pipeline(cfg, mirror=True)
    frame = cv2.imread(str(args.assets / PERSON), cv2.IMREAD_COLOR)
    analysis = pipeline.photo_analysis(frame)
    screens = Screens(width, height, pipeline.plate, pipeline.scene, 3, **screen_settings(cfg))
    lay = screens.layout
    args.out.mkdir(parents=True, exist_ok=True)
    for code in args.lang or screens.languages.codes:
        screens.set_language(code)

        def preview():
            screen = screens.base.copy()
            pipeline.draw_preview(lay.plate_region(screen), frame, analysis)
            return screen

        shots = {}
        shots["attract"] = preview()
        screens.draw(shots["attract"], screens.attract)
        shots["countdown"] = preview()
        screens.draw(shots["countdown"], screens.countdown_panel)
        screens.draw_countdown(shots["countdown"], 2, 0.55)
        shots["processing"] = preview()
        dim(lay.plate_region(shots["processing"]))
        screens.draw(shots["processing"], screens.processing_panel)
        shots["failed"] = preview()
        screens.draw(shots["failed"], screens.failed_panel)
        shots["camera"] = screens.base.copy()
        screens.draw(shots["camera"], screens.attract)
        dim(lay.plate_region(shots["camera"]))
        screens.camera_banner.draw(shots["camera"])
        link = "http://192.168.1.20:8000/p/q3V9x2LmT0bY7wKcR1sZaA"
        photo = with_band(pipeline.final(frame, analysis), pipeline.scene, datetime.now(),
                          screens.language)
        shots["result"] = screens.result(photo, qr_image(link, 600), link,
                                         datetime.now() + timedelta(hours=24), 24)
        for name in args.only:
            path = args.out / f"station-{name}-{code}.{args.format}"
            cv2.imwrite(str(path), shots[name], [cv2.IMWRITE_JPEG_QUALITY, 88])
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
