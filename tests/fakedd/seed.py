"""A busy org for the fake: other people's dashboards and monitors, older than the runbook's, some with
look-alike titles and names (a dashboard with the timeboard's exact title, a monitor with ours but
not our tag, names that the `name=` filter also matches)."""

from __future__ import annotations

from datetime import timedelta

from tests.fakedd import dashboards, monitors
from tests.fakedd.common import stamp, utc_now

LOOK_ALIKE_TITLES = [
    "Exercise timeboard: my_metric on datadog-exercise",
    "Exercise timeboard: my_metric on datadog-exercise (copy)",
    "Flask service flask (dev): APM and host metrics - old",
]
LOOK_ALIKE_NAMES = [
    "my_metric is high (dd-runbook exercise)",
    "my_metric is high (dd-runbook exercise) - staging",
    "my_metric is high",
]


def seed_org(fake, n_dashboards: int = 150, n_monitors: int = 60) -> None:
    long_ago = utc_now() - timedelta(days=400)
    for i in range(n_dashboards):
        title = LOOK_ALIKE_TITLES[i] if i < len(LOOK_ALIKE_TITLES) else f"Team dashboard {i}"
        body = {"title": title, "description": "someone else's", "layout_type": "ordered",
                "widgets": [{"definition": {"type": "timeseries", "requests": [{"q": f"avg:team.metric_{i}{{*}}"}]}}]}
        dashboards.store(fake, dashboards.new_id(), body, stamp(long_ago + timedelta(hours=i)))
    for i in range(n_monitors):
        name = LOOK_ALIKE_NAMES[i] if i < len(LOOK_ALIKE_NAMES) else f"Team monitor {i}"
        tags = ["managed-by:dd-runbook"] if i == 1 else ["team:other"]
        body = {"name": name, "type": "metric alert", "query": f"avg(last_5m):avg:team.metric_{i}{{*}} > 1",
                "message": "@team@example.com", "tags": tags, "options": {"thresholds": {"critical": 1}}}
        monitors.store(fake, fake.new_id(), body, stamp(long_ago + timedelta(hours=i)))
