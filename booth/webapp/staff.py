"""Staff pages (login, gallery of photos and clips, delete, purge, print, station and printer
status). A print is a request in the store that the station with the printer takes within
seconds (booth.store.prints): the web app never talks to CUPS, and may run elsewhere.

Every staff URL except GET /staff and POST /staff/login needs a logged-in session: other
GETs are redirected to /staff and other POSTs refused with 403, before any view runs, so
no data ever reaches a stranger. A session is logged in while session["staff"] holds the id
of a live staff session in the store (booth.store.sessions): logout ends it (even while the
store is out of reach), a new password ends them all, and a shift (8 hours) ends it too.
Everything that changes state is a POST carrying the CSRF token (CSRFProtect is global).
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import ServiceUnavailable

from booth.store import Capture, Store
from booth.store.captures import CLIP, PHOTO
from booth.store.passwords import check_password, has_password
from booth.store.status import PrinterStatus, StationStatus
from booth.webapp.errors import VIDEO, photo_response
from booth.webapp.languages import current
from booth.webapp.security import LOGIN_LIMIT, private, rate_limits
from booth.webapp.visitor import expiry_text

bp = Blueprint("staff", __name__, url_prefix="/staff")
log = logging.getLogger(__name__)

STATUS_MAX_AGE = 10.0  # seconds; the station refreshes its status far more often
PRINTER_MAX_AGE = 30.0  # seconds; a print under way (at most a 10 s timeout) holds it up
# (form value, seconds) for "Purge everything older than".
AGES = (("1h", 3600), ("6h", 6 * 3600), ("12h", 12 * 3600), ("24h", 24 * 3600),
        ("3d", 3 * 86400))
_AGE_BY_VALUE = dict(AGES)
_MAX_ID = 2**63 - 1  # SQLite's INTEGER; larger numbers cannot be ids
_ID_RE = re.compile(r"[0-9]{1,19}")
_OPEN = {("staff.index", "GET"), ("staff.index", "HEAD"), ("staff.login", "POST")}


def store() -> Store:
    return current_app.extensions["booth.store"]


def _lifetime() -> float:
    return current_app.permanent_session_lifetime.total_seconds()


def logged_in() -> bool:
    """Whether this request's session is a live staff session younger than
    PERMANENT_SESSION_LIFETIME, while a password is set. (Flask re-issues a permanent cookie
    on every request, so the cookie's own expiry slides; the session's start does not.)"""
    if "staff_ok" not in g:
        since = store().session_started(session.get("staff"))
        g.staff_ok = (since is not None and 0 <= time.time() - since < _lifetime()
                      and has_password(store()))
    return g.staff_ok


def _page(template: str, status: int = 200, **context):
    return make_response(render_template(template, **context), status)


def _problem(status: int, title: str, message: str):
    return _page("staff_message.html", status, title=title, message=message,
                 logged_in=logged_in())


def _to_gallery():
    return redirect(url_for("staff.index"), 303)


@bp.before_app_request
def guard():
    """Keep every staff URL (known or not) behind the login."""
    path = request.path
    if path != bp.url_prefix and not path.startswith(bp.url_prefix + "/"):
        return None
    if (request.endpoint, request.method) == ("staff.logout", "POST"):
        # Open too: it only ever ends the session, and asks the store nothing first, so it
        # ends it even while the store is out of reach.
        return None
    if "staff" in session and not logged_in():
        # Stale: logged out, a new password was set, none is set any more, or the shift
        # is over.
        session.pop("staff")
    if (request.endpoint, request.method) in _OPEN or logged_in():
        return None
    if request.method in ("GET", "HEAD"):
        return redirect(url_for("staff.index"))
    _ = current().gettext
    return _problem(403, _("Please log in"), _("You are not logged in, or your session has "
                    "ended. Open the staff page and log in again."))


# --- login -----------------------------------------------------------------------------


@bp.get("")
def index():
    if not has_password(store()):
        return _page("staff_locked.html")
    if not logged_in():
        return _page("staff_login.html")
    return _gallery()


@bp.post("/login")
def login():
    if not has_password(store()):
        return _to_gallery()
    # Counted before the password is checked, so a burst in parallel gets no more checks
    # than the limit; a success is given back: only failures count.
    limits = rate_limits()
    limits.require(LOGIN_LIMIT, "login")
    try:
        with limits.password_check():
            ok, session_id = _check_and_start(request.form.get("password", ""))
    except ServiceUnavailable:
        limits.give_back(LOGIN_LIMIT, "login")  # not checked: not counted
        raise
    if not ok:
        log.warning("staff login refused: wrong password (client %r)", request.remote_addr)
        return _page("staff_login.html", 401,
                     error=current().gettext("Wrong password. Try again."))
    limits.give_back(LOGIN_LIMIT, "login")
    store().end_session(session.get("staff"))  # a login on top of another one replaces it
    session.clear()
    session["staff"] = session_id
    session.permanent = True  # PERMANENT_SESSION_LIFETIME: one shift
    log.info("staff logged in (client %r)", request.remote_addr)
    return _to_gallery()


def _check_and_start(password: str) -> tuple[bool, str]:
    """(whether password is right, a new session id that is live only if it is)."""
    now = time.time()
    store().end_sessions(older_than=now - _lifetime())  # shifts long over
    # The session exists before the password is checked: a password set meanwhile ends it
    # (booth.store.passwords.set_password), so a check of the old password logs nobody in.
    session_id = store().start_session(now)
    if check_password(store(), password):
        return True, session_id
    store().end_session(session_id)
    return False, session_id


@bp.post("/logout")
def logout():
    session_id = session.get("staff")
    session.clear()  # the browser's cookie opens nothing any more
    if store().end_session(session_id):  # nor does a copy of it, even if the store is down
        log.info("staff logged out (client %r)", request.remote_addr)
        flash(current().gettext("Logged out."))
    return _to_gallery()


# --- gallery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusPanel:
    """The station's status (booth.store.status) as the gallery shows it, in words."""

    running: bool
    camera: str = ""
    fps: str = ""
    age: str = ""
    backlog: int = 0  # captures in the station's outbox (the shared store's station)
    offline: bool = False  # the station cannot reach the shared store


def status_panel(now: float | None = None) -> StatusPanel:
    """What the station last published, or not running if it is missing, garbled or stale."""
    now = time.time() if now is None else now
    status = StationStatus.load(store())
    if status is None or abs(now - status.updated_at) > STATUS_MAX_AGE:
        return StatusPanel(False)
    lang = current()
    return StatusPanel(True, camera=status.camera, backlog=status.backlog,
                       offline=status.offline,
                       fps=lang.decimal(status.fps, "0.0") if math.isfinite(status.fps) else "?",
                       age=lang.gettext("just now") if now - status.updated_at < 2 else
                       lang.gettext("%(seconds)s s ago", seconds=round(now - status.updated_at)))


@dataclass(frozen=True)
class PrinterPanel:
    """The station's CUPS queue (booth.store.status.PrinterStatus) as the gallery shows it."""

    queue: str
    ok: bool
    state: str
    message: str  # CUPS's own words: the queue's message and alerts
    last_error: str
    printed: str


def printer_panel(now: float) -> PrinterPanel | None:
    """None where no station has a printer; a stale status says the station is silent."""
    status = PrinterStatus.load(store())
    if status is None:
        return None
    lang = current()
    _ = lang.gettext
    words = {"idle": _("ready"), "printing": _("printing"), "paused": _("paused"),
             "rejecting jobs": _("not accepting jobs"), "missing": _("queue missing"),
             "CUPS not running": _("CUPS not running"), "unknown": _("not answering")}
    live = abs(now - status.updated_at) <= PRINTER_MAX_AGE
    state = words.get(status.state, status.state) if live else _("no status from the station")
    printed = (_("%(num)s of %(limit)s", num=status.printed_today, limit=status.daily_limit)
               if status.daily_limit else str(status.printed_today))
    return PrinterPanel(status.queue, live and status.ok, state, status.message,
                        status.last_error, printed)


def _bytes_text(n: float) -> str:
    lang = current()
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{lang.decimal(n, '0' if unit == 'B' else '0.0')} {unit}"
        n /= 1000
    return f"{lang.decimal(n, '0.0')} TB"


def _disk() -> tuple[str, str, bool]:
    """(free space, share free, whether it is getting low) of the data dir's disk; nothing
    for the shared store, whose photos are in a bucket."""
    if store().shared:
        return "", "", False
    try:
        usage = shutil.disk_usage(store().data_dir)
    except OSError:
        return current().gettext("unknown"), "", False
    share = usage.free / usage.total if usage.total else 0.0
    return (_bytes_text(usage.free),
            current().gettext("%(share)s of %(total)s", share=current().percent(share),
                              total=_bytes_text(usage.total)), share < 0.1)


def _when(ts: float, now: float) -> str:
    lang, moment = current(), datetime.fromtimestamp(ts)
    if moment.date() == datetime.fromtimestamp(now).date():
        return lang.gettext("today %(time)s", time=lang.time(moment, "medium"))
    return f"{lang.day_month(moment)} {lang.time(moment)}"


@dataclass(frozen=True)
class Row:
    id: int
    taken: str
    downloads: str
    expiry: str
    expired: bool
    clip: bool  # its thumbnail is the clip's poster; it links to the MP4


def _row(capture: Capture, now: float) -> Row:
    expired, lang = capture.expires_at <= now, current()
    return Row(capture.id, _when(capture.created_at, now),
               lang.ngettext("%(num)s download", "%(num)s downloads", capture.downloads),
               lang.gettext("expired") if expired else lang.gettext(
                   "expires %(when)s", when=expiry_text(capture.expires_at, now, lang)),
               expired, capture.kind == CLIP)


def _gallery():
    now = time.time()
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0,
                                                   microsecond=0).timestamp()
    captures = store().captures()
    kinds = store().count_by_kind()
    free, share, low = _disk()
    return _page("staff_gallery.html", logged_in=True, station=status_panel(now),
                 today=store().count_since(midnight), total=sum(kinds.values()),
                 photos=kinds[PHOTO], clips=kinds[CLIP], free=free,
                 free_share=share, disk_low=low, rows=[_row(c, now) for c in captures],
                 printer=printer_panel(now), waiting=store().waiting_prints(),
                 ages=[(value, current().duration(seconds)) for value, seconds in AGES])


def _capture_or_404(capture_id: int) -> Capture | None:
    if not 0 < capture_id <= _MAX_ID:
        return None
    return store().get(capture_id)


def _no_photo():
    _ = current().gettext
    return private(_problem(404, _("Photo not found"), _("This photo does not exist any more: "
                            "it was deleted or has expired.")))


@bp.get("/thumb/<int:capture_id>.jpg")
def thumb(capture_id: int):
    capture = _capture_or_404(capture_id)
    if capture is None:
        return _no_photo()
    # A capture without a thumbnail shows the photo itself.
    photo = store().open_photo(capture, thumb=True)
    return _no_photo() if photo is None else photo_response(photo)


@bp.get("/photo/<int:capture_id>.jpg")
def photo(capture_id: int):
    capture = _capture_or_404(capture_id)
    if capture is None:
        return _no_photo()
    photo = store().open_photo(capture)
    return _no_photo() if photo is None else photo_response(photo)


@bp.get("/clip/<int:capture_id>.mp4")
def clip(capture_id: int):
    capture = _capture_or_404(capture_id)
    video = None if capture is None or capture.kind != CLIP else store().open_file(capture)
    return _no_photo() if video is None else photo_response(video, mimetype=VIDEO)


# --- delete and purge ------------------------------------------------------------------


@bp.post("/delete")
def delete():
    values = request.form.getlist("ids")
    ids = set()
    for value in values:
        value = value.strip()
        if not _ID_RE.fullmatch(value) or not 0 < int(value) <= _MAX_ID:
            _ = current().gettext
            return _problem(400, _("Nothing deleted"), _("That selection was not understood. "
                            "Go back to the photos, reload and try again."))
        ids.add(int(value))
    if not ids:
        flash(current().gettext("No photos were selected, so nothing was deleted."))
        return _to_gallery()
    deleted = store().delete(sorted(ids))
    gone = len(ids) - deleted
    log.info("staff deleted %d photo(s)", deleted)
    lang = current()
    message = lang.ngettext("Deleted %(num)s photo.", "Deleted %(num)s photos.", deleted)
    if gone:
        message += " " + lang.ngettext("%(num)s photo had already been deleted.",
                                       "%(num)s photos had already been deleted.", gone)
    flash(message)
    return _to_gallery()


@bp.post("/print")
def print_photo():
    """Print (or print again) one photo on the station's printer."""
    _ = current().gettext
    value = request.form.get("ids", "").strip()
    if not _ID_RE.fullmatch(value) or not 0 < int(value) <= _MAX_ID:
        return _problem(400, _("Nothing printed"), _("That selection was not understood. "
                        "Go back to the photos, reload and try again."))
    capture = store().get(int(value))
    if capture is None or capture.kind != PHOTO:
        flash(_("Nothing printed: that photo is gone, or it is a boomerang (they are not "
                "printed)."))
        return _to_gallery()
    store().request_print(capture.id)
    log.info("staff asked to print capture %d", capture.id)
    flash(_("Sent to the printer: the station prints it within a few seconds."))
    return _to_gallery()


@bp.post("/purge-older")
def purge_older():
    seconds, lang = _AGE_BY_VALUE.get(request.form.get("age", "")), current()
    if seconds is None:
        return _problem(400, lang.gettext("Nothing deleted"),
                        lang.gettext("Choose an age from the list and try again."))
    deleted = store().purge_older_than(seconds)
    log.info("staff purged %d photo(s) older than %d s", deleted, seconds)
    flash(lang.ngettext("Deleted %(num)s photo older than %(age)s.",
                        "Deleted %(num)s photos older than %(age)s.", deleted,
                        age=lang.duration(seconds)))
    return _to_gallery()


@bp.get("/purge")
def confirm_purge():
    return _page("staff_purge.html", logged_in=True, total=store().count())


@bp.post("/purge")
def purge():
    if request.form.get("confirm") != "yes":
        _ = current().gettext
        return _problem(400, _("Nothing deleted"), _("Purging every photo needs the "
                        "confirmation button. Nothing was deleted."))
    deleted = store().purge_all()
    log.info("staff purged every photo: %d deleted", deleted)
    flash(current().ngettext("Deleted %(num)s photo: the booth holds no photos now.",
                             "Deleted %(num)s photos: the booth holds no photos now.", deleted))
    return _to_gallery()
