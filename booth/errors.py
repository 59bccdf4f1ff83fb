"""The one exception type whose message is meant for the person running the booth."""


class BoothError(Exception):
    """A problem the operator can fix; str(err) is one line saying what and how."""
