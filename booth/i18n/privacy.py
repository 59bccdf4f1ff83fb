"""The privacy notice visitors see on the attract screen and on their photo's page."""

from __future__ import annotations

from booth.i18n.catalogues import Language


def notice(lang: Language, hours: float, museum_text: str = "") -> str:
    """The museum's own text when it has one (translated where a catalogue holds it), else
    the booth's: what is kept, for how long, and how to delete it."""
    if museum_text:
        return lang.gettext(museum_text)
    return lang.gettext("Your photo is kept for %(time)s, then deleted for good. Only its QR "
                        "code's link opens it, and you can delete it from your phone at any "
                        "time.", time=lang.duration(hours * 3600))
