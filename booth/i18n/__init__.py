"""Languages: one gettext catalogue per language (locales/<code>.po), for the station and the
web app alike; knows nothing of Flask or OpenCV.

Modules: catalogues (the catalogues, compiled in memory at start-up, and dates, times and
durations written each language's way), privacy (the privacy notice in the visitor's
language), extract (`python -m booth.i18n.extract`: messages.pot and every .po brought in step
with the code, templates and scene files).
"""
