"""Clean error pages: every failure is a page a visitor understands, never a traceback."""

from __future__ import annotations

from flask import Flask, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from werkzeug.exceptions import BadHost, HTTPException

from booth.webapp.security import private

_MESSAGES = {
    400: ("Something went wrong", "That request could not be understood. Go back and try "
          "again."),
    403: ("Not allowed", "That form was sent from another site. Open the booth's page "
          "and try again there."),
    405: ("Not allowed", "That page cannot be used like this."),
    413: ("Too much", "That request was too large."),
    429: ("Slow down", "Too many requests from this device. Wait a few minutes and try "
          "again."),
    503: ("Busy", "The booth is busy for a moment. Try again in a few seconds."),
}


def not_found():
    """One page for unknown, malformed, expired and deleted photos: no way to tell them
    apart."""
    return private(make_response(render_template("not_found.html"), 404))


# For a request no URL can be built for: the usual pages link their stylesheet via url_for.
_BARE = ("<!doctype html>\n<html lang=\"en\">\n<meta charset=\"utf-8\">\n<title>{title}</title>\n"
         "<h1>{title}</h1>\n<p>{message}</p>\n</html>\n")


def init(app: Flask) -> None:
    @app.errorhandler(BadHost)
    def handle_bad_host(exc):
        title, message = _MESSAGES[400]
        return make_response(_BARE.format(title=escape(title), message=escape(message)), 400)

    @app.errorhandler(404)
    def handle_404(exc):
        return not_found()

    @app.errorhandler(CSRFError)
    def handle_csrf(exc):
        return render_template("message.html", title="This form has expired",
                               message="Go back, reload the page and try again."), 400

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        code = exc.code or 500
        title, message = _MESSAGES.get(code, ("Something went wrong", "Please try again."))
        response = make_response(
            render_template("message.html", title=title, message=message), code)
        if code == 429 and request.path.startswith("/p/"):
            private(response)
        return response

    @app.errorhandler(Exception)
    def handle_any(exc: Exception):
        app.logger.exception("unexpected error on %s", request.path)
        return render_template("message.html", title="Something went wrong",
                               message="Please try again in a moment."), 500
