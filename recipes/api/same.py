"""When a live object says what its payload says, although the server wrote it differently.

The real API rewrites what it is sent (recorded traffic, see the Reference page "Datadog API"):
numbers come back as floats, a monitor's type is normalized, its message and query are trimmed,
null or default options are dropped, a downtime's empty display time zone becomes UTC, its end
states come back in any order and its recurrence start with seconds or on a later matching day.
Where a live value is such a rewrite of the payload's, the comparison takes the payload's own
form: it shows no change, and export writes the payload back as it was.
"""

from __future__ import annotations

import re
from datetime import datetime

from recipes.api.payloads import WEEKDAYS

MISSING = object()  # a key the server left out


def same_number(live, want) -> bool:
    numbers = (int, float)
    return isinstance(live, numbers) and isinstance(want, numbers) and not isinstance(live, bool) and live == want


def trimmed(live, want) -> bool:
    return isinstance(live, str) and isinstance(want, str) and live == want.strip()


def alert_type(live, want) -> bool:
    return {live, want} <= {"metric alert", "query alert"}


def dropped(default):
    def rule(live, want) -> bool:
        return live is MISSING and want == default

    return rule


def any_order(live, want) -> bool:
    return isinstance(live, list) and isinstance(want, list) and sorted(map(str, live)) == sorted(map(str, want))


def utc_when_empty(live, want) -> bool:
    return isinstance(live, (str, type(None))) and isinstance(want, (str, type(None))) and (live or "UTC") == (want or "UTC")


RULES = {
    "dashboard": {},
    "monitor": {
        "type": [alert_type],
        "message": [trimmed],
        "query": [trimmed],
        "warning": [dropped(None)],
        "on_missing_data": [dropped("default")],
    },
    "downtime": {
        "display_timezone": [utc_when_empty],
        "notify_end_states": [any_order],
        "notify_end_types": [any_order],
    },
}


def same(kind: str, key, live, want) -> bool:
    return same_number(live, want) or any(rule(live, want) for rule in RULES[kind].get(key, ()))


def project(live, want, kind: str, key=None):
    """live reduced to the shape of want (keys the payload does not set are the server's business),
    with want's own form wherever live is only the server's rewrite of it."""
    if same(kind, key, live, want):
        return want
    if isinstance(want, dict) and isinstance(live, dict):
        return {k: project(live.get(k, MISSING), v, kind, k) for k, v in want.items() if k in live or same(kind, k, MISSING, v)}
    if isinstance(want, list) and isinstance(live, list):
        return [project(item, want[i], kind, key) if i < len(want) else item for i, item in enumerate(live)]
    return live


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
    days = re.search(r"BYDAY=([A-Z,]+)", rrule or "")
    allowed = {WEEKDAYS.index(d) for d in days.group(1).split(",") if d in WEEKDAYS} if days else {wanted.weekday()}
    if seen.weekday() not in allowed:
        return live
    moved = datetime.combine(wanted.date(), seen.time())
    return want if moved == wanted else moved.isoformat(timespec="seconds" if seen.second else "minutes")
