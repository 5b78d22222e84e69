"""When a live object says what its payload says, although the server wrote it differently.

The real API rewrites what it is sent (recorded traffic, see the Reference page "Datadog API"):
numbers come back as floats, a monitor's type is normalized, its message and query are trimmed,
null or default options are dropped, a downtime's empty display time zone becomes UTC, its end
states come back in any order and its recurrence start with seconds or on a later matching day.
Where a live value is such a rewrite of the payload's, the comparison takes the payload's own
form: it shows no change, and export writes the payload back as it was. Each kind names the rules that
apply to its keys (recipes/api/kinds/).
"""

from __future__ import annotations

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


def same(rules: dict, key, live, want) -> bool:
    """Whether live is want, or a rewrite the server makes of it (`rules`: a kind's, by key)."""
    return same_number(live, want) or any(rule(live, want) for rule in rules.get(key, ()))


def project(live, want, rules: dict, key=None):
    """live reduced to the shape of want (keys the payload does not set are the server's business),
    with want's own form wherever live is only the server's rewrite of it."""
    if same(rules, key, live, want):
        return want
    if isinstance(want, dict) and isinstance(live, dict):
        return {k: project(live.get(k, MISSING), v, rules, k) for k, v in want.items() if k in live or same(rules, k, MISSING, v)}
    if isinstance(want, list) and isinstance(live, list):
        return [project(item, want[i], rules, key) if i < len(want) else item for i, item in enumerate(live)]
    return live
