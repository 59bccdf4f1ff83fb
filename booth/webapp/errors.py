"""Clean error pages: every failure is a page a visitor understands, never a traceback."""

from __future__ import annotations

import logging

from flask import Flask, make_response, render_template, request, send_file
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import BadHost, HTTPException, RequestedRangeNotSatisfiable
from werkzeug.wsgi import wrap_file

from booth.errors import StoreUnavailable
from booth.i18n.catalogues import N_
from booth.store import Photo
from booth.webapp.languages import current
from booth.webapp.security import private, quoted

_MESSAGES = {
    400: (N_("Something went wrong"), N_("That request could not be understood. Go back and "
                                         "try again.")),
    403: (N_("Not allowed"), N_("That form was sent from another site. Open the booth's page "
                                "and try again there.")),
    405: (N_("Not allowed"), N_("That page cannot be used like this.")),
    413: (N_("Too much"), N_("That request was too large.")),
    429: (N_("Slow down"), N_("Too many requests from this device. Wait a few minutes and try "
                              "again.")),
    503: (N_("Busy"), N_("The booth is busy for a moment. Try again in a few seconds.")),
}
_ELSE = (N_("Something went wrong"), N_("Please try again in a moment."))
# The staff's pages while the shared database is out of reach: what a technician needs to know.
_STORE_OFFLINE = (N_("The shared store is offline"),
                  N_("The staff pages need its database and work again when it is back. A "
                     "station keeps taking photos meanwhile and uploads them later."))

log = logging.getLogger(__name__)


def _message(title: str, message: str, code: int):
    _ = current().gettext
    return make_response(render_template("message.html", title=_(title), message=_(message)),
                         code)


RETRY_SECONDS = 5
_BLOCK = 256 * 1024


def on_its_way(code: int, *, unavailable: bool = False):
    """A photo still on its way from the station (200 for its page, 503 for its image and
    forms), or the shared store out of reach (503): a page that refreshes itself."""
    response = make_response(render_template("on_its_way.html", retry_seconds=RETRY_SECONDS,
                                             unavailable=unavailable), code)
    response.headers["Retry-After"] = str(RETRY_SECONDS)
    return private(response)


VIDEO = "video/mp4"


def photo_response(photo: Photo, attachment_name: str | None = None, *,
                   mimetype: str = "image/jpeg"):
    """A stored photo (or a clip's MP4: mimetype VIDEO), streamed from its file or its bucket
    (closed at the end)."""
    response = send_file(photo.stream, mimetype=mimetype,
                         as_attachment=attachment_name is not None,
                         download_name=attachment_name, conditional=False, max_age=0)
    # In 256 kB blocks rather than send_file's 8 kB: a photo in two or three writes, not 50.
    response.response = wrap_file(request.environ, photo.stream, buffer_size=_BLOCK)
    response.content_length = photo.length
    if mimetype == VIDEO:
        # Byte ranges: Safari plays a video only from a server that answers them, and a
        # browser seeks or loops by them. (A bucket's stream cannot seek: the bytes before
        # the range are read and dropped, a few MB at most.)
        try:
            response = response.make_conditional(request.environ, accept_ranges=True,
                                                 complete_length=photo.length)
        except RequestedRangeNotSatisfiable:
            photo.stream.close()
            raise
    return private(response)


def not_found():
    """One page for unknown, malformed, expired and deleted photos: no way to tell them
    apart."""
    return private(make_response(render_template("not_found.html"), 404))


# For a request no URL can be built for: the usual pages link their stylesheet via url_for.
_BARE = ("<!doctype html>\n<html lang=\"{lang}\">\n<meta charset=\"utf-8\">\n"
         "<title>{title}</title>\n<h1>{title}</h1>\n<p>{message}</p>\n</html>\n")


def init(app: Flask) -> None:
    @app.errorhandler(BadHost)
    def handle_bad_host(exc):
        lang = current()
        title, message = (lang.gettext(m) for m in _MESSAGES[400])
        return make_response(_BARE.format(lang=lang.code.replace("_", "-"), title=escape(title),
                                          message=escape(message)), 400)

    @app.errorhandler(404)
    def handle_404(exc):
        return not_found()

    @app.errorhandler(CSRFError)
    def handle_csrf(exc):
        return _message(N_("This form has expired"),
                        N_("Go back, reload the page and try again."), 400)

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        code = exc.code or 500
        response = _message(*_MESSAGES.get(code, _ELSE), code)
        if code == 429 and request.path.startswith("/p/"):
            private(response)
        return response

    @app.errorhandler(StoreUnavailable)
    def handle_unavailable(exc: StoreUnavailable):
        log.warning("%s on %s %s", exc, request.method, quoted(request.path))
        if request.path.startswith("/p/"):
            return on_its_way(503, unavailable=True)
        staff = request.path == "/staff" or request.path.startswith("/staff/")
        response = _message(*(_STORE_OFFLINE if staff else _MESSAGES[503]), 503)
        response.headers["Retry-After"] = str(RETRY_SECONDS)
        return response

    @app.errorhandler(Exception)
    def handle_any(exc: Exception):
        log.exception("unexpected error on %s %s", request.method, quoted(request.path))
        return _message(*_ELSE, 500)
