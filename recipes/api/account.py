"""verify-account: the exercise's scorecard, read back from the Datadog account.

Each row is one requirement of the exercise, answered from what the account received (hosts, metrics,
logs, events) and from the live objects compared with the payloads (the plan). A row is `pass`, `fail`
(something is wrong and will not fix itself) or `not yet` (right so far, but the data that proves it has
not arrived). A failing row names the likely cause and the troubleshooting pitfall that explains it.

Every request here is a read, but for `--publish`: the scorecard written into the Notebook's last markdown cell
(`publish`), only when a requirement's status differs from what the cell holds. Queries are taken from the
payloads (the timeboard's own widgets) and the configuration, so the scorecard asks what the dashboards show.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from datadog_api_client.v2.model.logs_list_request import LogsListRequest
from datadog_api_client.v2.model.logs_list_request_page import LogsListRequestPage
from datadog_api_client.v2.model.logs_query_filter import LogsQueryFilter

from app.traffic import DEFAULT_ROUTES
from recipes.api import requirements, sync
from recipes.api.client import Apis, call
from recipes.api.kinds import DOWNTIME, MONITOR, NOTEBOOK
from recipes.api.models import to_json
from recipes.api.recurrence import expand
from recipes.api.template import PayloadError
from recipes.errors import Failed

PASS, FAIL, NOT_YET = "pass", "fail", "not yet"
STALE_AFTER = 600  # seconds without a report before a host counts as gone
LOG_WINDOW = 86400  # MySQL writes its logs rarely: a day of them
EVENT_WINDOW = 86400
ROLLUP_WINDOW = 3 * 3600  # the hourly rollup over three hours: two whole buckets at least
MYSQL_METRICS = ("mysql.net.connections", "mysql.performance.cpu_time")

clock = time.time  # the tests set one moment for the seeded account and the scorecard alike


@dataclass
class Row:
    """One line of the scorecard; its fields, in this order, are the JSON report's row keys."""

    requirement: str
    status: str
    evidence: str
    todo: str = ""
    pitfall: str = ""  # anchor in the site's Troubleshooting page


@dataclass
class Expected:
    """What the configuration and the payloads say the account should hold."""

    host: str
    tags: list[str]
    interval: int
    service: str
    env: str
    minutes: int
    zone: str
    inputs: sync.Inputs

    @classmethod
    def from_settings(cls, settings, inputs: sync.Inputs, minutes: int) -> "Expected":
        """From the checked settings (``settings.of(c)``)."""
        return cls(host=settings.api.host, tags=list(settings.agent.tags), interval=settings.check.min_collection_interval,
                   service=settings.apm.service, env=settings.apm.env, minutes=minutes, zone=settings.api.timezone,
                   inputs=inputs)


class Reader:
    """The account's read endpoints over windows that end at one moment, `now`."""

    def __init__(self, apis: Apis, now: float):
        self.apis, self.now = apis, int(now)

    def hosts(self, name: str = "", since: int = STALE_AFTER) -> list[dict]:
        with call("list hosts", self.apis.where):
            found = self.apis.hosts.list_hosts(filter=name, _from=self.now - since, count=100)
        return [to_json(h) for h in found.host_list or []]

    def series(self, query: str, seconds: int) -> list[dict]:
        with call(f"query {query}", self.apis.where):
            answer = self.apis.metrics.query_metrics(_from=self.now - seconds, to=self.now, query=query)
        return [to_json(s) for s in answer.series or []]

    def logs(self, query: str, seconds: int) -> list[dict]:
        body = LogsListRequest(filter=LogsQueryFilter(query=query, _from=iso(self.now - seconds), to=iso(self.now)),
                               page=LogsListRequestPage(limit=5))
        with call("search logs", self.apis.where):
            answer = self.apis.logs.list_logs(body=body)
        return [to_json(entry) for entry in answer.data or []]

    def events(self, seconds: int) -> list[dict]:
        with call("list events", self.apis.where):
            answer = self.apis.events.list_events(start=self.now - seconds, end=self.now)
        return [to_json(e) for e in answer.events or []]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago" if seconds < 7200 else f"{seconds // 3600} h ago"


# --- the scorecard ---------------------------------------------------------------------------------------------
def scorecard(apis: Apis, expected: Expected, now: float) -> list[Row]:
    """Every row, from one pass over the account."""
    read = Reader(apis, now)
    host = next((h for h in read.hosts(expected.host, since=86400) if h.get("name") == expected.host), None)
    changes = sync.plan(apis, expected.inputs.objects())  # the notebook only shows the others: not a requirement
    queries = timeboard_queries(expected)
    return [
        host_row(read, expected, host),
        tags_row(expected, host),
        metric_row(read, expected, queries["metric"]),
        rollup_row(read, queries["rollup"]),
        mysql_metrics_row(read, expected, host),
        mysql_logs_row(read, expected),
        objects_row(changes),
        downtimes_row(changes, expected, now),
        monitor_row(read, changes, expected),
        apm_row(read, expected),
    ]


def timeboard_queries(expected: Expected) -> dict[str, str]:
    """The timeboard's my_metric graph and its hourly rollup, as the payload queries them."""
    body = expected.inputs.payloads.body("timeboard")
    found = [r.get("q", "") for w in body.get("widgets", []) for r in w.get("definition", {}).get("requests", [])]
    mine = [q for q in found if q.startswith("avg:my_metric")]
    rollup = next((q for q in mine if ".rollup(" in q), None)
    plain = next((q for q in mine if ".rollup(" not in q), None)
    if not (rollup and plain):
        raise PayloadError(f"{expected.inputs.payloads.source('timeboard')}: widgets[].definition.requests[].q: "
                           "needs an avg:my_metric graph and its .rollup(sum, 3600)")
    return {"metric": plain, "rollup": rollup}


def host_row(read: Reader, expected: Expected, host: dict | None) -> Row:
    name = requirements.name("host")
    if host is None:
        others = sorted(h["name"] for h in read.hosts(since=3600))
        if others:
            return Row(name, FAIL, f"no host {expected.host}; reporting in the last hour: {', '.join(others)}",
                       f"the Agent reports as {others[0]!r}: set api.host to that name (invoke.yaml), or give the VM "
                       f"the hostname {expected.host} and restart the Agent", "hostname-mismatch")
        return Row(name, FAIL, f"no host has reported in the last hour (none is named {expected.host})",
                   "install and start the Agent: ./run setup (then ./run verify)", "hostname-mismatch")
    silent = read.now - int(host.get("last_reported_time") or 0)
    apps = host.get("apps") or []
    if silent > STALE_AFTER:
        return Row(name, FAIL, f"{expected.host} last reported {ago(silent)}",
                   "the Agent is not reporting: ./run verify shows whether it runs")
    if "agent" not in apps:
        return Row(name, FAIL, f"{expected.host} reports, but not through the Agent (apps: {', '.join(apps)})",
                   "install the Agent: ./run install-agent")
    return Row(name, PASS, f"{expected.host} reported {ago(silent)}; apps: {', '.join(apps)}")


def tags_row(expected: Expected, host: dict | None) -> Row:
    name = requirements.name("tags")
    if host is None:
        return Row(name, FAIL, "the host is not reporting (see the row above)", "fix the host first")
    seen = {tag for tags in (host.get("tags_by_source") or {}).values() for tag in tags}
    missing = [tag for tag in expected.tags if tag not in seen]
    if missing:
        return Row(name, FAIL, f"missing {', '.join(missing)} (the host has: {', '.join(sorted(seen)) or 'none'})",
                   "restart the Agent so it reads datadog.yaml (./run tag-host does it when the tags change), "
                   "then wait a minute or two", "tags-invisible-until-restart")
    return Row(name, PASS, ", ".join(expected.tags))


def points(series: list[dict]) -> list[tuple[float, float]]:
    return sorted((p[0] / 1000, p[1]) for s in series for p in s.get("pointlist") or [] if p[1] is not None)


def metric_row(read: Reader, expected: Expected, query: str) -> Row:
    name = requirements.name("metric")
    seen = points(read.series(query, expected.minutes * 60))
    if not seen:
        return Row(name, FAIL, f"no point of {query} in the last {expected.minutes} min",
                   "install the check: ./run custom-check (./run verify shows whether the Agent runs it)")
    low, high = min(v for _, v in seen), max(v for _, v in seen)
    if low < 0 or high > 1000:
        return Row(name, FAIL, f"values from {low:g} to {high:g}, outside 0..1000",
                   "the check must send random.randint(0, 1000): ./run custom-check ships it")
    if len(seen) < 3:
        return Row(name, NOT_YET, f"{len(seen)} point(s) so far",
                   f"wait: one value every {expected.interval} s")
    every = statistics.median(b[0] - a[0] for a, b in zip(seen, seen[1:]))
    facts = f"{len(seen)} points in {expected.minutes} min, one every {every:.0f} s, values {low:g}..{high:g}"
    if not 0.75 * expected.interval <= every <= 1.5 * expected.interval:
        return Row(name, FAIL, f"{facts}; expected one every {expected.interval} s",
                   f"min_collection_interval: {expected.interval} belongs under instances: in "
                   "conf.d/custom_my_metric.yaml (./run custom-check writes it there)", "where-the-interval-goes")
    return Row(name, PASS, facts)


def rollup_row(read: Reader, query: str) -> Row:
    name = requirements.name("rollup")
    seen = points(read.series(query, ROLLUP_WINDOW))
    if len(seen) < 2:
        return Row(name, NOT_YET, f"{len(seen)} hourly bucket(s) of {query} in the last {ROLLUP_WINDOW // 3600} h",
                   "a line needs two hourly buckets: view two hours or more, once my_metric has arrived for over "
                   "an hour", "hourly-rollup-looks-empty")
    return Row(name, PASS, f"{len(seen)} hourly sums, the last {seen[-1][1]:g}")


def mysql_metrics_row(read: Reader, expected: Expected, host: dict | None) -> Row:
    name = requirements.name("mysql")
    seen = {m: points(read.series(f"avg:{m}{{host:{expected.host}}}", expected.minutes * 60)) for m in MYSQL_METRICS}
    missing = [m for m, found in seen.items() if not found]
    if missing:
        app = "" if host is None or "mysql" in (host.get("apps") or []) else "; the host lists no mysql app"
        return Row(name, FAIL, f"no {', '.join(missing)} from {expected.host} in the last {expected.minutes} min{app}",
                   "the integration does not run: a placeholder left in conf.yaml is the usual cause (invoke "
                   "setup-mysql renders it from data); ./run verify runs the Agent's mysql check",
                   "placeholder-left-in-a-config")
    return Row(name, PASS, ", ".join(f"{m} ({len(found)} points)" for m, found in seen.items()))


def mysql_logs_row(read: Reader, expected: Expected) -> Row:
    name = requirements.name("logs")
    query = f"host:{expected.host} source:mysql"
    found = read.logs(query, LOG_WINDOW)
    if not found:
        return Row(name, FAIL, f"no log matches {query} in the last {LOG_WINDOW // 3600} h",
                   "the Agent must read /var/log/mysql: the files readable by dd-agent (./run setup-mysql grants "
                   "it with an ACL) and logs_enabled: true in datadog.yaml", "mysql-logs-unreadable")
    last = found[0]["attributes"]
    return Row(name, PASS, f"{query}: latest {str(last.get('message', ''))[:60]!r}")


def objects_row(changes: list[sync.Change]) -> Row:
    name = requirements.name("objects")
    drift = [f"{ch.spec.key}: {ch.action}" for ch in changes if ch.action != "unchanged"]
    if drift:
        return Row(name, FAIL, "; ".join(drift), "./run apply (./run plan shows each difference first)")
    return Row(name, PASS, f"{len(changes)} objects as in payloads/: {', '.join(ch.spec.key for ch in changes)}")


def downtimes_row(changes: list[sync.Change], expected: Expected, now: float) -> Row:
    """The next week's windows of each live downtime, compared with the payload's, in the configured zone."""
    name = requirements.name("downtimes")
    zone = ZoneInfo(expected.zone)
    since = datetime.combine(datetime.fromtimestamp(now, zone).date() + timedelta(days=1), datetime.min.time(), zone)
    until, wrong, shown = since + timedelta(days=7), [], []
    for change in (ch for ch in changes if ch.spec.kind is DOWNTIME and ch.action != "delete"):
        key = change.spec.key.removeprefix("downtime-")
        if change.live is None:
            wrong.append(f"{key}: missing")
            continue
        live_zone = change.live["attributes"].get("schedule", {}).get("timezone")
        want = sorted((w.start, w.end) for w in expand(change.spec.key, change.body, since, until))
        have = sorted((w.start, w.end) for w in expand(change.spec.key, live_payload(change.live, zone), since, until))
        if have != want:
            wrong.append(f"{key}: scheduled in {live_zone}, windows {span(have[:1], zone)} instead of {span(want[:1], zone)}")
        shown.append(f"{key} {span(have[:1], zone)}")
    if wrong:
        return Row(name, FAIL, "; ".join(wrong), "./run downtimes puts the schedules back")
    return Row(name, PASS, f"next: {'; '.join(shown)} ({expected.zone})")


def live_payload(live: dict, zone: ZoneInfo) -> dict:
    """A live downtime in the payload's shape: recurrence starts as local YYYY-MM-DDTHH:MM in its zone."""
    schedule = json.loads(json.dumps(live["attributes"].get("schedule") or {}))
    own = ZoneInfo(schedule.get("timezone") or "UTC")
    for rec in schedule.get("recurrences", []):
        start = datetime.fromisoformat(rec["start"])
        rec["start"] = (start.astimezone(own) if start.tzinfo else start).strftime("%Y-%m-%dT%H:%M")
    return {"data": {"attributes": {"schedule": schedule}}}


def span(windows, zone: ZoneInfo) -> str:
    return ", ".join(f"{a.astimezone(zone):%a %d %b %H:%M}-{b.astimezone(zone):%a %H:%M}" for a, b in windows) or "none"


def monitor_row(read: Reader, changes: list[sync.Change], expected: Expected) -> Row:
    name = requirements.name("monitor")
    change = next((ch for ch in changes if ch.spec.kind is MONITOR), None)
    if change is None or change.live is None:
        return Row(name, FAIL, "no monitor carries the runbook's name and tag", "./run monitor")
    monitor = change.live
    notes = [e for e in read.events(EVENT_WINDOW) if str(e.get("title", "")).endswith(f"] {monitor['name']}")]
    alerts = [e for e in notes if e.get("alert_type") == "error"]
    facts = f"monitor {monitor['id']} is {monitor.get('overall_state', '?')}; {len(notes)} notification(s) in 24 h"
    if alerts:
        return Row(name, PASS, f"{facts}, last alert {ago(read.now - alerts[0]['date_happened'])}")
    if str(monitor.get("query", "")).startswith("avg("):
        return Row(name, NOT_YET, f"{facts}, no alert",
                   "an average of values spread over 0..1000 rarely crosses 800: ./run monitor --at-least-once "
                   "alerts when any value does", "average-monitor-never-fires")
    return Row(name, NOT_YET, f"{facts}, no alert", "wait: an alert comes with the next value over 800")


def apm_row(read: Reader, expected: Expected) -> Row:
    name = requirements.name("apm")
    query = f"sum:trace.flask.request.hits{{service:{expected.service},env:{expected.env}}} by {{resource_name}}"
    found = read.series(query, expected.minutes * 60)
    seen = {tag.split(":", 1)[1] for s in found for tag in s.get("tag_set", []) if tag.startswith("resource_name:")}
    wanted = [f"get_{route}" for route in DEFAULT_ROUTES]
    missing = [r for r in wanted if r not in seen]
    where = f"service {expected.service} in env {expected.env}"
    if not seen:
        return Row(name, FAIL, f"no trace.flask.request.hits for {where} in the last {expected.minutes} min",
                   "run the app under ddtrace-run (./run apm-app) and send it traffic (./run traffic --url ...)")
    if missing:
        return Row(name, NOT_YET, f"{where}: seen {', '.join(sorted(seen))}; not yet {', '.join(missing)}",
                   "send traffic to every route: ./run traffic --url ...")
    return Row(name, PASS, f"{where}: {', '.join(wanted)}")


# --- the report ---------------------------------------------------------------------------------------------------
def passed(rows: list[Row]) -> bool:
    return all(row.status == PASS for row in rows)


def report(rows: list[Row], expected: Expected, site: str, now: float) -> dict:
    """The JSON report: checked_at, host, passed, rows (requirement, status, evidence, todo, pitfall), site."""
    return {"checked_at": iso(now), "host": expected.host, "passed": passed(rows),
            "rows": [asdict(row) for row in rows], "site": site}


# --- the scorecard in the Notebook (verify-account --publish) -------------------------------------------------------
def cell_text(value: str) -> str:
    """A value as one cell of a Markdown table: one line, its pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def scorecard_markdown(rows: list[Row], heading: str, now: float, page: str) -> str:
    """The scorecard cell: the payload's heading, when and what was checked, one table row a requirement."""
    counts = {s: sum(r.status == s for r in rows) for s in (PASS, FAIL, NOT_YET)}
    lines = [heading, "",
             f"Checked by `./run verify-account --publish` at {iso(now)}: "
             + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ".", "",
             "| requirement | status | evidence |", "|---|---|---|"]
    lines += [f"| {cell_text(r.requirement)} | {r.status} | {cell_text(r.evidence)} |" for r in rows]
    lines += ["", "A check whose statuses are these writes nothing: the time and the evidence above are those of the "
              f"check that first gave them. [Check your account]({page})"]
    return "\n".join(lines)


def published(text: str) -> list[tuple[str, str]]:
    """The (requirement, status) rows a scorecard cell holds (none for the payload's own text)."""
    found = []
    for line in (text or "").splitlines():
        parts = [p.strip().replace("\\|", "|") for p in re.split(r"(?<!\\)\|", line)]
        if len(parts) == 5 and parts[2] in (PASS, FAIL, NOT_YET):
            found.append((parts[1], parts[2]))
    return found


def publish(apis: Apis, inputs: sync.Inputs, rows: list[Row], now: float) -> tuple[bool, dict]:
    """Write the scorecard into the notebook's scorecard cell (its last markdown cell), that cell only; (written,
    the live notebook). The same statuses as the cell already holds write nothing, whatever the time: a run is
    a change only when a requirement's status is."""
    spec = next(s for s in sync.P.SPECS if s.kind is NOTEBOOK)
    body = inputs.payloads.body(spec.key)
    found = sync.mine(apis, spec, body)
    if not found:
        raise Failed("no notebook to publish the scorecard to: ./run notebook (or ./run apply) creates it")
    live = found[0]
    current = NOTEBOOK.scorecard(live, body)
    if current is None:
        raise Failed(f"notebook {live['id']}: its last markdown cell is not the scorecard (someone moved or retitled "
                     "it): ./run notebook puts the cells back")
    if published(current) == [(r.requirement, r.status) for r in rows]:
        return False, live
    wanted = NOTEBOOK.scorecard(body, body)  # the payload's own cell: its heading
    page = inputs.values.get("SITE", "") + "check-your-account/"
    text = scorecard_markdown(rows, wanted.split("\n", 1)[0], now, page)
    with call(f"publish the scorecard to notebook {live['id']}", apis.where):
        return True, NOTEBOOK.put(apis, live, NOTEBOOK.with_cell(live, body, text))
