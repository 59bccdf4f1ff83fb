"""Languages: gettext message catalogues (Babel), one .po file per language.

The booth's catalogues are the .po files in `locales/` (shipped inside the package); a museum
adds a language, or adds to or changes one, by putting `<code>.po` into `[languages] folder`,
no code change (see locales/README.md). The .po files are compiled in memory when the booth
starts (a few milliseconds), so there is no build step and no compiled file to keep in step
with its source, and the installed package works from any folder.

English is the source language: its messages are the msgids themselves.
This module knows nothing of Flask or OpenCV; the station and the web app both use it.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations

from booth.errors import BoothError
from booth.resources import data_dir

SOURCE = "en"
# Dates and times of the source language follow British English (14:32, 27 November), as the
# booth always has; a museum wanting US English adds an empty en_US.po and makes it the default.
_FORMATS = {"en": "en_GB"}


def N_(message: str) -> str:
    """Marks a message for the catalogue where it is defined; it is translated where used."""
    return message


@dataclass(frozen=True)
class Language:
    """One language: its messages, its name in itself, and its way of writing dates."""

    code: str
    translations: NullTranslations

    @functools.cached_property
    def locale(self) -> Locale:
        return Locale.parse(_FORMATS.get(self.code, self.code))

    @property
    def name(self) -> str:
        """The language's name in itself ("Español"), as people look for it on a switcher."""
        name = Locale.parse(self.code).get_display_name(self.code) or self.code
        return name[:1].upper() + name[1:]

    def gettext(self, message: str, **values) -> str:
        text = self.translations.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values) -> str:
        text = self.translations.ngettext(singular, plural, n)
        return text % {"num": n, **values}

    def time(self, when: datetime, style: str = "short") -> str:
        return format_time(when, style, locale=self.locale)

    def decimal(self, number: float, pattern: str) -> str:
        return format_decimal(number, pattern, locale=self.locale)

    def percent(self, share: float) -> str:
        return format_percent(share, locale=self.locale)

    def date(self, when: datetime, style: str = "long") -> str:
        return format_date(when, style, locale=self.locale)

    def duration(self, seconds: float) -> str:
        """A span of time in words: "1 hour", "24 Stunden", "3 días", "5 minutes"."""
        return format_timedelta(timedelta(seconds=seconds), threshold=2, locale=self.locale,
                                granularity="hour" if seconds >= 3600 else "minute")

    def day_month(self, when: datetime, month: str = "MMM") -> str:
        """A day and month without the year: "27 Nov", "27. Nov."; month="MMMM" spells the
        month out ("27 November", "27 de noviembre")."""
        return format_skeleton(month + "d", when, locale=self.locale)


def _compile(po: Path) -> Translations:
    """A .po file compiled in memory (fuzzy and empty entries are left out, as msgfmt does)."""
    try:
        with po.open("rb") as f:
            catalog = read_po(f, abort_invalid=True)
    except (OSError, PoFileError, ValueError) as exc:  # UnicodeDecodeError too
        raise BoothError(f"language file {po} cannot be read ({exc}); fix or remove it") from None
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def _language_files(folders: Iterable[Path]) -> dict[str, list[Path]]:
    """code -> its .po files, the shipped one first."""
    files: dict[str, list[Path]] = {}
    for folder in folders:
        for po in sorted(folder.glob("*.po")):
            files.setdefault(po.stem, []).append(po)
    return files


def _catalogue(files: list[Path]) -> Translations:
    """One language's catalogues merged: a museum's messages add to, or replace, the
    booth's."""
    translations = _compile(files[0])
    for po in files[1:]:
        translations.merge(_compile(po))
    return translations


class Languages:
    """Every language the booth offers, in a stable order: the default first."""

    def __init__(self, languages: dict[str, Language], default: str) -> None:
        if default not in languages:
            raise BoothError(f"config: [languages] default = {default!r} has no catalogue; "
                             f"use one of {', '.join(sorted(languages))}")
        self._by_code = languages
        self.default = languages[default]

    @classmethod
    def load(cls, default: str = SOURCE, folder: str | Path = "") -> Languages:
        folders = [data_dir("locales")]
        if folder:
            extra = Path(folder).expanduser()
            if not extra.is_dir():
                raise BoothError(f"config: [languages] folder {str(extra)!r} is not a folder; "
                                 "create it or leave the setting empty")
            folders.append(extra)
        languages = {SOURCE: Language(SOURCE, NullTranslations())}
        for code, files in _language_files(folders).items():
            try:
                Locale.parse(code)
            except (ValueError, UnknownLocaleError):
                raise BoothError(f"language file {files[-1]}: {code!r} is not a language code; "
                                 "name it like es.po or pt_BR.po") from None
            languages[code] = Language(code, _catalogue(files))
        return cls(languages, default)

    @classmethod
    def from_config(cls, cfg) -> Languages:
        return cls.load(cfg.languages.default, cfg.languages.folder)

    def __iter__(self) -> Iterator[Language]:
        yield self.default
        yield from (lang for code, lang in sorted(self._by_code.items())
                    if lang is not self.default)

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __getitem__(self, code: str) -> Language:
        return self._by_code[code]

    @property
    def codes(self) -> list[str]:
        return [lang.code for lang in self]


@functools.lru_cache(maxsize=1)
def shipped() -> Languages:
    """The catalogues shipped with the booth, English by default (tests, scripts)."""
    return Languages.load()
