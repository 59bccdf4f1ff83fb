"""Clean error pages: every failure is a page a visitor understands, never a traceback."""

from __future__ import annotations

from flask import Flask, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import BadHost, HTTPException

from booth.i18n import N_
from booth.webapp.languages import current
from booth.webapp.security import private

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


def _message(title: str, message: str, code: int):
    _ = current().gettext
    return make_response(render_template("message.html", title=_(title), message=_(message)),
                         code)


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

    @app.errorhandler(Exception)
    def handle_any(exc: Exception):
        app.logger.exception("unexpected error on %s", request.path)
        return _message(*_ELSE, 500)
