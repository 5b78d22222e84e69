"""What the account received: hosts, metric series, logs and events, answered in the shapes of Datadog's
read endpoints (the hosts list, the metrics query, the logs search, the event stream).

Tests seed it (tests/fakedd/account.py) with a healthy exercise account or with one thing wrong; the fake
then answers `verify-account`'s reads from it. The runbook's own tasks never write here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from tests.fakedd.common import ApiError, first
from tests.fakedd.rules import copies

QUERY = re.compile(r"^(avg|sum|max|min):([\w.]+)\{([^}]*)\}(?:\s*by\s*\{([^}]*)\})?"
                   r"(?:\.rollup\((sum|avg|max|min|count),\s*(\d+)\))?$")
COMBINE = {"avg": lambda v: sum(v) / len(v), "sum": sum, "max": max, "min": min, "count": len}


@dataclass
class Series:
    metric: str
    tags: frozenset[str]
    points: list[tuple[int, float]]  # (epoch seconds, value), as submitted


@dataclass
class Telemetry:
    hosts: dict[str, dict] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    logs: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


@copies("hosts", "GET /api/v1/hosts?filter=&from= answers {host_list, total_matching, total_returned}; each host has "
                 "name, host_name, last_reported_time (epoch s), apps, tags_by_source {source: [tags]}, up, sources; "
                 "`from` leaves out hosts that have not reported since")
def list_hosts(fake, query, body):
    wanted, since = first(query, "filter", ""), int(first(query, "from", "0"))
    hosts = [h for h in fake.telemetry.hosts.values()
             if (not wanted or wanted in h["name"]) and h["last_reported_time"] >= since]
    start, count = int(first(query, "start", "0")), int(first(query, "count", "100"))
    page = hosts[start:start + count]
    return 200, {"host_list": page, "total_matching": len(hosts), "total_returned": len(page)}


@copies("metrics", "GET /api/v1/query?from=&to=&query= answers {status: ok, res_type: time_series, series: [{metric, "
                   "scope, expression, pointlist: [[ms, value]], interval, length, start, end, tag_set}], from_date, "
                   "to_date (ms)}; a query that matches nothing answers an empty series list; `by {tag}` gives one "
                   "series per tag value; `.rollup(method, seconds)` buckets each series on multiples of seconds")
def query_metrics(fake, query, body):
    text, start, end = first(query, "query", ""), int(first(query, "from", "0")), int(first(query, "to", "0"))
    found = QUERY.match(text.strip())
    if not found:
        raise ApiError(400, f"Error parsing query: {text}")
    space, metric, scope, by, rollup, seconds = found.groups()
    wanted = {t.strip() for t in scope.split(",") if t.strip() and t.strip() != "*"}
    keys = [k.strip() for k in by.split(",")] if by else []
    groups: dict[tuple[str, ...], list[Series]] = {}
    for series in fake.telemetry.series:
        if series.metric == metric and wanted <= series.tags:
            key = tuple(sorted(t for t in series.tags if t.split(":")[0] in keys))
            groups.setdefault(key, []).append(series)
    window = (rollup, int(seconds)) if rollup else None
    answer = [one_series(space, metric, scope, key, members, start, end, window) for key, members in sorted(groups.items())]
    return 200, {"status": "ok", "res_type": "time_series", "query": text, "from_date": start * 1000,
                 "to_date": end * 1000, "series": [s for s in answer if s["pointlist"]], "group_by": keys}


def one_series(space, metric, scope, key, members, start, end, window) -> dict:
    by_time: dict[int, list[float]] = {}
    for series in members:
        for ts, value in rolled_up(series.points, window):
            if start <= ts <= end:
                by_time.setdefault(ts, []).append(value)
    points = [[float(ts * 1000), float(COMBINE[space](values))] for ts, values in sorted(by_time.items())]
    scope_text = ",".join(t for t in [scope, *key] if t and t != "*") or "*"
    interval = int((points[1][0] - points[0][0]) / 1000) if len(points) > 1 else 0
    return {"metric": metric, "display_name": metric, "aggr": space, "scope": scope_text,
            "expression": f"{space}:{metric}{{{scope_text}}}", "pointlist": points, "interval": interval,
            "length": len(points), "start": int(points[0][0]) if points else 0,
            "end": int(points[-1][0]) if points else 0, "tag_set": list(key), "query_index": 0}


def rolled_up(points, window):
    if not window:
        return points
    method, seconds = window
    buckets: dict[int, list[float]] = {}
    for ts, value in points:
        buckets.setdefault(ts - ts % seconds, []).append(value)
    return [(ts, COMBINE[method](values)) for ts, values in sorted(buckets.items())]


@copies("logs", "POST /api/v2/logs/events/search answers {data: [{id, type: log, attributes: {host, service, status, "
                "message, tags, timestamp (ISO 8601)}}], meta: {page: {after}}, links}; filter.query matches host: "
                "and service: attributes and source: tags, filter.from/to (ISO or now-15m) bound the time")
def search_logs(fake, query, body):
    body = body or {}
    wanted = body.get("filter", {}).get("query", "")
    since = log_time(body.get("filter", {}).get("from", "now-15m"))
    terms = [term for term in wanted.split() if ":" in term]
    matches = [log for log in fake.telemetry.logs
               if all(log_has(log, term) for term in terms) and log_time(log["attributes"]["timestamp"]) >= since]
    limit = int(body.get("page", {}).get("limit", 10))
    return 200, {"data": matches[:limit], "meta": {"page": {"after": "next"} if len(matches) > limit else {},
                                                  "status": "done", "elapsed": 12}, "links": {}}


def log_time(text: str) -> float:
    relative = re.fullmatch(r"now(?:-(\d+)([smhd]))?", text)
    if relative:
        amount, unit = relative.groups()
        return time.time() - int(amount or 0) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit or "s"]
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def log_has(log: dict, term: str) -> bool:
    key, value = term.split(":", 1)
    attributes = log["attributes"]
    if key in ("host", "service", "status"):
        return attributes.get(key) == value
    return term in attributes.get("tags", [])


@copies("events", "GET /api/v1/events?start=&end=&tags= answers {events: [{id, title, text, date_happened, "
                  "alert_type, tags, url, source_type_name}], status: ok}, newest first; monitor notifications are "
                  "titled [Triggered on {scope}] / [Warn on {scope}] / [Recovered on {scope}] + the monitor's name")
def list_events(fake, query, body):
    start, end = int(first(query, "start", "0")), int(first(query, "end", "0"))
    tags = [t for t in first(query, "tags", "").split(",") if t]
    events = [e for e in fake.telemetry.events if start <= e["date_happened"] <= end and set(tags) <= set(e["tags"])]
    return 200, {"events": sorted(events, key=lambda e: -e["date_happened"]), "status": "ok"}


ROUTES = [
    (r"/api/v1/hosts", "GET", list_hosts),
    (r"/api/v1/query", "GET", query_metrics),
    (r"/api/v2/logs/events/search", "POST", search_logs),
    (r"/api/v1/events", "GET", list_events),
]
