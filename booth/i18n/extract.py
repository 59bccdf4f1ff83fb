"""Keeping the catalogues in step with the sources (in a source checkout):

    python -m booth.i18n.extract

extracts every visitor- and staff-facing message (Python, templates, scene files) into
locales/messages.pot and merges it into each locales/<code>.po: new messages arrive empty for
the translator, messages no longer used are dropped. tests/test_i18n.py fails while any .po
lacks a translation.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from booth.scene.definition import tomllib

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def extract_scene(fileobj, keywords, comment_tags, options):
    """A scene.toml's caption, title and credit are printed on the photo."""
    data = tomllib.loads(fileobj.read().decode("utf-8"))
    for key in ("caption", "title", "credit"):
        if data.get(key):
            yield 1, "gettext", data[key], [f"scene {data.get('name', '')}: {key}"]


METHODS = [("booth/**.py", "python"), ("web/templates/**.html", "jinja2"),
           ("overlays/**/scene.toml", extract_scene)]


def extract(root: Path = ROOT) -> Catalog:
    catalog = Catalog(project="selfie-booth", msgid_bugs_address="", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            root, METHODS, keywords=KEYWORDS, comment_tags=("scene",),
            options_map={"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments,
                    context=context)
    return catalog


def update(root: Path = ROOT) -> list[Path]:
    """Rewrite messages.pot and merge it into every .po; returns the .po files."""
    locales = root / "locales"
    template = extract(root)
    with (locales / "messages.pot").open("wb") as f:
        write_po(f, template, omit_header=False, sort_output=True, no_location=True,
                 ignore_obsolete=True)
    updated = []
    for po in sorted(locales.glob("*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.stem)
        catalog.update(template, no_fuzzy_matching=True)
        with po.open("wb") as f:
            write_po(f, catalog, sort_output=True, no_location=True, ignore_obsolete=True)
        updated.append(po)
    return updated


if __name__ == "__main__":
    for po in update():
        print(f"updated {po}", file=sys.stderr)
