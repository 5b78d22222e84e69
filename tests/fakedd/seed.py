"""A busy org for the fake: other people's dashboards, monitors and notebooks, older than the runbook's, some
with look-alike titles and names (a dashboard with the timeboard's exact title, a monitor with ours but
not our tag, names that the `name=` filter also matches, a notebook with ours but without our mark)."""

from __future__ import annotations

from datetime import timedelta

from tests.fakedd import dashboards, monitors, notebooks
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


LOOK_ALIKE_NOTEBOOK = "Datadog exercise on datadog-exercise: the runbook's answers"


def seed_notebooks(fake, n: int, modified=None) -> None:
    """n notebooks of other people, the first with the runbook's notebook's name but not its mark; last modified
    at `modified` (default: long ago), so the list (last modified first) shows them before or after ours."""
    when = modified or utc_now() - timedelta(days=400)
    for i in range(n):
        name = LOOK_ALIKE_NOTEBOOK if i == 0 else f"Team notebook {i}"
        cells = [{"type": "notebook_cells", "attributes": {"definition": {"type": "markdown", "text": f"# {name}\n\nsomeone else's"}}}]
        stored = notebooks.store(fake, fake.new_id(), {"name": name, "cells": cells, "time": {"live_span": "1h"}},
                                 stamp(when - timedelta(days=1)))
        stored["attributes"]["modified"] = stamp(when + timedelta(seconds=i))  # edited since


def seed_org(fake, n_dashboards: int = 150, n_monitors: int = 60, n_notebooks: int = 0) -> None:
    long_ago = utc_now() - timedelta(days=400)
    seed_notebooks(fake, n_notebooks, long_ago)
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
