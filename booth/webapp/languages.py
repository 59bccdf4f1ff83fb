"""The web app's language: the visitor's choice (a cookie set by the switcher), else the
browser's Accept-Language, else the booth's default. Flask-Babel formats and translates
with the booth's own catalogues (booth.i18n.catalogues), the same ones the station uses."""

from __future__ import annotations

import contextlib
import sqlite3
from urllib.parse import quote, urlsplit

from flask import Flask, current_app, g, has_request_context, redirect, request
from flask_babel import Babel, Domain

from booth.errors import BoothError
from booth.i18n.catalogues import Language, Languages
from booth.i18n.privacy import notice
from booth.store import counts

COOKIE = "booth_lang"
COOKIE_DAYS = 365


def languages() -> Languages:
    return current_app.extensions["booth.languages"]


def current() -> Language:
    """This request's language (outside a request: the default)."""
    if not has_request_context():
        return languages().default
    if "booth_language" not in g:
        langs = languages()
        chosen = request.cookies.get(COOKIE, "")
        if chosen not in langs:
            chosen = _negotiate([v for v, _q in request.accept_languages], langs.codes)
        g.booth_language = langs[chosen] if chosen else langs.default
    return g.booth_language


def _negotiate(wanted: list[str], codes: list[str]) -> str | None:
    """The first wanted language (best first) that is offered, exactly (pt-BR: pt_BR) or by
    its main language (fr-CH: fr; de: de_AT)."""
    for tag in wanted:
        tag = tag.replace("-", "_").lower()
        for code in codes:
            if code.lower() == tag:
                return code
        for code in codes:
            if code.lower().split("_")[0] == tag.split("_")[0]:
                return code
    return None


class _CatalogueDomain(Domain):
    def get_translations(self):
        return current().translations


class _Babel(Babel):
    @property
    def domain_instance(self):
        return _DOMAIN


_DOMAIN = _CatalogueDomain()


def _policy_url(url: str) -> str:
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        raise BoothError(f"config: [privacy] policy_url = {url!r} must be an http:// or "
                         "https:// address")
    return url


def _until() -> str:
    """A waiting photo link's `until` ("until=N", else ""): the switch keeps it, without it the
    link would be "not found"."""
    until = request.args.get("until", type=int)
    return "" if until is None else f"until={until}"


def _same_page() -> str:
    """Where the switch sends the visitor back: this page, if it is one of this site's own
    routes (else the home page), as a percent-encoded path. Never "//host/..." or a scheme:
    a browser takes those for another site (an open redirect from the booth's address)."""
    path = quote(request.path) if request.url_rule is not None else "/"
    return "/" if path.startswith("//") else path


def _count(code: str) -> None:
    """A language chosen on a phone, for the statistics; a store out of reach costs the
    count, never the switch."""
    with contextlib.suppress(BoothError, sqlite3.Error):
        current_app.extensions["booth.store"].count_event(counts.LANGUAGE + code)


def init(app: Flask, cfg) -> None:
    app.extensions["booth.languages"] = Languages.from_config(cfg)
    policy = _policy_url(cfg.privacy.policy_url)
    _Babel(app, locale_selector=lambda: current().code)

    @app.before_request
    def switch_language():
        """?lang=xx from the switcher: remember it and show the same page without the query
        (but `until`)."""
        code = request.args.get("lang")
        if code is None or request.method != "GET":
            return None
        until = _until()
        response = redirect(_same_page() + (f"?{until}" if until else ""), 303)
        if code in languages():
            _count(code)
            response.set_cookie(COOKIE, code, max_age=COOKIE_DAYS * 86400, httponly=True,
                                samesite="Lax", secure=request.is_secure)
        return response

    @app.after_request
    def vary(response):
        response.vary.update(("Accept-Language", "Cookie"))
        return response

    @app.context_processor
    def language_context():
        lang = current()
        until = _until()
        return {"language": lang, "html_lang": lang.code.replace("_", "-"),
                "languages": list(languages()), "privacy_policy": policy,
                "switch_keeps": f"&{until}" if until else "",  # after ?lang=xx
                "privacy_notice": notice(lang, cfg.store.retention_hours, cfg.privacy.text)}
