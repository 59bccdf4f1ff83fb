"""selfie-booth: a museum selfie station that puts visitors on Mars."""

__version__ = "0.1.0"
