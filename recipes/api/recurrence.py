"""The downtimes' schedules as time: RRULE recurrences expanded into concrete windows, and the gaps they leave.

Each recurrence is Datadog's v2 schedule: ``start`` (local time, no offset) in the schedule's ``timezone``,
a ``duration`` and an RRULE. Durations are taken as elapsed time (an assumption: Datadog's docs do not say how a
duration that spans a daylight-saving change is counted); ``wall_clock=True`` counts them on the local clock.

verify-account compares a live downtime's windows with its payload's here; the site's previews draw them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

from recipes.errors import Refused

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # RFC 5545 BYDAY, Monday first
DURATION = re.compile(r"^(\d+)([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class ScheduleError(Refused):
    """A schedule that cannot be expanded; the message names the payload and the field."""


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


def weekdays(rrule: str | None) -> set[int] | None:
    """The weekday numbers (Monday is 0) an RRULE's BYDAY lists; None without a BYDAY."""
    days = re.search(r"BYDAY=([A-Z,]+)", rrule or "")
    return {WEEKDAYS.index(d) for d in days.group(1).split(",") if d in WEEKDAYS} if days else None


def parse_duration(text: str, where: str) -> timedelta:
    match = DURATION.match(str(text))
    if not match:
        raise ScheduleError(f"{where}: duration {text!r} is not <integer><m|h|d|w>")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{where}: unknown time zone {name!r}") from None


def _field(mapping: dict, field: str, where: str):
    if not isinstance(mapping, dict) or field not in mapping:
        raise ScheduleError(f"{where}: missing field {field!r}")
    return mapping[field]


def expand(name: str, payload: dict, since: datetime, until: datetime, wall_clock: bool = False) -> list[Window]:
    """Windows of ``payload`` (a v2 downtime body) that overlap [since, until)."""
    where = f"payloads/{name}"
    attributes = _field(_field(payload, "data", where), "attributes", f"{where}: data")
    schedule = _field(attributes, "schedule", f"{where}: data.attributes")
    local = zone(_field(schedule, "timezone", f"{where}: schedule"), f"{where}: schedule.timezone")
    windows = []
    for i, rec in enumerate(_field(schedule, "recurrences", f"{where}: schedule")):
        field = f"{where}: schedule.recurrences[{i}]"
        try:
            first = datetime.strptime(_field(rec, "start", field), "%Y-%m-%dT%H:%M")
        except ValueError:
            raise ScheduleError(f"{field}.start: {rec['start']!r} is not YYYY-MM-DDTHH:MM (no offset)") from None
        length = parse_duration(_field(rec, "duration", field), f"{field}.duration")
        rule = rrulestr(_field(rec, "rrule", field), dtstart=first)
        local_since = since.astimezone(local).replace(tzinfo=None) - length - timedelta(days=1)
        local_until = until.astimezone(local).replace(tzinfo=None)
        for begin in rule.between(local_since, local_until, inc=True):
            start = begin.replace(tzinfo=local)
            end = (begin + length).replace(tzinfo=local) if wall_clock else \
                (start.astimezone(timezone.utc) + length).astimezone(local)
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
