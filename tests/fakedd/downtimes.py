"""v2 downtimes as the real API answers them: JSON:API resources with the server's fields and current window."""

from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from tests.fakedd.common import ApiError, first, stamp, utc_now
from tests.fakedd.rules import copies

START = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")
DURATION = re.compile(r"^(\d+)([mhdw])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
END_STATES = ["alert", "no data", "warn"]
USER = {"type": "users", "id": "00000000-0000-0000-0000-00000000fake"}


def check(fake, attrs: dict) -> None:
    ident = attrs.get("monitor_identifier") or {}
    if "monitor_id" in ident and int(ident["monitor_id"]) not in fake.state.monitors:
        raise ApiError(400, f"Monitor {ident['monitor_id']} not found")
    for rec in (attrs.get("schedule") or {}).get("recurrences", []):
        if rec.get("start") is not None and not START.match(rec["start"]):
            raise ApiError(400, "start must be a local date-time without offset (YYYY-MM-DDThh:mm)")
        if re.search(r"DTSTART|DTEND|DURATION", rec.get("rrule", "")) or not DURATION.match(rec.get("duration", "")):
            raise ApiError(400, "invalid recurrence: rrule may not hold DTSTART/DTEND/DURATION; duration like 14h")
        try:
            rrulestr(rec["rrule"], dtstart=datetime(2026, 1, 5))
        except (ValueError, KeyError) as err:
            raise ApiError(400, f"invalid rrule: {err}") from None


@copies("downtime v2", "adds created, modified, canceled, status, notify_end_types: [\"expired\"], mute_first_recovery_notification: false, relationships")
def server_fields(attrs: dict, created: str) -> None:
    attrs.setdefault("notify_end_states", list(END_STATES))
    attrs.setdefault("notify_end_types", ["expired"])
    attrs.setdefault("mute_first_recovery_notification", False)
    attrs.setdefault("message", None)
    attrs.update(created=created, modified=stamp(utc_now()), canceled=None, status=attrs.get("status", "scheduled"))


@copies("downtime v2", "display_timezone: \"\" becomes \"UTC\"")
def display_timezone(attrs: dict) -> None:
    attrs["display_timezone"] = attrs.get("display_timezone") or "UTC"


@copies("downtime v2", "recurrence start comes back as YYYY-MM-DDTHH:MM:SS; a null start becomes \"now\"; rrule, duration and recurrence order are echoed")
def recurrence_starts(schedule: dict) -> None:
    zone = ZoneInfo(schedule.get("timezone") or "UTC")
    for rec in schedule.get("recurrences", []):
        start = datetime.fromisoformat(rec["start"]) if rec.get("start") else utc_now().astimezone(zone).replace(tzinfo=None)
        rec["start"] = start.isoformat(timespec="seconds")


@copies("downtime v2", "schedule.current_downtime is added (UTC)")
def current_downtime(schedule: dict, now: datetime) -> dict | None:
    zone = ZoneInfo(schedule.get("timezone") or "UTC")
    windows = [_window(rec, zone, now) for rec in schedule.get("recurrences", [])]
    windows = [w for w in windows if w]
    if not windows:
        return None
    start, end = min(windows)
    return {"start": stamp(start), "end": stamp(end)}


def _window(rec: dict, zone: ZoneInfo, now: datetime):
    number, unit = DURATION.match(rec["duration"]).groups()
    length = timedelta(**{UNITS[unit]: int(number)})
    rule = rrulestr(rec["rrule"], dtstart=datetime.fromisoformat(rec["start"]))
    local_now = now.astimezone(zone).replace(tzinfo=None)
    for occurrence in (rule.before(local_now, inc=True), rule.after(local_now)):
        if occurrence is not None:
            start = occurrence.replace(tzinfo=zone).astimezone(timezone.utc)
            if start + length > now:
                return start, start + length
    return None


@copies("downtime v2", "notify_end_states order differs between GETs")
def shuffled_end_states(states: list, turn: int) -> list:
    shift = turn % len(states) if states else 0
    return states[shift:] + states[:shift]


@copies("downtime v2", "PATCH merges attributes")
def patched(old: dict, sent: dict) -> dict:
    return {**copy.deepcopy(old), **copy.deepcopy(sent)}


@copies("downtime v2", "DELETE answers 204, also the second time")
def cancel(fake, query, body, dt_id):
    old = _stored(fake, dt_id)
    if old["attributes"]["status"] != "canceled":
        old["attributes"].update(status="canceled", canceled=stamp(utc_now()))
    return 204, None


@copies("downtime v2", "the list pages by page[limit]/page[offset] with meta.page.total_filtered_count")
def listed(fake, query, body):
    items = list(fake.state.downtimes.values())
    if first(query, "current_only", "false") == "true":
        items = [d for d in items if d["attributes"]["status"] in ("active", "scheduled")]
    offset, limit = int(first(query, "page[offset]", "0")), int(first(query, "page[limit]", "30"))
    page = [answer(fake, d) for d in items[offset : offset + limit]]
    return 200, {"data": page, "included": [included_user()] if page else [], "meta": {"page": {"total_filtered_count": len(items)}}}


@copies("downtime v2", "answers hold the creating user in `included`")
def included_user() -> dict:
    return {**USER, "attributes": {"name": None, "handle": "fake@example.com", "email": "fake@example.com", "status": "Active"}}


def answer(fake, resource: dict) -> dict:
    """The stored resource as a GET shows it: the current window, the end states in this read's order."""
    shown = copy.deepcopy(resource)
    attrs = shown["attributes"]
    attrs["notify_end_states"] = shuffled_end_states(attrs["notify_end_states"], next(fake.turns))
    window = current_downtime(attrs.get("schedule") or {}, utc_now())
    if window:
        attrs["schedule"]["current_downtime"] = window
        if attrs["status"] != "canceled":
            attrs["status"] = "active" if window["start"] <= stamp(utc_now()) else "scheduled"
    return shown


def store(fake, dt_id: str, attrs: dict, created: str) -> dict:
    attrs = copy.deepcopy(attrs)
    attrs.pop("current_downtime", None)
    (attrs.get("schedule") or {}).pop("current_downtime", None)
    display_timezone(attrs)
    recurrence_starts(attrs.setdefault("schedule", {}))
    server_fields(attrs, created)
    monitor = attrs["monitor_identifier"].get("monitor_id")
    resource = {"id": dt_id, "type": "downtime", "attributes": attrs, "relationships": {
        "created_by": {"data": USER},
        "monitor": {"data": {"id": str(monitor), "type": "monitors"} if monitor is not None else None},
    }}
    fake.state.downtimes[dt_id] = resource
    return resource


def _data(body, kind: str) -> dict:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or data.get("type") != "downtime":
        raise ApiError(400, f"Invalid downtime {kind} request: expected data.type 'downtime'")
    return data


def _stored(fake, dt_id: str) -> dict:
    if dt_id not in fake.state.downtimes:
        raise ApiError(404, "Downtime not found")
    return fake.state.downtimes[dt_id]


def _one(fake, resource: dict) -> dict:
    return {"data": answer(fake, resource), "included": [included_user()]}


def create(fake, query, body):
    attrs = _data(body, "create").get("attributes", {})
    for required in ("monitor_identifier", "scope"):
        if required not in attrs:
            raise ApiError(400, f"Invalid downtime: missing '{required}'")
    check(fake, attrs)
    return 200, _one(fake, store(fake, str(uuid.uuid4()), attrs, stamp(utc_now())))


def get(fake, query, body, dt_id):
    return 200, _one(fake, _stored(fake, dt_id))


def update(fake, query, body, dt_id):
    old = _stored(fake, dt_id)
    if old["attributes"]["status"] == "canceled":
        raise ApiError(400, "Cannot update a canceled downtime")
    data = _data(body, "update")
    if data.get("id") != dt_id:
        raise ApiError(400, "data.id does not match the path")
    attrs = patched(old["attributes"], data.get("attributes", {}))
    check(fake, attrs)
    return 200, _one(fake, store(fake, dt_id, attrs, old["attributes"]["created"]))


ROUTES = [
    (r"/api/v2/downtime", "POST", create),
    (r"/api/v2/downtime", "GET", listed),
    (r"/api/v2/downtime/([\w-]+)", "GET", get),
    (r"/api/v2/downtime/([\w-]+)", "PATCH", update),
    (r"/api/v2/downtime/([\w-]+)", "DELETE", cancel),
]
