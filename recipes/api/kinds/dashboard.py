"""Dashboards: found again by title (with the runbook's line in the description), checked query by query."""

from __future__ import annotations

import re

from datadog_api_client.v1.model.dashboard import Dashboard

from recipes.api.client import call
from recipes.api.kinds.base import Kind, created, query_problems
from recipes.api.models import to_json, to_model

DASHBOARD_MARK = "Managed by dd-runbook."

TOTAL_DURATION = re.compile(r"\bavg:(trace\.[\w.]+)\.duration\{([^{}]*)\}")


def latency_problems(query: str) -> list[str]:
    """`trace.<span>.duration` is the total time of the spans in each interval, not a request's latency."""
    found = TOTAL_DURATION.search(query)
    if not found:
        return []
    span, scope = found.groups()
    return [f"avg:{span}.duration is the total span time, not the average latency: use avg:{span}{{{scope}}} "
            f"(the distribution) or sum:{span}.duration{{{scope}}}.rollup(sum) / sum:{span}.hits{{{scope}}}.rollup(sum)"]


class DashboardKind(Kind):
    name = "dashboard"
    model = Dashboard
    mark_field = "title"

    def lint(self, body: dict) -> list[str]:
        problems = []
        for i, widget in enumerate(body.get("widgets", [])):
            for j, request in enumerate(widget.get("definition", {}).get("requests", []) or []):
                if isinstance(request, dict) and "q" in request:
                    path = f"widgets[{i}].definition.requests[{j}].q"
                    problems += [f"{path}: {p}" for p in query_problems(request["q"]) + latency_problems(request["q"])]
        return problems

    def mark(self, body: dict) -> str:
        return body.get("title")

    def ours(self, live: dict) -> bool:
        return DASHBOARD_MARK in (live.get("description") or "")

    def listed(self, apis, body: dict) -> list[dict]:
        """The summaries with the payload's title (id, title, description, created_at), oldest first."""
        with call("list dashboards", apis.where):  # every page: the list is oldest first, 100 a page
            found = [to_json(s) for s in apis.dashboards.list_dashboards_with_pagination() if s.title == body["title"]]
        return sorted(found, key=self.age)

    def find(self, apis, body: dict) -> list[dict]:
        found = []
        for summary in self.listed(apis, body):
            with call(f"read dashboard {summary['id']}", apis.where):
                found.append(to_json(apis.dashboards.get_dashboard(summary["id"])))
        return sorted(found, key=self.age)

    def age(self, live: dict):
        return created(live.get("created_at")), str(live.get("id"))

    def page(self, live: dict) -> str:
        """The dashboard's own `url` (GET /api/v1/dashboard answers it), or its id's page."""
        return live.get("url") or f"/dashboard/{live['id']}"

    def create(self, apis, body):
        return to_json(apis.dashboards.create_dashboard(to_model(body, Dashboard)))

    def update(self, apis, live, body):
        return to_json(apis.dashboards.update_dashboard(live["id"], to_model(body, Dashboard)))

    def delete(self, apis, live):
        apis.dashboards.delete_dashboard(live["id"])


DASHBOARD = DashboardKind()
