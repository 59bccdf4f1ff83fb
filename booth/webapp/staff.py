"""Staff pages (login, gallery, delete, purge, station status).

Every staff URL except GET /staff and POST /staff/login needs a logged-in session: other
GETs are redirected to /staff and other POSTs refused with 403, before any view runs, so
no data ever reaches a stranger. A session is logged in while session["staff"] holds the
store's current session epoch (booth.passwords), which every new password renews.
Everything that changes state is a POST carrying the CSRF token (CSRFProtect is global).
"""

from __future__ import annotations

import json
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
    send_file,
    session,
    url_for,
)

from booth.passwords import check_password, has_password, is_current_epoch, session_epoch
from booth.store import Capture, Store
from booth.webapp.languages import current
from booth.webapp.security import LOGIN_LIMIT, limiter, private
from booth.webapp.visitor import expiry_text

bp = Blueprint("staff", __name__, url_prefix="/staff")

STATUS_KEY = "station_status"
STATUS_MAX_AGE = 10.0  # seconds; the station refreshes its status far more often
# (form value, seconds) for "Purge everything older than".
AGES = (("1h", 3600), ("6h", 6 * 3600), ("12h", 12 * 3600), ("24h", 24 * 3600),
        ("3d", 3 * 86400))
_AGE_BY_VALUE = dict(AGES)
_MAX_ID = 2**63 - 1  # SQLite's INTEGER; larger numbers cannot be ids
_ID_RE = re.compile(r"[0-9]{1,19}")
_OPEN = {("staff.index", "GET"), ("staff.index", "HEAD"), ("staff.login", "POST"),
         ("staff.logout", "POST")}  # logout: only ever clears the session


def store() -> Store:
    return current_app.extensions["booth.store"]


def logged_in() -> bool:
    """Whether this request's session carries the current epoch and its login is younger
    than PERMANENT_SESSION_LIFETIME. (Flask re-issues a permanent cookie on every request,
    so the cookie's own expiry slides; the login time in the session does not.)"""
    if "staff_ok" not in g:
        since = session.get("staff_since")
        lifetime = current_app.permanent_session_lifetime.total_seconds()
        g.staff_ok = (isinstance(since, (int, float)) and 0 <= time.time() - since < lifetime
                      and is_current_epoch(store(), session.get("staff")))
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
    if "staff" in session and not logged_in():
        # Stale: a new password was set, none is set any more, or the shift is over.
        session.pop("staff")
        session.pop("staff_since", None)
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
@limiter.limit(LOGIN_LIMIT, deduct_when=lambda response: response.status_code == 401)
def login():
    if not has_password(store()):
        return _to_gallery()
    # Read the epoch before the hash is checked: a password change meanwhile makes it stale.
    epoch = session_epoch(store())
    if not check_password(store(), request.form.get("password", "")):
        return _page("staff_login.html", 401, error=current().gettext("Wrong password. Try again."))
    session.clear()
    session["staff"] = epoch
    session["staff_since"] = time.time()
    session.permanent = True  # PERMANENT_SESSION_LIFETIME: one shift
    return _to_gallery()


@bp.post("/logout")
def logout():
    was_in = logged_in()
    session.clear()
    if was_in:
        flash(current().gettext("Logged out."))
    return _to_gallery()


# --- gallery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Station:
    running: bool
    camera: str = ""
    fps: str = ""
    age: str = ""


def station_status(now: float | None = None) -> Station:
    """What the station last published, or not running if it is missing, garbled or stale."""
    now = time.time() if now is None else now
    try:
        status = json.loads(store().get_setting(STATUS_KEY) or "null")
        updated = float(status["updated_at"])
        fps = float(status.get("fps", 0.0))
        camera = str(status.get("camera", "unknown"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return Station(False)
    if not (math.isfinite(updated) and abs(now - updated) <= STATUS_MAX_AGE):
        return Station(False)
    lang = current()
    return Station(True, camera=camera,
                   fps=lang.decimal(fps, "0.0") if math.isfinite(fps) else "?",
                   age=lang.gettext("just now") if now - updated < 2 else
                   lang.gettext("%(seconds)s s ago", seconds=round(now - updated)))


def _bytes_text(n: float) -> str:
    lang = current()
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{lang.decimal(n, '0' if unit == 'B' else '0.0')} {unit}"
        n /= 1000
    return f"{lang.decimal(n, '0.0')} TB"


def _disk() -> tuple[str, str, bool]:
    """(free space, share free, whether it is getting low) of the data dir's disk."""
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


def _row(capture: Capture, now: float) -> Row:
    expired, lang = capture.expires_at <= now, current()
    return Row(capture.id, _when(capture.created_at, now),
               lang.ngettext("%(num)s download", "%(num)s downloads", capture.downloads),
               lang.gettext("expired") if expired else lang.gettext(
                   "expires %(when)s", when=expiry_text(capture.expires_at, now, lang)),
               expired)


def _gallery():
    now = time.time()
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0,
                                                   microsecond=0).timestamp()
    captures = store().captures()
    total = store().count()
    free, share, low = _disk()
    return _page("staff_gallery.html", logged_in=True, station=station_status(now),
                 today=store().count_since(midnight), total=total, free=free,
                 free_share=share, disk_low=low, rows=[_row(c, now) for c in captures],
                 ages=[(value, current().duration(seconds)) for value, seconds in AGES])


def _capture_or_404(capture_id: int) -> Capture | None:
    if not 0 < capture_id <= _MAX_ID:
        return None
    return store().get(capture_id)


def _image(path):
    if path is None:
        return None
    try:
        # Opened here, not by send_file: a photo deleted between a check and send_file's
        # stat() (a visitor's delete, the janitor) would end in a 500.
        f = path.open("rb")
    except OSError:  # gone, or not a file
        return None
    return private(send_file(f, mimetype="image/jpeg", conditional=False, max_age=0))


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
    return _image(capture.thumb_path) or _image(capture.path) or _no_photo()


@bp.get("/photo/<int:capture_id>.jpg")
def photo(capture_id: int):
    capture = _capture_or_404(capture_id)
    if capture is None:
        return _no_photo()
    return _image(capture.path) or _no_photo()


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
    lang = current()
    message = lang.ngettext("Deleted %(num)s photo.", "Deleted %(num)s photos.", deleted)
    if gone:
        message += " " + lang.ngettext("%(num)s photo had already been deleted.",
                                       "%(num)s photos had already been deleted.", gone)
    flash(message)
    return _to_gallery()


@bp.post("/purge-older")
def purge_older():
    seconds, lang = _AGE_BY_VALUE.get(request.form.get("age", "")), current()
    if seconds is None:
        return _problem(400, lang.gettext("Nothing deleted"),
                        lang.gettext("Choose an age from the list and try again."))
    deleted = store().purge_older_than(seconds)
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
    flash(current().ngettext("Deleted %(num)s photo: the booth holds no photos now.",
                             "Deleted %(num)s photos: the booth holds no photos now.", deleted))
    return _to_gallery()
