"""The staff's statistics: visitors per hour and per day, downloads and deletes as shares of
the captures, languages chosen, photos and boomerangs, camera downtime, the upload backlog;
two bar charts drawn here as SVG (no script, nothing from another site), and a CSV export.

Everything comes from the counts per hour (booth.store.counts), which hold no visitor's
data and outlive the photos' purges. Hours are shown in this server's local time. Behind the
staff login: its URLs are under /staff, which booth.webapp.staff's guard keeps closed.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, current_app, make_response, render_template, request

from booth.store import Store
from booth.store import counts as c
from booth.webapp.languages import current, languages
from booth.webapp.staff import status_panel

bp = Blueprint("statistics", __name__, url_prefix="/staff")

PERIODS = (1, 7, 30)  # days the page can cover
DEFAULT_DAYS = 7
# The chart's geometry, in SVG user units (it scales with the page).
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 720, 260, 44, 8, 12, 40
MAX_BAR = 48


def store() -> Store:
    return current_app.extensions["booth.store"]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the hour or day, as an axis label (empty: no label under this bar)
    title: str  # the hour or day and its count, for a pointer's tooltip


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # (y, the number) on the left axis
    label_y: float


def _nice_top(highest: int) -> tuple[int, int]:
    """The axis's top and its step: a round step (1, 2, 5, 10, 20...) that reaches
    `highest` in at most 5 steps, and the first multiple of it at or above `highest`."""
    scale = 1
    while True:
        for base in (1, 2, 5):
            step = base * scale
            if step * 5 >= highest:
                return max(step, -(-highest // step) * step), step
        scale *= 10


def chart(values: list[int], labels: list[str], titles: list[str]) -> Chart:
    """Bars for `values`, a left axis of round numbers; every n-th label, so they fit."""
    top, step = _nice_top(max(values, default=0))
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = inner_w / max(1, len(values))
    every = max(1, round(len(values) / 12))
    lang = current()
    width = min(slot * 0.7, MAX_BAR)  # a day alone is a bar, not a wall
    bars = [Bar(LEFT + (i + 0.5) * slot - width / 2, TOP + inner_h * (1 - v / top), width,
                inner_h * v / top, labels[i] if i % every == 0 else "", titles[i])
            for i, v in enumerate(values)]
    ticks = [(TOP + inner_h * (1 - n / top), lang.decimal(n, "#,##0"))
             for n in range(0, top + 1, step)]
    return Chart(bars, ticks, HEIGHT - BOTTOM + 18)


@dataclass
class Period:
    """The counts of a period, added up."""

    hours: dict[int, dict[str, int]]  # hour start -> event -> n
    since: float
    until: float

    def total(self, event: str) -> int:
        return sum(row.get(event, 0) for row in self.hours.values())

    def starting(self, prefix: str) -> dict[str, int]:
        found: dict[str, int] = defaultdict(int)
        for row in self.hours.values():
            for event, n in row.items():
                if event.startswith(prefix):
                    found[event[len(prefix):]] += n
        return dict(found)

    def captures(self, hour: int) -> int:
        return sum(n for e, n in self.hours.get(hour, {}).items() if e.startswith(c.CAPTURE))


def period(days: int, now: float) -> Period:
    """The last `days` local days, today included."""
    today = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    since = (today - timedelta(days=days - 1)).timestamp()
    hours: dict[int, dict[str, int]] = defaultdict(dict)
    for row in store().hour_counts(since, now + c.HOUR):
        hours[row.hour][row.event] = row.n
    return Period(dict(hours), since, now)


def _days(p: Period) -> list[tuple[datetime, int]]:
    """(local midnight, captures) for each day of the period."""
    day, last = datetime.fromtimestamp(p.since), datetime.fromtimestamp(p.until).date()
    per_day: dict[object, int] = defaultdict(int)
    for hour in p.hours:
        per_day[datetime.fromtimestamp(hour).date()] += p.captures(hour)
    found = []
    while day.date() <= last:
        found.append((day, per_day[day.date()]))
        day = (day + timedelta(days=1, hours=2)).replace(hour=0)  # over a clock change too
    return found


def _last_24_hours(p: Period, now: float) -> list[tuple[datetime, int]]:
    first = c.hour_of(now) - 23 * c.HOUR
    return [(datetime.fromtimestamp(h), p.captures(h))
            for h in range(first, first + 24 * c.HOUR, c.HOUR)]


def _share(part: int, whole: int) -> str:
    return current().percent(part / whole) if whole else "–"


def _now() -> float:
    return current_app.extensions["booth.clock"]()


def _days_asked() -> int:
    days = request.args.get("days", type=int)
    return days if days in PERIODS else DEFAULT_DAYS


@bp.get("/statistics")
def page():
    now, lang, days = _now(), current(), _days_asked()
    p = period(days, now)
    hours = _last_24_hours(p, now)
    per_day = _days(p)
    kinds = p.starting(c.CAPTURE)
    captures = sum(kinds.values())
    chosen = p.starting(c.LANGUAGE)
    names = {language.code: language.name for language in languages()}
    down = [(datetime.fromtimestamp(h), row.get(c.CAMERA_DOWN_SECONDS, 0),
             row.get(c.CAMERA_DROP, 0)) for h, row in sorted(p.hours.items())
            if row.get(c.CAMERA_DOWN_SECONDS) or row.get(c.CAMERA_DROP)]
    station = status_panel(now)
    hour_titles = [lang.ngettext("%(time)s: %(num)s capture", "%(time)s: %(num)s captures", n,
                                 time=lang.time(t)) for t, n in hours]
    day_titles = [lang.ngettext("%(day)s: %(num)s capture", "%(day)s: %(num)s captures", n,
                                day=lang.day_month(d)) for d, n in per_day]
    return make_response(render_template(
        "staff_statistics.html", logged_in=True, days=days, periods=PERIODS,
        captures=captures, photos=kinds.get("photo", 0), clips=kinds.get("clip", 0),
        downloads=p.total(c.DOWNLOAD), deletes=p.total(c.DELETE), purges=p.total(c.PURGE),
        download_share=_share(p.total(c.DOWNLOAD), captures),
        delete_share=_share(p.total(c.DELETE), captures),
        languages_chosen=sorted(((names.get(code, code), n, _share(n, sum(chosen.values())))
                                 for code, n in chosen.items()), key=lambda row: -row[1]),
        hours=[(lang.time(t), n) for t, n in hours],
        hour_chart=chart([n for _, n in hours], [lang.time(t) for t, _ in hours],
                         hour_titles),
        per_day=[(lang.day_month(d), n) for d, n in per_day],
        day_chart=chart([n for _, n in per_day], [lang.day_month(d) for d, _ in per_day],
                        day_titles),
        downtime=lang.duration(sum(s for _, s, _ in down)) if down else "",
        drops=sum(n for _, _, n in down),
        down_hours=[(f"{lang.day_month(t)} {lang.time(t)}", lang.duration(s) if s else "–", n)
                    for t, s, n in down],
        station=station, backlog=station.backlog, width=WIDTH, height=HEIGHT, left=LEFT,
        right=WIDTH - RIGHT))


# The CSV's columns after the hour: each an event (a language's are added after these).
_COLUMNS = (("captures_photo", c.CAPTURE + "photo"), ("captures_clip", c.CAPTURE + "clip"),
            ("downloads", c.DOWNLOAD), ("deletes", c.DELETE), ("purges", c.PURGE),
            ("camera_drops", c.CAMERA_DROP), ("camera_down_seconds", c.CAMERA_DOWN_SECONDS))


@bp.get("/statistics.csv")
def export():
    """One row per hour that counted anything: the hour (local, ISO 8601), then the counts."""
    now, days = _now(), _days_asked()
    p = period(days, now)
    codes = sorted(p.starting(c.LANGUAGE))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["hour", *(name for name, _ in _COLUMNS),
                     *(f"language_{code}" for code in codes)])
    for hour, row in sorted(p.hours.items()):
        writer.writerow([datetime.fromtimestamp(hour).astimezone().isoformat(timespec="minutes"),
                         *(row.get(event, 0) for _, event in _COLUMNS),
                         *(row.get(c.LANGUAGE + code, 0) for code in codes)])
    response = make_response(out.getvalue())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    name = f"booth-statistics-{datetime.fromtimestamp(now):%Y-%m-%d}-{days}d.csv"
    response.headers["Content-Disposition"] = f"attachment; filename={name}"
    return response
