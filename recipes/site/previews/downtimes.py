"""Downtime previews: the payloads' windows (expanded by recipes/api/recurrence.py), gaps and a week calendar."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from matplotlib.patches import Rectangle

from recipes.api import messages, recurrence
from recipes.api.recurrence import Interval, Window, muted_business_hours, quiet_hours, subtract
from recipes.lazy import lazy
from recipes.site.previews import monitor as monitor_preview, style
from recipes.site.previews.inputs import PreviewInputError, load_payload, sample_values

schema = lazy("recipes.settings")

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def expand(name: str, payload: dict, since: datetime, until: datetime, wall_clock: bool = False) -> list[Window]:
    """Windows of ``payload`` (a v2 downtime body) that overlap [since, until); a bad schedule is a preview input
    error naming the payload and the field."""
    try:
        return recurrence.expand(name, payload, since, until, wall_clock)
    except recurrence.ScheduleError as error:
        raise PreviewInputError(str(error)) from None


def zone_of(config) -> ZoneInfo:
    """The configured time zone (api.timezone, checked by the settings schema)."""
    return ZoneInfo(schema.of(config).api.timezone)


def expand_and_check(config, first: date, days: int, wall_clock: bool = False):
    """Windows of both downtime payloads over ``days`` days from ``first``, their gaps and their over-muting.

    The schedules are taken as created a week before ``first`` (steady state), so a Monday morning is covered
    by the previous weekend's window as it is once the downtimes exist.
    """
    zone = zone_of(config)
    since = datetime.combine(first, time(0), zone)
    until = since + timedelta(days=days)
    values = sample_values(config, START_DATE=(first - timedelta(days=7)).isoformat())
    windows = []
    for key in ("downtime-weeknights", "downtime-weekends"):
        windows += expand(key, load_payload(key, values), since, until, wall_clock)
    windows.sort(key=lambda w: w.start)
    hours = schema.of(config).previews.business_hours
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
    fig, ax = style.figure(style.WIDTH_IN, 5.6)
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
    ax.set_title(title, fontsize=style.TITLE_PT)
    handles = [Rectangle((0, 0), 1, 1, color=c, alpha=0.85) for c in colours.values()]
    labels = list(colours)
    handles.append(Rectangle((0, 0), 1, 1, facecolor="#f3f3f3", edgecolor="#dddddd"))
    labels.append(f"business hours ({opens:%H:%M}-{closes:%H:%M}), monitor live")
    if gaps:
        handles.append(Rectangle((0, 0), 1, 1, facecolor="none", edgecolor=style.ALERT, hatch="////"))
        labels.append("gap: quiet hours with no downtime")
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=style.TEXT_PT, frameon=False)
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


WEEKDAY_NAMES = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday",
                 "SA": "Saturday", "SU": "Sunday"}


def schedule_in_words(schedule: dict) -> str:
    """``Saturday 00:00 for 45h; Sunday 19:00 for 14h (Europe/Paris)`` from a v2 downtime's recurrences."""
    parts = []
    for rec in schedule.get("recurrences", []):
        days = next((field.split("=", 1)[1] for field in rec.get("rrule", "").split(";") if field.startswith("BYDAY=")), "")
        names = ", ".join(WEEKDAY_NAMES.get(day, day) for day in days.split(",") if day)
        parts.append(f"{names or 'every day'} {str(rec.get('start', ''))[-5:]} for {rec.get('duration', '?')}")
    return "; ".join(parts) + f" ({schedule.get('timezone', 'UTC')})"


def draw_email(key: str, payload: dict, path):
    """The e-mail a downtime's @-handle receives when it is scheduled, as a card: its message with the
    placeholders filled, its schedule in words and the monitor it mutes (a preview, not a Datadog email)."""
    attributes = payload["data"]["attributes"]
    message = attributes.get("message", "")
    recipients = ", ".join(dict.fromkeys(messages.HANDLE.findall(message))) or "(nobody: no @-handle)"
    marker = message.split("]", 1)[0].lstrip("[") if message.startswith("[") else key
    scope = attributes.get("monitor_identifier", {})
    svg = monitor_preview.card_svg(
        "DOWNTIME", style.NODATA, f"Downtime scheduled: {marker}", recipients, message,
        f"Mutes monitor {scope.get('monitor_id', scope.get('monitor_tags', '?'))}: "
        f"{schedule_in_words(attributes.get('schedule', {}))}",
        f"Preview rendered offline from payloads/{key}.json with sample values -- not a Datadog email.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg, encoding="utf-8")
    return path
