"""What a visitor's phone sees after scanning the QR code: their photo (or their clip, a
boomerang, playing in a <video>), download, delete."""

from __future__ import annotations

import functools
import logging
import time
from datetime import datetime

import font_lato
from flask import (
    Blueprint,
    current_app,
    render_template,
    request,
    send_from_directory,
)

from booth.i18n.catalogues import Language, shipped
from booth.store import Capture, Store
from booth.store.captures import CLIP
from booth.webapp.errors import VIDEO, not_found, on_its_way, photo_response
from booth.webapp.languages import current
from booth.webapp.security import MISS_LIMIT, private, rate_limits

bp = Blueprint("visitor", __name__)
_FONTS = {"Lato-Regular.ttf", "Lato-Bold.ttf", "Lato-Black.ttf"}
log = logging.getLogger(__name__)


def store() -> Store:
    return current_app.extensions["booth.store"]


def download_name(capture: Capture) -> str:
    what, suffix = ("boomerang", "mp4") if capture.kind == CLIP else ("selfie", "jpg")
    return f"mars-{what}-{datetime.fromtimestamp(capture.created_at):%Y-%m-%d-%H%M}.{suffix}"


def expiry_text(expires_at: float, now: float | None = None,
                lang: Language | None = None) -> str:
    """When a link expires, in the visitor's language: "today at 14:32", "mañana a las 14:32"."""
    lang = lang or shipped().default
    when = datetime.fromtimestamp(expires_at)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    days = (when.date() - today).days
    if days == 0:
        return lang.gettext("today at %(time)s", time=lang.time(when))
    if days == 1:
        return lang.gettext("tomorrow at %(time)s", time=lang.time(when))
    return lang.gettext("%(date)s at %(time)s", date=lang.day_month(when, "MMMM"),
                        time=lang.time(when))


def _live(token: str) -> Capture | None:
    capture = store().resolve(token)
    if capture is None or (capture.path is not None and not capture.path.is_file()):
        return None  # (a photo in a bucket is looked for when it is opened)
    return capture


def _send(capture: Capture, *, attachment: bool, picture: bool = False):
    """The capture's file (a photo's JPEG, a clip's MP4), or with picture=True its JPEG (a
    clip's poster)."""
    # Opened here, so a delete from now on cannot cut the download short.
    photo = store().open_photo(capture) if picture else store().open_file(capture)
    if photo is None:  # deleted between the lookup and now
        return not_found()
    video = capture.kind == CLIP and not picture
    return private(photo_response(photo, download_name(capture) if attachment else None,
                                  mimetype=VIDEO if video else "image/jpeg"))


@bp.get("/")
def home():
    return render_template("home.html")


@bp.get("/fonts/<name>")
def fonts(name: str):
    if name not in _FONTS:
        return not_found()
    return send_from_directory(font_lato.font_directory, name, max_age=86400)


def photo_route(rule: str, methods: tuple[str, ...] = ("GET",), *, waiting_status: int = 503):
    """A rate-limited route for one live photo: the view gets (token, capture), and every
    miss gets the same not-found page.

    Every request counts against the phone's photo limit. Misses also count against a much
    smaller one, and past it get 429 instead of 404; a valid link is still served, so a
    scan from an address a visitor shares (mobile carriers' NAT) cannot lock them out. That
    costs nothing: a 128-bit token is not found by scanning, however fast.

    A photo still on its way from the station gets a page that refreshes itself, with
    waiting_status (200 for the photo's own page; 503 with Retry-After for the rest): a
    pending row, or on the shared store a link not known yet whose `until` (its expiry, which
    a station adds) is still to come: the station may not reach the database yet. Those
    are not misses, so a phone may wait for its photo as long as it takes."""
    def register(view):
        @functools.wraps(view)
        def lookup(token: str):
            limits = rate_limits()
            limits.require(limits.photo, "photo")
            capture = _live(token)
            if capture is None:
                until = request.args.get("until", type=int)
                if until is not None and store().waiting(token, until):
                    return on_its_way(waiting_status)
                limits.require(MISS_LIMIT, "photo-miss")
                return not_found()
            if capture.pending:  # the page waits; the image and the forms are not there yet
                return on_its_way(waiting_status)
            return view(token, capture)

        return bp.route(rule, methods=list(methods))(lookup)
    return register


def _page(template: str, capture: Capture, **context):
    return private(current_app.make_response(render_template(
        template, clip=capture.kind == CLIP, **context)))


@photo_route("/p/<token>", waiting_status=200)
def photo_page(token: str, capture: Capture):
    return _page("photo.html", capture, token=token, filename=download_name(capture),
                 expires=expiry_text(capture.expires_at, lang=current()))


@photo_route("/p/<token>/photo.jpg")
def photo_image(token: str, capture: Capture):
    """The photo; for a clip its poster (the <video>'s, and a picture wherever one is
    wanted)."""
    return _send(capture, attachment=False, picture=True)


@photo_route("/p/<token>/clip.mp4")
def clip(token: str, capture: Capture):
    """A clip's MP4 for its page's <video> (byte ranges: see photo_response)."""
    if capture.kind != CLIP:
        return not_found()
    return _send(capture, attachment=False)


@photo_route("/p/<token>/download")
def download(token: str, capture: Capture):
    if request.method == "GET":  # a HEAD (a link preview, a download manager) fetches nothing
        store().record_download(capture.id)
        log.info("%s downloaded: capture %s", capture.kind, capture.short_id)
    return _send(capture, attachment=True)


@photo_route("/p/<token>/delete")
def confirm_delete(token: str, capture: Capture):
    response = _page("confirm_delete.html", capture, token=token)
    # Its form must name this site as its Origin (a no-referrer page sends "Origin: null",
    # which the Origin check refuses); same-origin still sends no Referer to another site.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@photo_route("/p/<token>/delete", methods=("POST",))
def delete(token: str, capture: Capture):
    if not store().delete([capture.id]):
        return not_found()  # another request deleted it a moment ago
    log.info("%s deleted by its visitor: capture %s", capture.kind, capture.short_id)
    return _page("deleted.html", capture)
