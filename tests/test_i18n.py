"""The message catalogues: complete in every shipped language, in step with the sources, and
no English left on any page a visitor or staff member sees in another language."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from booth.config import Config
from booth.errors import BoothError
from booth.i18n.catalogues import Languages, shipped
from booth.i18n.extract import extract
from booth.store import Store
from booth.store.passwords import set_password
from booth.webapp.visitor import expiry_text
from tests.conftest import ROOT
from tests.test_web_visitor import csrf_from, publish

LOCALES = ROOT / "locales"
SHIPPED = sorted(p.stem for p in LOCALES.glob("*.po"))
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_es_fr_de_are_shipped():
    assert {"es", "fr", "de"} <= set(SHIPPED)
    assert shipped().codes == ["en", *SHIPPED]


def test_the_template_is_in_step_with_the_sources():
    """Run `python -m booth.i18n.extract` after changing a message; this fails until then."""
    with (LOCALES / "messages.pot").open("rb") as f:
        template = {m.id for m in read_po(f) if m.id}
    source = {m.id for m in extract() if m.id}
    assert source - template == set(), "new messages: run python -m booth.i18n.extract"
    assert template - source == set(), "messages no longer used: run python -m booth.i18n.extract"


@pytest.mark.parametrize("code", SHIPPED)
def test_every_message_is_translated(code: str):
    """Fails on any message of the sources with no (or a fuzzy) translation, or one whose
    placeholders differ from the English."""
    with (LOCALES / f"{code}.po").open("rb") as f:
        catalog = read_po(f, locale=code)
    problems = []
    for message in extract():
        if not message.id:
            continue
        entry = catalog.get(message.id)
        if entry is None or entry.fuzzy:
            problems.append(f"untranslated: {message.id!r}")
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        wanted = {p for i in ids for p in PLACEHOLDER.findall(i)} - {"num"}
        for s in strings:
            if not s.strip():
                problems.append(f"empty: {message.id!r}")
            elif {p for p in PLACEHOLDER.findall(s)} - {"num"} != wanted:
                problems.append(f"placeholders differ: {message.id!r} -> {s!r}")
    assert problems == []


def test_a_language_is_added_with_a_po_file_alone(tmp_path: Path):
    """A museum's folder of .po files: a new language (Italian) and a changed message."""
    (tmp_path / "it.po").write_text(
        'msgid ""\nmsgstr ""\n"Language: it\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Stand on Mars"\nmsgstr "Cammina su Marte"\n', encoding="utf-8")
    (tmp_path / "de.po").write_text(  # the museum's own wording of one message
        'msgid ""\nmsgstr ""\n"Language: de\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Stand on Mars"\nmsgstr "Stell dich auf den Mars"\n', encoding="utf-8")
    langs = Languages.load("it", tmp_path)
    assert langs.default.code == "it" and langs.codes[0] == "it"
    assert langs["it"].name == "Italiano"
    assert langs["it"].gettext("Stand on Mars") == "Cammina su Marte"
    assert langs["de"].gettext("Stand on Mars") == "Stell dich auf den Mars"
    assert langs["de"].gettext("Get ready!") == "Mach dich bereit!"  # the rest: the booth's
    assert langs["it"].date(datetime(2026, 11, 28)) == "28 novembre 2026"


def test_bad_language_settings_get_one_clear_message(tmp_path: Path):
    with pytest.raises(BoothError, match=r"\[languages\] default = 'xx'.*use one of"):
        Languages.load("xx")
    with pytest.raises(BoothError, match="is not a folder"):
        Languages.load("en", tmp_path / "missing")
    (tmp_path / "klingon.po").write_text('msgid ""\nmsgstr ""\n', encoding="utf-8")
    with pytest.raises(BoothError, match="not a language code"):
        Languages.load("en", tmp_path)
    (tmp_path / "klingon.po").unlink()
    (tmp_path / "it.po").write_bytes(b'msgid "a"\nmsgstr "\xff\xfe"\n')
    with pytest.raises(BoothError, match="it.po cannot be read"):
        Languages.load("en", tmp_path)


def test_dates_and_times_follow_the_language():
    langs = shipped()
    now = datetime(2026, 11, 25, 10, 0).timestamp()
    later = datetime(2026, 11, 28, 9, 5).timestamp()
    assert [expiry_text(later, now, langs[c]) for c in ("en", "es", "fr", "de")] == [
        "28 November at 09:05", "28 de noviembre a las 9:05", "28 novembre à 09:05",
        "28. November um 09:05"]
    assert [langs[c].duration(24 * 3600) for c in ("en", "es", "de")] == [
        "24 hours", "24 horas", "24 Stunden"]


class _Visible(HTMLParser):
    """The text a person meets on a page: text nodes and alt, title, aria-label values;
    skipping code samples, scripts, and the language names on the switcher."""

    ATTRS = {"alt", "title", "aria-label", "placeholder", "data-title"}

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0
        self._stack: list[bool] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        skip = tag in ("code", "script", "style") or (tag == "a" and "hreflang" in attrs)
        if tag not in ("meta", "link", "input", "img", "br"):
            self._stack.append(skip)
            self._skip += skip
        self.texts += [v for k, v in attrs.items() if k in self.ATTRS and v]

    def handle_endtag(self, tag):
        if tag not in ("meta", "link", "input", "img", "br") and self._stack:
            self._skip -= self._stack.pop()

    def handle_data(self, data):
        if not self._skip:
            self.texts += [t.strip() for t in re.split(r"\s{2,}|\n", data) if t.strip()]


def visible(html: str) -> set[str]:
    parser = _Visible()
    parser.feed(html)
    # Numbers, times and sizes are no language's words.
    return {t for t in parser.texts if re.search(r"[A-Za-z]{2}", t)}


# The same in English and that language (the word is spelled alike).
SAME = {"fr": {"Photos", "Photos · Personnel · Selfie sur Mars"}, "es": set(), "de": set()}


def _pages(client, store) -> dict[str, str]:
    """Every page's HTML, in the language the client asks for."""
    capture, doomed = publish(store, 1), publish(store, 2)
    pages = {"home": client.get("/").text,
             "photo": client.get(f"/p/{capture.token}").text,
             "delete": client.get(f"/p/{doomed.token}/delete").text,
             "not found": client.get("/p/nonexistent-token-000000").text}
    pages["deleted"] = client.post(f"/p/{doomed.token}/delete",
                                   data={"csrf_token": csrf_from(pages["delete"])}).text
    pages["bad form"] = client.post(f"/p/{capture.token}/delete").text
    pages["staff locked"] = client.get("/staff").text
    set_password(store, "red-planet-42")
    login = client.get("/staff").text
    pages["staff login"] = login
    pages["wrong password"] = client.post("/staff/login", data={
        "csrf_token": csrf_from(login), "password": "nope"}).text
    client.post("/staff/login", data={"csrf_token": csrf_from(login),
                                      "password": "red-planet-42"})
    gallery = client.get("/staff").text
    pages["gallery"] = gallery
    pages["deleted message"] = client.post("/staff/delete", follow_redirects=True, data={
        "csrf_token": csrf_from(gallery), "ids": [str(capture.id)]}).text
    pages["purge older"] = client.post("/staff/purge-older", follow_redirects=True, data={
        "csrf_token": csrf_from(gallery), "age": "1h"}).text
    pages["purge"] = client.get("/staff/purge").text
    pages["not allowed"] = client.put("/").text
    return pages


@pytest.mark.parametrize("code", ["es", "fr", "de"])
@pytest.mark.slow
def test_no_english_is_left_on_any_page(tmp_path: Path, make_app, code: str):
    """Each page in this language shows none of the English version's texts (a message
    missing from the catalogue, or never marked for translation, fails here)."""
    found = {}
    for lang in ("en", code):
        store = Store(tmp_path / lang)
        try:
            client = make_app(store=store).test_client()  # its own limits: nothing to reset
            client.set_cookie("booth_lang", lang)
            found[lang] = {name: visible(html) for name, html in _pages(client, store).items()}
        finally:
            store.close()
    english = found["en"]
    for name, texts in found[code].items():
        assert texts, name
        left = (texts & english[name]) - SAME[code]
        assert left == set(), f"English left on the {name} page in {code}: {left}"


def test_html_lang_follows_accept_language_and_the_cookie(client):
    page = client.get("/", headers={"Accept-Language": "fr-CH, de;q=0.8"})
    assert '<html lang="fr">' in page.text and "Marchez sur Mars" in page.text
    assert "Accept-Language" in page.headers["Vary"]
    page = client.get("/", headers={"Accept-Language": "pt-BR, ja;q=0.5"})
    assert '<html lang="en">' in page.text  # nothing offered: the booth's default
    switch = client.get("/?lang=de", headers={"Accept-Language": "fr"})
    assert switch.status_code == 303 and switch.headers["Location"] == "/"
    assert "booth_lang=de" in switch.headers["Set-Cookie"]
    page = client.get("/", headers={"Accept-Language": "fr"})
    assert '<html lang="de">' in page.text and 'aria-current="true">Deutsch' in page.text
    bogus = client.get("/?lang=xx%3Cscript%3E")
    assert bogus.status_code == 303 and "Set-Cookie" not in bogus.headers
    assert '<html lang="de">' in client.get("/").text


def test_privacy_notice_and_the_museums_policy_link(store, make_app):
    cfg = Config()
    cfg.store.retention_hours = 12
    cfg.privacy.policy_url = "https://museum.example/privacy"
    client = make_app(cfg).test_client()
    capture = publish(store)
    client.set_cookie("booth_lang", "es")
    page = client.get(f"/p/{capture.token}").text
    assert "Tu foto se guarda 12 horas y después se borra para siempre." in page
    assert '<a href="https://museum.example/privacy">Lee la política de privacidad' in page
    cfg.privacy.text = "Photos are kept for half a day. Ask staff to delete yours."
    page = make_app(cfg).test_client().get(f"/p/{capture.token}").text
    assert "Photos are kept for half a day. Ask staff to delete yours." in page
    cfg.privacy.policy_url = "javascript:alert(1)"
    with pytest.raises(BoothError, match="policy_url"):
        make_app(cfg)


@pytest.mark.parametrize("setting, message", [
    ('[languages]\ndefault = "xx"\n', "[languages] default = 'xx' has no catalogue; use one of"),
    ('[privacy]\npolicy_url = "ftp://x"\n', "policy_url = 'ftp://x' must be an http:// or"),
])
def test_bad_language_or_privacy_config_stops_serve_with_one_line(tmp_path: Path, setting,
                                                                  message):
    config = tmp_path / "booth.toml"
    config.write_text(setting, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "booth", "serve", "--config", str(config),
                           "--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1",
                           "--port", "0"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
