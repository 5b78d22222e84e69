"""The exercise's requirements as verify-account checks them: one place for each row's name, what it reads
and the section it proves. recipes/api/account.py fills the rows; the site's "Check your account" page lists
them from here (this module imports nothing heavy, so the site build does not load the API client).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    key: str
    name: str  # the row's `requirement`
    section: str  # the exercise page whose "What you should see" links here
    reads: str  # what the row asks the account, in words

    @property
    def anchor(self) -> str:
        return f"row-{self.key}"


ALL = [
    Requirement("host", "the host reports", "prerequisites.md",
                "the hosts list: a host named `api.host` that reported in the last 10 minutes through the Agent"),
    Requirement("tags", "host tags", "collecting-metrics.md",
                "the same host's tags, every source: each of `agent.tags` is there"),
    Requirement("metric", "my_metric arrives", "collecting-metrics.md",
                "the timeboard's `my_metric` query over the last `api.verify_minutes`: values within 0..1000, "
                "about one every `check.min_collection_interval` seconds"),
    Requirement("rollup", "hourly rollup has two buckets", "visualizing-data.md",
                "the timeboard's `.rollup(sum, 3600)` query over three hours: two hourly sums at least"),
    Requirement("mysql", "MySQL integration metrics", "collecting-metrics.md",
                "`mysql.net.connections` and `mysql.performance.cpu_time` from the host"),
    Requirement("logs", "MySQL logs", "collecting-metrics.md",
                "a logs search for `host:<api.host> source:mysql` over the last day"),
    Requirement("objects", "timeboard, monitor and downtimes", "visualizing-data.md",
                "the plan: each live object found by its mark and equal to its payload (no change to apply)"),
    Requirement("downtimes", "downtimes' next windows", "monitoring-data.md",
                "each live downtime's windows over the next week, in `api.timezone`, against its payload's"),
    Requirement("monitor", "the monitor alerts", "monitoring-data.md",
                "the monitor's state and the event stream's notifications of the last day: an alert among them"),
    Requirement("apm", "APM: three resources traced", "collecting-apm-data.md",
                "`trace.flask.request.hits` of `apm.service` in `apm.env`, by resource: `GET /`, `GET /api/apm` "
                "and `GET /api/trace` all seen"),
]
BY_KEY = {req.key: req for req in ALL}


def name(key: str) -> str:
    return BY_KEY[key].name
