"""FakeDatadog: a stateful stand-in for the parts of the Datadog API the runbook uses, on 127.0.0.1.

Implements v1 dashboards (CRUD + list), v1 monitors (CRUD + list + search + validate), v2 downtimes
(CRUD + list) and v1 key validation, with ids and the documented response shapes (the real
datadog-api-client deserializes every answer with type checks on). It records every request so tests
can count writes, and injects faults on demand: 429 with X-RateLimit-* headers, 500, 403, slow answers.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
NOT_WRITES = {"/api/v1/monitor/validate"}  # POST, but changes nothing


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    body: object
    status: int = 0

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS and self.path not in NOT_WRITES


@dataclass
class Fault:
    """Answer the next `times` requests whose path fully matches the regex `path` with `status`
    (or delay them by `delay` seconds)."""

    method: str
    path: str
    status: int = 0
    times: int = 1
    delay: float = 0.0
    reset: int = 1  # seconds announced in X-RateLimit-Reset for 429
    after: bool = False  # delay AFTER performing the request (the write happened, the answer is late)


@dataclass
class State:
    dashboards: dict = field(default_factory=dict)
    monitors: dict = field(default_factory=dict)
    downtimes: dict = field(default_factory=dict)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class ApiError(Exception):
    def __init__(self, status: int, *errors: str):
        super().__init__(status, errors)
        self.status = status
        self.errors = list(errors) or ["error"]


class FakeDatadog:
    """The fake's state, keys, faults and request log; `serve()` starts it on a free loopback port."""

    def __init__(self, api_key: str = "fake-api-key", app_key: str = "fake-app-key"):
        self.api_key = api_key
        self.app_key = app_key
        self.state = State()
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------
    def serve(self, port: int = 0) -> "FakeDatadog":
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="fakedd", daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(timeout=5)
            self.httpd = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    # --- test helpers ----------------------------------------------------------
    def inject(self, method: str, path: str, **kwargs) -> Fault:
        fault = Fault(method, path, **kwargs)
        self.faults.append(fault)
        return fault

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.is_write]

    def clear_log(self) -> None:
        self.requests.clear()

    def active_downtimes(self) -> list[dict]:
        return [d for d in self.state.downtimes.values() if d["attributes"]["status"] != "canceled"]

    # --- request routing -------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method in (method, "*") and re.fullmatch(fault.path, path):
                    fault.times -= 1
                    return fault
        return None

    def handle(self, method: str, path: str, query: dict, body, headers) -> tuple[int, object]:
        if path == "/api/v1/validate":
            if headers.get("DD-API-KEY") != self.api_key:
                raise ApiError(403, "Forbidden")
            return 200, {"valid": True}
        if headers.get("DD-API-KEY") != self.api_key or headers.get("DD-APPLICATION-KEY") != self.app_key:
            raise ApiError(403, "Forbidden")
        for pattern, verb, func in ROUTES:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                with self._lock:
                    return func(self, query, body, *match.groups())
        raise ApiError(404, "Not found")

    def new_id(self) -> int:
        return next(self._ids)


# --- dashboards -------------------------------------------------------------------
def _dashboard_id(fake: FakeDatadog) -> str:
    raw = uuid.uuid4().hex
    return f"{raw[:3]}-{raw[3:6]}-{raw[6:9]}"


def _check_dashboard(body) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON body")
    for required in ("title", "layout_type", "widgets"):
        if required not in body:
            raise ApiError(400, f"Invalid dashboard: missing '{required}'")
    for i, widget in enumerate(body["widgets"]):
        kind = widget.get("definition", {}).get("type")
        if kind not in WIDGET_TYPES:
            raise ApiError(400, f"Invalid widget {i}: unknown type {kind!r}")


WIDGET_TYPES = {"timeseries", "query_value", "toplist", "note", "group", "heatmap", "distribution"}


def _store_dashboard(fake: FakeDatadog, dash_id: str, body: dict, created: str) -> dict:
    dash = copy.deepcopy(body)
    for widget in dash["widgets"]:
        widget.setdefault("id", fake.new_id() * 1000 + 7)
    dash.update(
        id=dash_id,
        author_handle="fake@example.com",
        author_name="Fake User",
        created_at=created,
        modified_at=now_iso(),
        url=f"/dashboard/{dash_id}/{re.sub(r'[^a-z0-9]+', '-', body['title'].lower()).strip('-')}",
        is_read_only=False,
        notify_list=body.get("notify_list", []),
        template_variables=body.get("template_variables", []),
        description=body.get("description"),
    )
    fake.state.dashboards[dash_id] = dash
    return dash


def create_dashboard(fake, query, body):
    _check_dashboard(body)
    return 200, _store_dashboard(fake, _dashboard_id(fake), body, now_iso())


def list_dashboards(fake, query, body):
    keys = ("author_handle", "created_at", "description", "id", "is_read_only", "layout_type", "modified_at", "title", "url")
    items = [{k: d[k] for k in keys} for d in fake.state.dashboards.values()]
    start = int(query.get("start", ["0"])[0])
    count = int(query.get("count", ["100"])[0])
    return 200, {"dashboards": items[start : start + count]}


def get_dashboard(fake, query, body, dash_id):
    if dash_id not in fake.state.dashboards:
        raise ApiError(404, "Dashboard not found")
    return 200, fake.state.dashboards[dash_id]


def update_dashboard(fake, query, body, dash_id):
    old = get_dashboard(fake, query, body, dash_id)[1]
    _check_dashboard(body)
    return 200, _store_dashboard(fake, dash_id, body, old["created_at"])


def delete_dashboard(fake, query, body, dash_id):
    get_dashboard(fake, query, body, dash_id)
    del fake.state.dashboards[dash_id]
    return 200, {"deleted_dashboard_id": dash_id}


# --- monitors ---------------------------------------------------------------------
MONITOR_QUERY = re.compile(r"^(avg|max|min|sum|change|pct_change)\(last_\d+[mhd]\):.+\s(>=|>|<=|<)\s*-?[\d.]+$")
MONITOR_DEFAULT_OPTIONS = {
    "notify_audit": False,
    "new_host_delay": 300,
    "include_tags": True,
    "silenced": {},
}


def _check_monitor(body) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON body")
    for required in ("type", "query"):
        if required not in body:
            raise ApiError(400, f"Invalid monitor: missing '{required}'")
    if body["type"] in ("query alert", "metric alert"):
        if not MONITOR_QUERY.match(body["query"]):
            raise ApiError(400, f"The value provided for parameter 'query' is invalid: {body['query']}")
        thresholds = body.get("options", {}).get("thresholds", {})
        if "critical" not in thresholds:
            raise ApiError(400, "Alert threshold (critical) is required")
        critical = float(body["query"].rsplit(" ", 1)[-1])
        if float(thresholds["critical"]) != critical:
            raise ApiError(400, "Alert threshold does not match the one in the query")


def _store_monitor(fake, mon_id: int, body: dict, created: str) -> dict:
    mon = copy.deepcopy(body)
    options = {**MONITOR_DEFAULT_OPTIONS, **mon.get("options", {})}
    mon.update(
        id=mon_id,
        created=created,
        modified=now_iso(),
        creator={"email": "fake@example.com", "handle": "fake@example.com", "name": "Fake User"},
        overall_state="No Data",
        multi=" by " in body["query"],
        deleted=None,
        restricted_roles=None,
        priority=body.get("priority"),
        tags=body.get("tags", []),
        message=body.get("message", ""),
        name=body.get("name", body["query"]),
        options=options,
    )
    fake.state.monitors[mon_id] = mon
    return mon


def create_monitor(fake, query, body):
    _check_monitor(body)
    return 200, _store_monitor(fake, fake.new_id(), body, now_iso())


def validate_monitor(fake, query, body):
    _check_monitor(body)
    return 200, {}


def _monitor_matches(mon: dict, query: dict) -> bool:
    name = query.get("name", [""])[0].lower()
    wanted = [t for t in ",".join(query.get("monitor_tags", [])).split(",") if t]
    return name in mon["name"].lower() and all(t in mon["tags"] for t in wanted)


def list_monitors(fake, query, body):
    items = [m for m in fake.state.monitors.values() if _monitor_matches(m, query)]
    page = int(query.get("page", ["0"])[0])
    size = int(query.get("page_size", ["100"])[0])
    return 200, items[page * size : (page + 1) * size]


def search_monitors(fake, query, body):
    text = query.get("query", [""])[0]
    terms = text.split()
    found = [m for m in fake.state.monitors.values() if all(t.strip('"') in m["name"] or t.strip('"') in ",".join(m["tags"]) or t.startswith("tag:") and t[4:].strip('"') in m["tags"] for t in terms)]
    return 200, {
        "monitors": [
            {"id": m["id"], "name": m["name"], "tags": m["tags"], "type": m["type"], "query": m["query"], "status": "No Data"}
            for m in found
        ],
        "metadata": {"page": 0, "page_count": 1, "per_page": 30, "total_count": len(found)},
    }


def get_monitor(fake, query, body, mon_id):
    mon = fake.state.monitors.get(int(mon_id))
    if mon is None:
        raise ApiError(404, "Monitor not found")
    return 200, mon


def update_monitor(fake, query, body, mon_id):
    old = get_monitor(fake, query, body, mon_id)[1]
    merged = {**{k: old[k] for k in ("name", "type", "query", "message", "tags", "options")}, **body}
    _check_monitor(merged)
    return 200, _store_monitor(fake, int(mon_id), merged, old["created"])


def delete_monitor(fake, query, body, mon_id):
    get_monitor(fake, query, body, mon_id)
    in_use = [d for d in fake.active_downtimes() if d["attributes"]["monitor_identifier"].get("monitor_id") == int(mon_id)]
    fake.state.monitors.pop(int(mon_id))
    for downtime in in_use:  # like Datadog: downtimes of a deleted monitor go away with it
        downtime["attributes"]["status"] = "canceled"
    return 200, {"deleted_monitor_id": int(mon_id)}


# --- downtimes (v2) -------------------------------------------------------------------
START = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def _check_downtime_attributes(fake: FakeDatadog, attrs: dict) -> None:
    ident = attrs.get("monitor_identifier", {})
    if "monitor_id" in ident and int(ident["monitor_id"]) not in fake.state.monitors:
        raise ApiError(400, f"Monitor {ident['monitor_id']} not found")
    for rec in attrs.get("schedule", {}).get("recurrences", []):
        if not START.match(rec.get("start", "")):
            raise ApiError(400, "start must be a local date-time without offset (YYYY-MM-DDThh:mm)")
        if re.search(r"DTSTART|DTEND|DURATION", rec.get("rrule", "")):
            raise ApiError(400, "RRULE may not contain DTSTART, DTEND or DURATION")


def _downtime_resource(fake, dt_id: str, attrs: dict, created: str) -> dict:
    schedule = copy.deepcopy(attrs.get("schedule", {}))
    if "recurrences" in schedule:
        first = datetime.now(timezone.utc) + timedelta(hours=1)
        schedule["current_downtime"] = {"start": first.isoformat(timespec="seconds"), "end": (first + timedelta(hours=14)).isoformat(timespec="seconds")}
    resource = {
        "id": dt_id,
        "type": "downtime",
        "attributes": {
            "canceled": None,
            "created": created,
            "modified": now_iso(),
            "display_timezone": attrs.get("display_timezone", "UTC"),
            "message": attrs.get("message", ""),
            "monitor_identifier": attrs["monitor_identifier"],
            "mute_first_recovery_notification": attrs.get("mute_first_recovery_notification", False),
            "notify_end_states": attrs.get("notify_end_states", ["alert", "no data", "warn"]),
            "notify_end_types": attrs.get("notify_end_types", ["expired"]),
            "schedule": schedule,
            "scope": attrs["scope"],
            "status": "scheduled",
        },
        "relationships": {
            "created_by": {"data": {"id": "00000000-0000-0000-0000-00000000fake", "type": "users"}},
            "monitor": {"data": {"id": str(attrs["monitor_identifier"].get("monitor_id", "")), "type": "monitors"}},
        },
    }
    fake.state.downtimes[dt_id] = resource
    return resource


def _downtime_body(body, kind: str) -> dict:
    try:
        data = body["data"]
        assert data["type"] == "downtime"
        return data
    except (KeyError, TypeError, AssertionError):
        raise ApiError(400, f"Invalid downtime {kind} request: expected data.type 'downtime'") from None


def create_downtime(fake, query, body):
    attrs = _downtime_body(body, "create").get("attributes", {})
    for required in ("monitor_identifier", "scope"):
        if required not in attrs:
            raise ApiError(400, f"Invalid downtime: missing '{required}'")
    _check_downtime_attributes(fake, attrs)
    return 200, {"data": _downtime_resource(fake, str(uuid.uuid4()), attrs, now_iso())}


def list_downtimes(fake, query, body):
    items = list(fake.state.downtimes.values())
    if query.get("current_only", ["false"])[0] == "true":
        items = [d for d in items if d["attributes"]["status"] in ("active", "scheduled")]
    offset = int(query.get("page[offset]", ["0"])[0])
    limit = int(query.get("page[limit]", ["30"])[0])
    return 200, {"data": items[offset : offset + limit], "meta": {"page": {"total_filtered_count": len(items)}}}


def get_downtime(fake, query, body, dt_id):
    if dt_id not in fake.state.downtimes:
        raise ApiError(404, "Downtime not found")
    return 200, {"data": fake.state.downtimes[dt_id]}


def update_downtime(fake, query, body, dt_id):
    old = get_downtime(fake, query, body, dt_id)[1]["data"]
    if old["attributes"]["status"] == "canceled":
        raise ApiError(400, "Cannot update a canceled downtime")
    data = _downtime_body(body, "update")
    if data.get("id") != dt_id:
        raise ApiError(400, "data.id does not match the path")
    attrs = {**old["attributes"], **data.get("attributes", {})}
    _check_downtime_attributes(fake, attrs)
    return 200, {"data": _downtime_resource(fake, dt_id, attrs, old["attributes"]["created"])}


def cancel_downtime(fake, query, body, dt_id):
    old = get_downtime(fake, query, body, dt_id)[1]["data"]
    old["attributes"]["status"] = "canceled"
    old["attributes"]["canceled"] = now_iso()
    return 204, None


ROUTES = [
    (r"/api/v1/dashboard", "POST", create_dashboard),
    (r"/api/v1/dashboard", "GET", list_dashboards),
    (r"/api/v1/dashboard/([\w-]+)", "GET", get_dashboard),
    (r"/api/v1/dashboard/([\w-]+)", "PUT", update_dashboard),
    (r"/api/v1/dashboard/([\w-]+)", "DELETE", delete_dashboard),
    (r"/api/v1/monitor", "POST", create_monitor),
    (r"/api/v1/monitor", "GET", list_monitors),
    (r"/api/v1/monitor/validate", "POST", validate_monitor),
    (r"/api/v1/monitor/search", "GET", search_monitors),
    (r"/api/v1/monitor/(\d+)", "GET", get_monitor),
    (r"/api/v1/monitor/(\d+)", "PUT", update_monitor),
    (r"/api/v1/monitor/(\d+)", "DELETE", delete_monitor),
    (r"/api/v2/downtime", "POST", create_downtime),
    (r"/api/v2/downtime", "GET", list_downtimes),
    (r"/api/v2/downtime/([\w-]+)", "GET", get_downtime),
    (r"/api/v2/downtime/([\w-]+)", "PATCH", update_downtime),
    (r"/api/v2/downtime/([\w-]+)", "DELETE", cancel_downtime),
]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDatadog
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # No Nagle: otherwise every small answer waits for a delayed ACK (~40 ms per request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:  # quiet: the request log is in fake.requests
        pass

    def _serve(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = Recorded(self.command, parts.path, parse_qs(parts.query), body)
        fake.requests.append(record)
        fault = fake.take_fault(self.command, parts.path)
        if fault and fault.delay and not fault.after:
            time.sleep(fault.delay)
        if fault and fault.status:
            record.status = fault.status
            return self._send_fault(fault)
        try:
            status, payload = fake.handle(self.command, parts.path, record.query, body, self.headers)
        except ApiError as err:
            status, payload = err.status, {"errors": err.errors}
        record.status = status
        if fault and fault.delay and fault.after:
            time.sleep(fault.delay)
        self._send(status, payload)

    def _send_fault(self, fault: Fault) -> None:
        headers = {}
        if fault.status == 429:
            headers = {"X-RateLimit-Limit": "10", "X-RateLimit-Period": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(fault.reset), "X-RateLimit-Name": "fake"}
        messages = {429: "Rate limit exceeded", 500: "Internal Server Error", 403: "Forbidden"}
        self._send(fault.status, {"errors": [messages.get(fault.status, "error")]}, headers)

    def _send(self, status: int, payload, headers: dict | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to answer

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve
