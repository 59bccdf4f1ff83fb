"""Languages: gettext catalogues, dates, the privacy notice."""
