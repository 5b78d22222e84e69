"""The monitor: found again by its name and the tag `managed-by:dd-runbook`; its query, thresholds and message checked."""

from __future__ import annotations

import re

from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest

from recipes.api import messages, same
from recipes.api.client import call, post
from recipes.api.kinds.base import Kind, query_problems
from recipes.api.models import to_json, to_model

MONITOR_TAG = "managed-by:dd-runbook"
MONITOR_QUERY = re.compile(r"^(avg|max|min|sum)\(last_(\d+)([mhd])\):(.+?)\s*(>=|>|<=|<)\s*(-?[\d.]+)$")


class MonitorKind(Kind):
    name = "monitor"
    model = Monitor
    mark_field = "name"
    rules = {  # the server normalizes the type, trims the message and query, drops null or default options
        "type": [same.alert_type],
        "message": [same.trimmed],
        "query": [same.trimmed],
        "warning": [same.dropped(None)],
        "on_missing_data": [same.dropped("default")],
    }

    def lint(self, body: dict) -> list[str]:
        query = body.get("query", "")
        found = MONITOR_QUERY.match(query)
        if not found:
            return [f"query: expected `avg(last_5m):agg:metric{{scope}} [by {{tag}}] > N`, got {query!r}"]
        problems = [f"query: {p}" for p in query_problems(found.group(4))]
        options = body.get("options", {})
        thresholds = options.get("thresholds", {})
        if "critical" not in thresholds:
            return problems + ["options.thresholds.critical: required (the alert threshold)"]
        if float(thresholds["critical"]) != float(found.group(6)):
            problems.append(f"options.thresholds.critical: {thresholds['critical']} differs from the query's {found.group(6)}")
        problems += threshold_order(thresholds, above=found.group(5).startswith(">"))
        return problems + [f"message: {p}" for p in messages.problems(body.get("message", ""), query, thresholds, options)]

    def mark(self, body: dict) -> str:
        return body.get("name")

    def ours(self, live: dict) -> bool:
        return MONITOR_TAG in live.get("tags", [])

    def find(self, apis, body: dict) -> list[dict]:
        with call("list monitors", apis.where):  # without `page` the answer is every match, unpaged
            found = apis.monitors.list_monitors(name=body["name"], monitor_tags=MONITOR_TAG)
        exact = [to_json(m) for m in found if m.name == body["name"] and MONITOR_TAG in m.tags]
        return sorted(exact, key=self.age)

    def age(self, live: dict):
        return (live["id"],)  # monitor ids grow with each create

    def validate_online(self, apis, body: dict) -> None:
        """POST /api/v1/monitor/validate."""
        model = to_model(body, Monitor)
        post(apis, "validate monitor", lambda: apis.monitors.validate_monitor(model))

    def page(self, live: dict) -> str:
        return f"/monitors/{live['id']}"

    def create(self, apis, body):
        return to_json(apis.monitors.create_monitor(to_model(body, Monitor)))

    def update(self, apis, live, body):
        return to_json(apis.monitors.update_monitor(live["id"], to_model(body, MonitorUpdateRequest)))

    def delete(self, apis, live):
        apis.monitors.delete_monitor(live["id"])


def threshold_order(thresholds: dict, above: bool) -> list[str]:
    """An alert above N warns below N first (and the reverse): otherwise the warning never fires first."""
    warning, critical = thresholds.get("warning"), thresholds["critical"]
    if warning is None or (warning < critical if above else warning > critical):
        return []
    side = "equal to" if warning == critical else ("above" if warning > critical else "below")
    return [f"options.thresholds.warning ({warning}) is {side} critical ({critical})"]


MONITOR = MonitorKind()
