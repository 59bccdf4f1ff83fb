"""The one exception type whose message is meant for the person running the booth."""


class BoothError(Exception):
    """A problem the operator can fix; str(err) is one line saying what and how."""


class StoreUnavailable(BoothError):
    """The shared store's database or bucket cannot be reached right now: the web shows a
    page that retries, the station keeps the photo in its outbox and tries again."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to one line (a library's may run to several), or its type."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
