"""Seed the fake with what an exercise account receives: the healthy one, or the same with one thing wrong.

`seed_account(fake, host=..., tags=..., now=..., wrong=KIND)` fills `fake.telemetry` with the last two and a
half hours of an exercise account. Each kind in WRONG is one of the write-up's failures, as the account shows
it (what arrives, not why).
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone

from tests.fakedd.telemetry import Series

MONITOR_NAME = "my_metric is high (dd-runbook exercise)"
RESOURCES = ("get_/", "get_/api/apm", "get_/api/trace")
MYSQL_METRICS = ("mysql.net.connections", "mysql.performance.queries", "mysql.performance.cpu_time")
WRONG = {
    "hostname": "the Agent reports the OS hostname `vagrant`, not the name the dashboards query",
    "stopped": "the Agent stopped reporting two hours ago",
    "tags": "the host reports without the configured tags (datadog.yaml changed, Agent not restarted)",
    "conf_placeholder": "conf.yaml still holds a placeholder: no mysql.* metric arrives",
    "unreadable_logs": "the Agent cannot read /var/log/mysql: no MySQL log arrives",
    "interval": "min_collection_interval under init_config: my_metric every 15 s instead of 45 s",
    "no_metric": "the custom check does not run: no my_metric at all",
    "young_metric": "my_metric has arrived for forty minutes only: the hourly rollup holds one bucket",
    "payload_drift": "the monitor's threshold was edited in the UI",
    "downtime_timezone": "a downtime was re-saved in UTC from the UI: its windows move by an hour",
    "average_monitor": "avg(last_5m) of a uniform 0..1000 never crosses 800: warnings only, no alert",
    "no_apm": "the app never ran under ddtrace-run: no trace metrics",
}


def seed_account(fake, host: str, tags: list[str], now: int | None = None, wrong: str | tuple[str, ...] = (),
                 minutes: int = 150) -> None:
    """A healthy account (everything arrives) or, with `wrong` (one kind or several), the same account with
    those failures."""
    wrong = {wrong} if isinstance(wrong, str) else set(wrong or ())
    if wrong - set(WRONG):
        raise ValueError(f"unknown failure kind(s) {sorted(wrong - set(WRONG))}; known: {', '.join(WRONG)}")
    now = int(now or time.time())
    since = (now - now % 3600 + 1) if "young_metric" in wrong else now - minutes * 60
    rng = random.Random(6)
    name = "vagrant" if "hostname" in wrong else host
    host_tags = [f"host:{name}"]
    seed_host(fake, name, [] if "tags" in wrong else tags, now - (7200 if "stopped" in wrong else 20),
              mysql="conf_placeholder" not in wrong)
    every = 15 if "interval" in wrong else 45
    if "no_metric" not in wrong:
        points = [(ts, float(rng.randint(0, 1000))) for ts in range(since, now, every)]
        fake.telemetry.series.append(Series("my_metric", frozenset({*host_tags, *tags}), points))
    if "conf_placeholder" not in wrong:
        for metric in MYSQL_METRICS:
            points = [(ts, rng.random() * 5) for ts in range(now - minutes * 60, now, 15)]
            fake.telemetry.series.append(Series(metric, frozenset({*host_tags, *tags, "dbms:mysql"}), points))
    if not wrong & {"unreadable_logs", "conf_placeholder"}:
        seed_logs(fake, name, host_tags, range(now - minutes * 60, now, 300))
    if "no_apm" not in wrong:
        for resource in RESOURCES:
            span_tags = frozenset({"service:flask", "env:dev", f"resource_name:{resource}", *host_tags})
            points = [(ts, float(rng.randint(1, 20))) for ts in range(now - 1800, now, 10)]
            fake.telemetry.series.append(Series("trace.flask.request.hits", span_tags, points))
    seed_notifications(fake, name, now, alert="average_monitor" not in wrong)
    if "payload_drift" in wrong:
        for monitor in fake.state.monitors.values():
            monitor["options"]["thresholds"]["critical"] = 900.0
    if "downtime_timezone" in wrong:
        downtime = next(d for d in fake.state.downtimes.values() if "weeknights" in d["attributes"]["message"])
        downtime["attributes"]["schedule"]["timezone"] = "UTC"


def seed_host(fake, name: str, tags: list[str], last_reported: int, mysql: bool) -> None:
    fake.telemetry.hosts[name] = {
        "name": name, "host_name": name, "id": 7001, "aliases": [name], "up": True, "is_muted": False,
        "last_reported_time": last_reported, "apps": ["agent", "ntp", *(["mysql"] if mysql else [])],
        "sources": ["agent"], "tags_by_source": {"Datadog": [f"host:{name}", *tags]},
        "meta": {"agent_version": "7.60.0", "platform": "linux"},
    }


def seed_logs(fake, name: str, host_tags: list[str], times) -> None:
    for i, ts in enumerate(times):
        when = datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")
        fake.telemetry.logs.append({"id": f"AQAAAY-log-{i}", "type": "log", "attributes": {
            "host": name, "service": "mysql", "status": "info", "timestamp": when,
            "message": f"[Note] Aborted connection {i} to db: 'unconnected'", "tags": ["source:mysql", *host_tags]}})


def seed_notifications(fake, name: str, now: int, alert: bool) -> None:
    """The monitor's notifications: warnings (an average crosses 500 often) and, when `alert`, a trigger."""
    kinds = [("Warn", "warning", 3000), ("Recovered", "success", 2400)] + ([("Triggered", "error", 600)] if alert else [])
    for i, (verb, alert_type, ago) in enumerate(kinds):
        fake.telemetry.events.append({
            "id": 9001 + i, "title": f"[{verb} on {{host:{name}}}] {MONITOR_NAME}", "alert_type": alert_type,
            "text": "%%% \nmy_metric on this host @you@example.com\n %%%", "date_happened": now - ago,
            "tags": [f"host:{name}", "monitor"], "source_type_name": "Monitor Alert", "priority": "normal",
            "url": f"/event/event?id={9001 + i}"})
