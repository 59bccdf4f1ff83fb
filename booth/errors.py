"""The one exception type whose message is meant for the person running the booth."""


class BoothError(Exception):
    """A problem the operator can fix; str(err) is one line saying what and how."""


class StoreUnavailable(BoothError):
    """The shared store's database or bucket cannot be reached right now: the web shows a
    page that retries, the station keeps the photo in its outbox and tries again."""
