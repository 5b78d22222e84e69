"""Downtimes: each found again by the `[dd-runbook:<name>]` marker opening its message, and the monitor it mutes.

Downtimes are JSON:API resources, compared on data.attributes. Each recurrence's ${START_DATE} is filled here
with its own next matching day; a recurrence start the server moved to seconds or to another day its rule
allows is not a change.
"""

from __future__ import annotations

import copy
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datadog_api_client.v2.model.downtime_create_request import DowntimeCreateRequest
from datadog_api_client.v2.model.downtime_update_request import DowntimeUpdateRequest
from dateutil.rrule import rrulestr

from recipes.api import same
from recipes.api.client import call
from recipes.api.kinds.base import Kind, created
from recipes.api.models import to_json, to_model
from recipes.api.recurrence import weekdays
from recipes.api.template import PayloadError, fill

DOWNTIME_MARK = re.compile(r"^\[dd-runbook:[\w-]+\]")
PENDING_ID = "<new monitor id>"
START = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


class DowntimeKind(Kind):
    name = "downtime"
    model = DowntimeCreateRequest
    mark_field = "data.attributes.message"
    mutes_monitor = True
    rules = {  # an empty display time zone comes back as UTC, the end states in any order
        "display_timezone": [same.utc_when_empty],
        "notify_end_states": [same.any_order],
        "notify_end_types": [same.any_order],
    }

    def lint(self, body: dict, today: date | None = None) -> list[str]:
        schedule = body.get("data", {}).get("attributes", {}).get("schedule", {})
        problems, zone = [], ZoneInfo("UTC")
        if "timezone" in schedule:
            try:
                zone = _zone(schedule["timezone"])
            except PayloadError:
                problems.append(f"data.attributes.schedule.timezone: {schedule['timezone']!r} is not an IANA time zone")
        today = today or datetime.now(zone).date()
        if schedule.get("start"):
            problems += past_start("data.attributes.schedule.start", schedule["start"], today)
        for i, recurrence in enumerate(schedule.get("recurrences", [])):
            problems += recurrence_problems(f"data.attributes.schedule.recurrences[{i}]", recurrence, today)
        return problems

    def mark(self, body: dict) -> str:
        found = DOWNTIME_MARK.match(body["data"]["attributes"].get("message") or "")
        return found.group(0) if found else ""

    def prepare(self, template: dict, values: dict, file: str) -> dict:
        return fill_start_dates(template, values, file)

    def ours(self, live: dict) -> bool:
        return bool(DOWNTIME_MARK.match(live["attributes"].get("message") or ""))

    def find(self, apis, body: dict) -> list[dict]:
        mark = marker(body)
        with call("list downtimes", apis.where):
            everything = [to_json(d) for d in apis.downtimes.list_downtimes_with_pagination(page_limit=100)]
        live = [d for d in everything if d["attributes"].get("status") != "canceled"]
        return sorted([d for d in live if (d["attributes"].get("message") or "").startswith(mark)], key=self.age)

    def age(self, live: dict):
        return created(live["attributes"].get("created")), str(live.get("id"))

    def comparable(self, live: dict, body: dict) -> dict:
        attributes = copy.deepcopy(live["attributes"])
        wanted = body["data"]["attributes"]
        live_recs = (attributes.get("schedule") or {}).get("recurrences") or []
        for live_rec, want in zip(live_recs, (wanted.get("schedule") or {}).get("recurrences") or []):
            if "start" in want:
                live_rec["start"] = recurrence_start(live_rec.get("start"), want["start"], want.get("rrule"))
        return {"data": {"type": "downtime", "attributes": same.project(attributes, wanted, self.rules)}}

    def page(self, live: dict) -> str:
        """The Manage Downtimes page, opened on this downtime."""
        return f"/monitors/downtimes?id={live['id']}"

    def create(self, apis, body):
        return to_json(apis.downtimes.create_downtime(to_model(body, DowntimeCreateRequest)))["data"]

    def update(self, apis, live, body):
        data = {"id": live["id"], **body["data"]}
        return to_json(apis.downtimes.update_downtime(live["id"], to_model({"data": data}, DowntimeUpdateRequest)))["data"]

    def delete(self, apis, live):
        apis.downtimes.cancel_downtime(live["id"])

    def aimed_at(self, body: dict, monitor_id) -> dict:
        """The downtime for monitor_id; before the monitor exists, a visible stand-in id."""
        aimed = copy.deepcopy(body)
        aimed["data"]["attributes"]["monitor_identifier"]["monitor_id"] = PENDING_ID if monitor_id is None else monitor_id
        return aimed

    def muted(self, live: dict):
        return live["attributes"].get("monitor_identifier", {}).get("monitor_id")

    def aim(self, body: dict):
        return body["data"]["attributes"]["monitor_identifier"].get("monitor_id")


def marker(body: dict) -> str:
    found = DOWNTIME_MARK.match(body["data"]["attributes"].get("message", ""))
    if not found:
        raise PayloadError("downtime message must open with a [dd-runbook:<name>] marker")
    return found.group(0)


# --- the schedule: start dates, checks, the server's rewrites -------------------------------------------------
def next_start_date(recurrence: dict, timezone: str, today: date | None = None) -> str:
    """The first date from `today` (default: today in the downtime's time zone) whose weekday the
    recurrence's RRULE lists."""
    wanted = weekdays(recurrence.get("rrule", "")) or set(range(7))  # no usable BYDAY: any day (the lint reports a bad rule)
    day = today or datetime.now(_zone(timezone)).date()
    while day.weekday() not in wanted:
        day += timedelta(days=1)
    return day.isoformat()


def fill_start_dates(template: dict, values: dict, file: str) -> dict:
    """Each recurrence's ${START_DATE} filled with its own first matching day (a Saturday rule and a
    Sunday rule in one downtime start on different dates). START_DATE, when given, is the earliest day."""
    body = copy.deepcopy(template)
    recurrences = body.get("data", {}).get("attributes", {}).get("schedule", {}).get("recurrences", [])
    if not isinstance(recurrences, list):
        return body
    earliest = None
    if values.get("START_DATE"):
        try:
            earliest = date.fromisoformat(str(values["START_DATE"]))
        except ValueError:
            raise PayloadError(f"{file}: START_DATE {values['START_DATE']!r} is not a date (YYYY-MM-DD)") from None
    for i, recurrence in enumerate(recurrences):
        if isinstance(recurrence, dict) and "${START_DATE}" in str(recurrence.get("start", "")):
            if earliest is None and not values.get("TIMEZONE"):
                continue  # fill() reports the missing placeholder
            when = next_start_date(recurrence, values.get("TIMEZONE") or "UTC", earliest)
            recurrence["start"] = fill(recurrence["start"], {**values, "START_DATE": when}, file,
                                       f"data.attributes.schedule.recurrences[{i}].start")
    return body


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PayloadError(f"api.timezone: {name!r} is not an IANA time zone (e.g. Europe/Paris)") from None


def recurrence_problems(path: str, recurrence: dict, today: date) -> list[str]:
    start, rule = recurrence.get("start") or "", recurrence.get("rrule", "")
    problems = []
    if start and not START.match(start):
        problems.append(f"{path}.start: {start!r} must be a local time without offset, like 2026-01-05T19:00")
    elif start:
        problems += past_start(f"{path}.start", start, today)
    if not re.fullmatch(r"\d+[mhdw]", recurrence.get("duration", "")):
        problems.append(f"{path}.duration: {recurrence.get('duration')!r} must be a number and m/h/d/w, like 14h")
    if re.search(r"\b(DTSTART|DTEND|DURATION)\b", rule):
        return problems + [f"{path}.rrule: DTSTART, DTEND and DURATION are not accepted (use start and duration)"]
    try:
        rrulestr(rule, dtstart=datetime.fromisoformat(start) if START.match(start) else datetime(2026, 1, 5))
    except (ValueError, TypeError) as err:
        problems.append(f"{path}.rrule: {rule!r} is not a valid RRULE ({err})")
    return problems


def past_start(path: str, start: str, today: date) -> list[str]:
    """A start before today is a typo or a stale copy (the payloads take ${START_DATE}, the next matching day)."""
    try:
        day = datetime.fromisoformat(start).date()
    except ValueError:
        return []
    if day >= today:
        return []
    return [f"{path}: {start} is in the past (today is {today.isoformat()}): use ${{START_DATE}}T<time>, the next day the rule allows"]


def recurrence_start(live: str | None, want: str | None, rrule: str) -> str | None:
    """The live start in the payload's terms: a start written with seconds, or on an earlier or later
    day the rule also allows, is the payload's date at the live time of day (only a changed time or a
    day the rule does not allow remains a change); a payload without a start takes the server's "now"."""
    if want is None:
        return None
    try:
        seen, wanted = datetime.fromisoformat(live), datetime.fromisoformat(want)
    except (TypeError, ValueError):
        return live
    allowed = weekdays(rrule)
    if seen.weekday() not in (allowed if allowed is not None else {wanted.weekday()}):
        return live
    moved = datetime.combine(wanted.date(), seen.time())
    return want if moved == wanted else moved.isoformat(timespec="seconds" if seen.second else "minutes")


DOWNTIME = DowntimeKind()
