"""Downtime previews: the payloads' recurrences expanded into concrete windows, a no-gap check, a week calendar.

Each recurrence is Datadog's v2 schedule: ``start`` (local time, no offset) in the schedule's ``timezone``,
a ``duration`` and an RRULE. Durations are taken as elapsed time (an assumption: Datadog's docs do not say how a
duration that spans a daylight-saving change is counted); ``wall_clock=True`` counts them on the local clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr
from matplotlib.patches import Rectangle

from recipes.site.previews import style
from recipes import settings as schema
from recipes.site.previews.inputs import PreviewInputError, load_payload, require, sample_values

DURATION = re.compile(r"^(\d+)([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Window:
    """One concrete downtime window, in the schedule's time zone."""

    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Interval:
    start: datetime  # aware, UTC
    end: datetime


def parse_duration(text: str, where: str) -> timedelta:
    match = DURATION.match(str(text))
    if not match:
        raise PreviewInputError(f"{where}: duration {text!r} is not <integer><m|h|d|w>")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PreviewInputError(f"{where}: unknown time zone {name!r}") from None


def expand(name: str, payload: dict, since: datetime, until: datetime, wall_clock: bool = False) -> list[Window]:
    """Windows of ``payload`` (a v2 downtime body) that overlap [since, until)."""
    where = f"payloads/{name}"
    attributes = require(require(payload, "data", where), "attributes", f"{where}: data")
    schedule = require(attributes, "schedule", f"{where}: data.attributes")
    zone = _zone(require(schedule, "timezone", f"{where}: schedule"), f"{where}: schedule.timezone")
    windows = []
    for i, rec in enumerate(require(schedule, "recurrences", f"{where}: schedule")):
        field = f"{where}: schedule.recurrences[{i}]"
        try:
            first = datetime.strptime(require(rec, "start", field), "%Y-%m-%dT%H:%M")
        except ValueError:
            raise PreviewInputError(f"{field}.start: {rec['start']!r} is not YYYY-MM-DDTHH:MM (no offset)") from None
        length = parse_duration(require(rec, "duration", field), f"{field}.duration")
        rule = rrulestr(require(rec, "rrule", field), dtstart=first)
        local_since = since.astimezone(zone).replace(tzinfo=None) - length - timedelta(days=1)
        local_until = until.astimezone(zone).replace(tzinfo=None)
        for begin in rule.between(local_since, local_until, inc=True):
            start = begin.replace(tzinfo=zone)
            end = (begin + length).replace(tzinfo=zone) if wall_clock else \
                (start.astimezone(timezone.utc) + length).astimezone(zone)
            if end > since and start < until:
                windows.append(Window(name, start, end))
    return windows


def quiet_hours(zone: ZoneInfo, first_day: date, days: int, opens: time, closes: time,
                workdays: set[int]) -> list[Interval]:
    """Every moment outside business hours (workdays ``opens``..``closes`` local) in the span, in UTC."""
    out, cursor = [], datetime.combine(first_day, time(0), zone)
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        if day.weekday() in workdays:  # a day off continues the quiet stretch
            out.append(Interval(cursor, datetime.combine(day, opens, zone)))
            cursor = datetime.combine(day, closes, zone)
    out.append(Interval(cursor, datetime.combine(first_day + timedelta(days=days), time(0), zone)))
    return [Interval(i.start.astimezone(timezone.utc), i.end.astimezone(timezone.utc)) for i in out if i.end > i.start]


def subtract(needed: list[Interval], windows: list[Window]) -> list[Interval]:
    """Parts of ``needed`` that no window covers (the gaps)."""
    covered = sorted((w.start.astimezone(timezone.utc), w.end.astimezone(timezone.utc)) for w in windows)
    gaps = []
    for part in needed:
        cursor = part.start
        for start, end in covered:
            if end <= cursor or start >= part.end:
                continue
            if start > cursor:
                gaps.append(Interval(cursor, start))
            cursor = max(cursor, end)
        if cursor < part.end:
            gaps.append(Interval(cursor, part.end))
    return gaps


def muted_business_hours(needed: list[Interval], windows: list[Window], since: datetime,
                         until: datetime) -> list[Interval]:
    """Parts of business hours that a window mutes (over-muting), in UTC."""
    business, cursor = [], since.astimezone(timezone.utc)
    for part in needed:
        if part.start > cursor:
            business.append(Interval(cursor, part.start))
        cursor = max(cursor, part.end)
    if cursor < until:
        business.append(Interval(cursor, until.astimezone(timezone.utc)))
    over = []
    for part in business:
        for w in windows:
            start, end = max(part.start, w.start.astimezone(timezone.utc)), min(part.end, w.end.astimezone(timezone.utc))
            if end > start:
                over.append(Interval(start, end))
    return over


def zone_of(config) -> ZoneInfo:
    """The configured time zone (api.timezone), or an error naming the setting."""
    return _zone(config["api"]["timezone"], "recipes/defaults.py api.timezone")


def expand_and_check(config, first: date, days: int, wall_clock: bool = False):
    """Windows of both downtime payloads over ``days`` days from ``first``, their gaps and their over-muting.

    The schedules are taken as created a week before ``first`` (steady state), so a Monday morning is covered
    by the previous weekend's window as it is once the downtimes exist.
    """
    hours = schema.of(config).previews.business_hours
    zone = zone_of(config)
    since = datetime.combine(first, time(0), zone)
    until = since + timedelta(days=days)
    values = sample_values(config, START_DATE=(first - timedelta(days=7)).isoformat())
    windows = []
    for key in ("downtime-weeknights", "downtime-weekends"):
        windows += expand(key, load_payload(key, values), since, until, wall_clock)
    windows.sort(key=lambda w: w.start)
    needed = quiet_hours(zone, first, days, hours.opens_at, hours.closes_at, hours.workday_numbers)
    gaps = subtract(needed, windows)
    over = muted_business_hours(needed, windows, since, until)
    return windows, gaps, over


def describe(parts: list[Interval], zone: ZoneInfo, label: str) -> str:
    """``gap Mon 26 Oct 08:00-09:00`` for each part, in local time."""
    return "; ".join(f"{label} {p.start.astimezone(zone):%a %d %b %H:%M}-{p.end.astimezone(zone):%H:%M}"
                     for p in parts)


def draw_week(windows: list[Window], monday: date, zone: ZoneInfo, title: str, colours: dict[str, str],
              opens: time, closes: time, workdays: set[int], gaps: list[Interval], path):
    """A Monday-to-Sunday calendar (hours downward) with each window as a coloured block."""
    fig, ax = style.figure(9.0, 5.6)
    for day in range(7):
        if day in workdays:
            ax.add_patch(Rectangle((day + 0.04, opens.hour + opens.minute / 60), 0.92,
                                   (closes.hour - opens.hour) + (closes.minute - opens.minute) / 60,
                                   facecolor="#f3f3f3", edgecolor="#dddddd", linewidth=0.6))
    _blocks(ax, [(w.start, w.end, colours[w.name]) for w in windows], monday, zone, alpha=0.85)
    _blocks(ax, [(g.start.astimezone(zone), g.end.astimezone(zone), "none") for g in gaps], monday, zone,
            alpha=1.0, hatch="////", edge=style.ALERT)
    ax.set_xlim(0, 7)
    ax.set_ylim(24, 0)
    ax.set_xticks([d + 0.5 for d in range(7)])
    ax.set_xticklabels([f"{WEEKDAYS[d]} {(monday + timedelta(days=d)):%d %b}" for d in range(7)])
    ax.set_yticks(range(0, 25, 3))
    ax.set_yticklabels([f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.grid(axis="x", visible=False)
    ax.set_title(title, fontsize=10)
    handles = [Rectangle((0, 0), 1, 1, color=c, alpha=0.85) for c in colours.values()]
    labels = list(colours)
    handles.append(Rectangle((0, 0), 1, 1, facecolor="#f3f3f3", edgecolor="#dddddd"))
    labels.append(f"business hours ({opens:%H:%M}-{closes:%H:%M}), monitor live")
    if gaps:
        handles.append(Rectangle((0, 0), 1, 1, facecolor="none", edgecolor=style.ALERT, hatch="////"))
        labels.append("gap: quiet hours with no downtime")
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8, frameon=False)
    style.footnote(fig, f"Windows expanded offline from the payloads with dateutil's rrule, time zone {zone.key} "
                        f"-- not a Datadog screenshot")
    return style.save(fig, path)


def _blocks(ax, spans, monday: date, zone: ZoneInfo, alpha: float, hatch: str | None = None,
            edge: str | None = None) -> None:
    week_start = datetime.combine(monday, time(0), zone)
    week_end = week_start + timedelta(days=7)
    for start, end, colour in spans:
        start, end = max(start, week_start), min(end, week_end)
        cursor = start
        while cursor < end:
            day_end = datetime.combine(cursor.date() + timedelta(days=1), time(0), zone)
            stop = min(end, day_end)
            column = (cursor.date() - monday).days
            top = cursor.hour + cursor.minute / 60
            bottom = 24 if stop == day_end else stop.hour + stop.minute / 60
            ax.add_patch(Rectangle((column + 0.08, top), 0.84, bottom - top, facecolor=colour, alpha=alpha,
                                   hatch=hatch, edgecolor=edge or "white", linewidth=0.8))
            cursor = stop
