"""Screenshots of the web app for the README, taken in headless Chromium.

Serves the real app (waitress on a free loopback port, a temporary data dir holding real
composites of the shared photos), then photographs the visitor's pages on a phone and the
staff pages on a desktop screen:

    python scripts/screenshots.py                      # every shot, into docs/
    python scripts/screenshots.py --only photo gallery --out /tmp/shots --format png
    python scripts/screenshots.py --lang de --out /tmp/shots   # in German (web-photo-de.jpg)

Needs Chromium (Debian's /usr/bin/chromium, or --chromium) and the shared media
(BOOTH_ASSETS, default ../shared/assets beside the checkout). Contacts loopback only.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

from common import PLATE, ROOT, add_assets_argument, composites, missing_media

# The visitor's pages show the astronaut (NASA's portrait of Eileen Collins); the gallery
# shows every composite. Not the Background-Matting sample: its licence (CC BY-NC-SA) does not
# let a picture made from it into the repository.
PEOPLE = ("people/p3m_p_a09f6d7a.jpg", "people/rembg_girl-2.jpg", "people/p3m_p_bd6af989.jpg",
          "people/rembg_girl-1.jpg", "people/rembg_girl-3.jpg", "people/skimage_astronaut.png")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
# name: (device, what it shows)
SHOTS = {
    "photo": ("phone", "a visitor's photo page"),
    "delete": ("phone", "the delete confirmation"),
    "deleted": ("phone", "the page after deleting"),
    "not-found": ("phone", "an unknown or expired link"),
    "login": ("desktop", "the staff login"),
    "gallery": ("desktop", "the staff gallery"),
    "gallery-phone": ("phone", "the staff gallery on a phone"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs",
                    help="folder for the screenshots (default: docs/)")
    ap.add_argument("--only", nargs="+", choices=sorted(SHOTS), metavar="SHOT",
                    help=f"take only these: {', '.join(SHOTS)} (default: all)")
    ap.add_argument("--format", choices=("jpg", "png"), default="jpg",
                    help="jpg (quality --quality, small) or png (default: jpg)")
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality (default: 85)")
    ap.add_argument("--lang", default="",
                    help="the browser's language (Accept-Language), e.g. de; adds -de to the "
                         "file names (default: the booth's default language)")
    ap.add_argument("--full-page", action="store_true",
                    help="the whole scrolling page, not just the screen (for reviews)")
    add_assets_argument(ap)
    ap.add_argument("--chromium", default=os.environ.get("BOOTH_CHROMIUM") or
                    "/usr/bin/chromium", help="the Chromium binary (default: /usr/bin/chromium)")
    return ap.parse_args(argv)


def save(png: bytes, path: Path, quality: int) -> Path:
    if path.suffix == ".png":
        from PIL import Image

        # Re-encode with zlib's best effort: Chromium's PNGs are fast, not small.
        Image.open(io.BytesIO(png)).save(path, optimize=True)
    else:
        from PIL import Image

        Image.open(io.BytesIO(png)).convert("RGB").save(path, quality=quality, optimize=True,
                                                        progressive=True)
    return path


def ready(page) -> None:
    """Wait until the fonts and every image on the page are in."""
    page.evaluate("document.fonts.ready.then(() => true)")
    page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = args.only or list(SHOTS)
    if missing_media("screenshots", args.assets, PLATE, *PEOPLE):
        return 1
    if not os.access(args.chromium, os.X_OK):
        print(f"screenshots: no Chromium at {args.chromium} (apt-get install chromium, or "
              "pass --chromium)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    from booth.config import Config
    from booth.station.photo import encode_jpeg, thumbnail
    from booth.store import Store
    from booth.store.passwords import set_password
    from booth.store.status import StationStatus
    from booth.webapp import create_app
    from booth.webapp.server import WebServer

    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="booth-shots-") as tmp:
        photos = [(encode_jpeg(photo, 90), encode_jpeg(thumbnail(photo), 80)) for photo in
                  composites("screenshots", args.assets, [(p, False) for p in PEOPLE],
                             Path(tmp) / "cache")]
        store = Store(Path(tmp) / "data")
        cfg = Config()
        cfg.server.photo_requests_per_minute = 10000
        app = create_app(cfg, store)
        server = WebServer(app, "127.0.0.1", 0)
        server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            # A morning at the booth: one photo every few minutes, some downloaded.
            now = time.time()
            captures = []
            for i, (photo, thumb) in enumerate(photos):
                taken = now - (len(photos) - i) * 420
                captures.append(store.publish(photo, thumb_jpeg=thumb, now=taken,
                                              ttl_seconds=24 * 3600))
                for _ in range(i % 3):
                    store.record_download(captures[-1].id)
            doomed = store.publish(photos[-1][0], thumb_jpeg=photos[-1][1],
                                   ttl_seconds=24 * 3600)  # for the delete pages
            password = secrets.token_urlsafe(12)
            set_password(store, password)

            def path(name: str) -> Path:
                suffix = f"-{args.lang}" if args.lang else ""
                return args.out / f"web-{name}{suffix}.{args.format}"

            def shoot(page, name: str) -> None:
                if name in wanted:
                    ready(page)
                    png = page.screenshot(full_page=args.full_page)
                    written.append(save(png, path(name), args.quality))

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium,
                                            args=CHROMIUM_ARGS, headless=True)
                try:
                    locale = {"locale": args.lang.replace("_", "-")} if args.lang else {}
                    phone = browser.new_context(**PHONE, **locale).new_page()
                    phone.goto(f"{base}/p/{captures[-1].token}")
                    shoot(phone, "photo")
                    phone.goto(f"{base}/p/{doomed.token}/delete")
                    shoot(phone, "delete")
                    with phone.expect_navigation():
                        phone.locator("form.actions button[type=submit]").click()
                    shoot(phone, "deleted")
                    phone.goto(f"{base}/p/{secrets.token_urlsafe(16)}")
                    shoot(phone, "not-found")

                    desktop = browser.new_context(**DESKTOP, **locale).new_page()
                    desktop.goto(f"{base}/staff")
                    shoot(desktop, "login")
                    desktop.fill("#password", password)
                    desktop.locator("form.login button[type=submit]").click()
                    desktop.locator("ul.gallery").wait_for()
                    # The station's status, as a running station reports it every 2 s.
                    StationStatus("ok", 29.7, time.time()).save(store)
                    desktop.reload()
                    shoot(desktop, "gallery")

                    if "gallery-phone" in wanted:
                        staff_phone = browser.new_context(**PHONE, **locale)
                        staff_phone.add_cookies(desktop.context.cookies())
                        page = staff_phone.new_page()
                        page.goto(f"{base}/staff")
                        shoot(page, "gallery-phone")
                finally:
                    browser.close()
        finally:
            server.close()
            store.close()
    for shot in written:
        print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
