"""v1 monitors as the real API answers them: defaults filled, numbers as floats, types normalized."""

from __future__ import annotations

import copy
import re

from tests.fakedd.common import ApiError, first, stamp, utc_now
from tests.fakedd.rules import copies

QUERY = re.compile(r"^(avg|max|min|sum|change|pct_change)\(last_\d+[mhd]\):.+\s(>=|>|<=|<)\s*-?[\d.]+$")
CREATOR = {"name": None, "handle": "fake@example.com", "email": "fake@example.com", "id": 1445416}


def check(body) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON body")
    for required in ("type", "query"):
        if required not in body:
            raise ApiError(400, f"Invalid monitor: missing '{required}'")
    if body["type"] in ("query alert", "metric alert") and "formula(" not in body["query"]:
        query = body["query"].strip()
        if not QUERY.match(query):
            raise ApiError(400, f"The value provided for parameter 'query' is invalid: {query}")
        thresholds = (body.get("options") or {}).get("thresholds") or {}
        if thresholds.get("critical") is None:
            raise ApiError(400, "Alert threshold (critical) is required")
        if float(thresholds["critical"]) != float(query.rsplit(" ", 1)[-1]):
            raise ApiError(400, "Alert threshold does not match the one in the query")


@copies("monitor", "adds id, org_id, created, created_at, modified, deleted, restricted_roles, priority, overall_state, creator, multi, draft_status")
def server_fields(mon: dict, mon_id: int, created: str) -> None:
    epoch_ms = int(utc_now().timestamp() * 1000)
    mon.setdefault("priority", None)
    mon.setdefault("tags", [])
    mon.setdefault("message", "")
    mon.setdefault("name", mon["query"])
    mon.update(id=mon_id, org_id=321813, created=created, created_at=mon.get("created_at", epoch_ms),
               modified=stamp(utc_now()), deleted=None, restricted_roles=None, overall_state="No Data",
               overall_state_modified=None, creator=CREATOR, multi=" by " in mon["query"], draft_status="published")


@copies("monitor", "fills option defaults: notify_audit: false, silenced: {}, include_tags: true, new_host_delay: 300, notify_no_data: false; newer ones avalanche_window")
def option_defaults(options: dict) -> dict:
    defaults = {"notify_no_data": False, "notify_audit": False, "new_host_delay": 300, "include_tags": True, "silenced": {}, "avalanche_window": 20}
    return {**options, **{k: v for k, v in defaults.items() if k not in options}}


@copies("monitor", "thresholds come back as floats (2 -> 2.0); warning: null is dropped; on_missing_data: \"default\" is dropped")
def option_numbers(options: dict) -> dict:
    thresholds = {k: float(v) for k, v in (options.get("thresholds") or {}).items() if v is not None}
    kept = {k: v for k, v in options.items() if not (k == "on_missing_data" and v == "default")}
    return {**kept, "thresholds": thresholds} if "thresholds" in options else kept


@copies("monitor", "type is normalized: metric alert -> query alert for plain queries, query alert -> metric alert for formula() queries")
def normalized_type(mon: dict) -> None:
    if mon["type"] in ("metric alert", "query alert"):
        mon["type"] = "metric alert" if "formula(" in mon["query"] else "query alert"


@copies("monitor", "message and query whitespace is trimmed")
def trimmed(mon: dict) -> None:
    for key in ("message", "query"):
        if isinstance(mon.get(key), str):
            mon[key] = mon[key].strip()


@copies("monitor", "PUT replaces options as a whole (keys not sent vanish, defaults come back); other fields not sent are kept")
def put_over(old: dict, body: dict) -> dict:
    merged = {**{k: old[k] for k in ("name", "type", "query", "message", "tags", "priority", "created_at")}, "options": old["options"]}
    return {**merged, **copy.deepcopy(body)}


@copies("monitor", "GET /api/v1/monitor?name=&monitor_tags= returns full objects, unpaged when page is absent")
def listed(monitors, query: dict) -> list[dict]:
    name = first(query, "name", "").lower()
    wanted = [t for t in ",".join(query.get("monitor_tags", [])).split(",") if t]
    found = [m for m in monitors if name in m["name"].lower() and all(t in m["tags"] for t in wanted)]
    if "page" not in query:
        return found
    page, size = int(first(query, "page", "0")), int(first(query, "page_size", "100"))
    return found[page * size : (page + 1) * size]


def store(fake, mon_id: int, body: dict, created: str) -> dict:
    check(body)
    mon = copy.deepcopy(body)
    trimmed(mon)
    normalized_type(mon)
    mon["options"] = option_numbers(option_defaults(mon.get("options") or {}))
    server_fields(mon, mon_id, created)
    fake.state.monitors[mon_id] = mon
    return mon


def create(fake, query, body):
    return 200, store(fake, fake.new_id(), body, stamp(utc_now()))


def validate(fake, query, body):
    check(body)
    return 200, {}


def list_all(fake, query, body):
    return 200, listed(fake.state.monitors.values(), query)


def search(fake, query, body):
    terms = first(query, "query", "").split()
    found = [m for m in fake.state.monitors.values() if all(_matches(m, t.strip('"')) for t in terms)]
    return 200, {
        "monitors": [{"id": m["id"], "name": m["name"], "tags": m["tags"], "type": m["type"], "query": m["query"], "status": "No Data"} for m in found],
        "metadata": {"page": 0, "page_count": 1, "per_page": 30, "total_count": len(found)},
    }


def _matches(mon: dict, term: str) -> bool:
    if term.startswith("tag:"):
        return term[4:].strip('"') in mon["tags"]
    return term in mon["name"] or term in ",".join(mon["tags"])


def get(fake, query, body, mon_id):
    mon = fake.state.monitors.get(int(mon_id))
    if mon is None:
        raise ApiError(404, "Monitor not found")
    return 200, mon


def update(fake, query, body, mon_id):
    old = get(fake, query, body, mon_id)[1]
    return 200, store(fake, int(mon_id), put_over(old, body), old["created"])


def delete(fake, query, body, mon_id):
    get(fake, query, body, mon_id)
    fake.state.monitors.pop(int(mon_id))
    for downtime in fake.active_downtimes():  # the fake's choice (not recorded): a deleted monitor's downtimes go with it
        if downtime["attributes"]["monitor_identifier"].get("monitor_id") == int(mon_id):
            downtime["attributes"]["status"] = "canceled"
    return 200, {"deleted_monitor_id": int(mon_id)}


ROUTES = [
    (r"/api/v1/monitor", "POST", create),
    (r"/api/v1/monitor", "GET", list_all),
    (r"/api/v1/monitor/validate", "POST", validate),
    (r"/api/v1/monitor/search", "GET", search),
    (r"/api/v1/monitor/(\d+)", "GET", get),
    (r"/api/v1/monitor/(\d+)", "PUT", update),
    (r"/api/v1/monitor/(\d+)", "DELETE", delete),
]
