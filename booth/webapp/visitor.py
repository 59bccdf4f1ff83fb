"""What a visitor's phone sees after scanning the QR code: their photo, download, delete."""

from __future__ import annotations

import time
from datetime import datetime

import font_lato
from flask import Blueprint, current_app, render_template, send_file, send_from_directory

from booth.store import Capture, Store
from booth.webapp.errors import not_found
from booth.webapp.security import MISS_LIMIT, limiter, photo_limit, private

bp = Blueprint("visitor", __name__)
_FONTS = {"Lato-Regular.ttf", "Lato-Bold.ttf", "Lato-Black.ttf"}

_photo_limit = limiter.shared_limit(photo_limit, scope="photo")
_miss_limit = limiter.shared_limit(MISS_LIMIT, scope="photo-miss",
                                   deduct_when=lambda response: response.status_code == 404)


def store() -> Store:
    return current_app.extensions["booth.store"]


def download_name(capture: Capture) -> str:
    return f"mars-selfie-{datetime.fromtimestamp(capture.created_at):%Y-%m-%d-%H%M}.jpg"


def expiry_text(expires_at: float, now: float | None = None) -> str:
    when = datetime.fromtimestamp(expires_at)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    days = (when.date() - today).days
    if days == 0:
        return f"today at {when:%H:%M}"
    if days == 1:
        return f"tomorrow at {when:%H:%M}"
    return f"{when.day} {when:%B} at {when:%H:%M}"


def _live(token: str) -> Capture | None:
    capture = store().resolve(token)
    return capture if capture is not None and capture.path.is_file() else None


def _image(capture: Capture, *, attachment: bool):
    try:
        # Opened here, so a delete from now on cannot cut the download short (the file
        # stays readable while open on POSIX; Windows refuses the delete, sweep retries).
        f = capture.path.open("rb")
    except OSError:  # deleted between the lookup and now
        return not_found()
    response = send_file(f, mimetype="image/jpeg", as_attachment=attachment,
                         download_name=download_name(capture), conditional=False,
                         max_age=0)
    return private(response)


@bp.get("/")
def home():
    return render_template("home.html")


@bp.get("/fonts/<name>")
def fonts(name: str):
    if name not in _FONTS:
        return not_found()
    return send_from_directory(font_lato.font_directory, name, max_age=86400)


@bp.get("/p/<token>")
@_photo_limit
@_miss_limit
def photo_page(token: str):
    capture = _live(token)
    if capture is None:
        return not_found()
    return private(current_app.make_response(render_template(
        "photo.html", token=token, filename=download_name(capture),
        expires=expiry_text(capture.expires_at))))


@bp.get("/p/<token>/photo.jpg")
@_photo_limit
@_miss_limit
def photo_image(token: str):
    capture = _live(token)
    return not_found() if capture is None else _image(capture, attachment=False)


@bp.get("/p/<token>/download")
@_photo_limit
@_miss_limit
def download(token: str):
    capture = _live(token)
    if capture is None:
        return not_found()
    store().record_download(capture.id)
    return _image(capture, attachment=True)


@bp.get("/p/<token>/delete")
@_photo_limit
@_miss_limit
def confirm_delete(token: str):
    capture = _live(token)
    if capture is None:
        return not_found()
    return private(current_app.make_response(render_template("confirm_delete.html",
                                                             token=token)))


@bp.post("/p/<token>/delete")
@_photo_limit
@_miss_limit
def delete(token: str):
    if not store().delete_token(token):
        return not_found()
    return private(current_app.make_response(render_template("deleted.html")))
