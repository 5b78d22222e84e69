"""v1 dashboards as the real API answers them: stored with the server's fields, listed as paged summaries."""

from __future__ import annotations

import copy
import re
import uuid

from tests.fakedd.common import ApiError, first, stamp, utc_now
from tests.fakedd.rules import copies

WIDGET_TYPES = {"timeseries", "query_value", "toplist", "note", "group", "heatmap", "distribution"}
SUMMARY_KEYS = ("id", "title", "description", "layout_type", "url", "is_read_only", "created_at", "modified_at", "author_handle", "deleted_at")


def check(body) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON body")
    for required in ("title", "layout_type", "widgets"):
        if required not in body:
            raise ApiError(400, f"Invalid dashboard: missing '{required}'")
    for i, widget in enumerate(body["widgets"]):
        kind = widget.get("definition", {}).get("type")
        if kind not in WIDGET_TYPES:
            raise ApiError(400, f"Invalid widget {i}: unknown type {kind!r}")


@copies("dashboard", "adds id, author_handle, author_name, url, is_read_only, created_at, modified_at, restricted_roles: []")
def server_fields(dash: dict, dash_id: str, created: str) -> None:
    slug = re.sub(r"[^a-z0-9]+", "-", dash["title"].lower()).strip("-")
    dash.update(id=dash_id, author_handle="fake@example.com", author_name=None, url=f"/dashboard/{dash_id}/{slug}",
                is_read_only=False, created_at=created, modified_at=stamp(utc_now()), restricted_roles=[])


@copies("dashboard", "unsent description, template_variables, notify_list come back null")
def unsent_as_null(dash: dict) -> None:
    for key in ("description", "template_variables", "notify_list"):
        dash.setdefault(key, None)


@copies("dashboard", "every widget gets an integer id; legacy q requests are echoed unchanged")
def widget_ids(widgets: list, new_id) -> None:
    for widget in widgets:
        widget.setdefault("id", new_id() * 1_000_003 + 7)
        widget_ids(widget.get("definition", {}).get("widgets", []), new_id)


@copies("dashboard", "GET /api/v1/dashboard returns summaries, oldest first, paged by count/start, count 100 by default")
def summaries_page(dashboards, query: dict) -> list[dict]:
    oldest_first = sorted(dashboards, key=lambda d: d["created_at"])
    start, count = int(first(query, "start", "0")), int(first(query, "count", "100"))
    return [{k: d.get(k) for k in SUMMARY_KEYS} for d in oldest_first[start : start + count]]


def store(fake, dash_id: str, body: dict, created: str) -> dict:
    dash = copy.deepcopy(body)
    widget_ids(dash["widgets"], fake.new_id)
    unsent_as_null(dash)
    server_fields(dash, dash_id, created)
    fake.state.dashboards[dash_id] = dash
    return dash


def new_id() -> str:
    raw = uuid.uuid4().hex
    return f"{raw[:3]}-{raw[3:6]}-{raw[6:9]}"


def create(fake, query, body):
    check(body)
    return 200, store(fake, new_id(), body, stamp(utc_now()))


def list_all(fake, query, body):
    return 200, {"dashboards": summaries_page(fake.state.dashboards.values(), query)}


def get(fake, query, body, dash_id):
    if dash_id not in fake.state.dashboards:
        raise ApiError(404, "Dashboard not found")
    return 200, fake.state.dashboards[dash_id]


def update(fake, query, body, dash_id):
    old = get(fake, query, body, dash_id)[1]
    check(body)
    return 200, store(fake, dash_id, body, old["created_at"])


def delete(fake, query, body, dash_id):
    get(fake, query, body, dash_id)
    del fake.state.dashboards[dash_id]
    return 200, {"deleted_dashboard_id": dash_id}


ROUTES = [
    (r"/api/v1/dashboard", "POST", create),
    (r"/api/v1/dashboard", "GET", list_all),
    (r"/api/v1/dashboard/([\w-]+)", "GET", get),
    (r"/api/v1/dashboard/([\w-]+)", "PUT", update),
    (r"/api/v1/dashboard/([\w-]+)", "DELETE", delete),
]
