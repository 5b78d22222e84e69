"""Plan, apply, export and destroy the payloads against live Datadog objects, without a state file.

Each object is found again by a stable mark: dashboards by title, the monitor by name and the tag
`managed-by:dd-runbook`, downtimes by the `[dd-runbook:<name>]` marker opening their message (and the
monitor they mute). Lists are read to their last page. Live objects are compared on the payload's own
fields only, so what the server adds (ids, timestamps, read-only fields, defaults) never shows as a
change, nor what it rewrites without changing the meaning (recipes/api/same.py), and an unchanged
object gets no write. Every payload is rendered and validated before the first request, and a create
is never sent again before the object has been looked up.

Two runs on one checkout take turns (recipes/api/lock.py); two runs on two machines may both create
the same object. So after each create the run looks again for objects carrying the same mark: when
another one is older (it was there, or came meanwhile), the run keeps that one, deletes its own copy
and says so. Both runs keep the oldest by the same order (`age`), so they agree on which one stays.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from datadog_api_client.model_utils import validate_and_convert_types
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest
from datadog_api_client.v2.model.downtime_create_request import DowntimeCreateRequest
from datadog_api_client.v2.model.downtime_update_request import DowntimeUpdateRequest

from recipes.api import payloads as P, same
from recipes.api.client import Apis, ApiFailure, call, post

MONITOR_TAG = "managed-by:dd-runbook"
DASHBOARD_MARK = "Managed by dd-runbook."
DOWNTIME_MARK = re.compile(r"^\[dd-runbook:[\w-]+\]")
PENDING_ID = "<new monitor id>"
NEVER = datetime.max.replace(tzinfo=timezone.utc)  # an object without a creation time sorts last


@dataclass
class Change:
    """What apply would do for one payload (or one stray object carrying our mark)."""

    spec: P.Spec
    action: str  # create | update | unchanged | delete | kept (another run's copy kept, this run's deleted)
    body: dict | None = None
    live: dict | None = None
    reason: str = ""
    diff: list[str] = field(default_factory=list)
    deleted_copy: object = None  # kept: the id of this run's own copy, deleted

    @property
    def live_id(self):
        return self.live.get("id") if self.live else None


def to_json(model) -> dict:
    """A client model as plain JSON (datetimes as strings)."""
    return json.loads(json.dumps(model.to_dict(), default=str))


def to_model(body: dict, cls: type):
    return validate_and_convert_types(copy.deepcopy(body), (cls,), ["body"], True, True, configuration=P.MODEL_CONFIG)


# --- comparison ------------------------------------------------------------------------
def plain_numbers(obj):
    """800.0 -> 800, so a float echoed by the server does not show as a change."""
    if isinstance(obj, dict):
        return {k: plain_numbers(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain_numbers(v) for v in obj]
    return int(obj) if isinstance(obj, float) and obj.is_integer() else obj


def created(stamp) -> datetime:
    """A creation time as the client gives it (a datetime written by str() or ISO 8601), in UTC."""
    try:
        when = datetime.fromisoformat(str(stamp))
    except (TypeError, ValueError):
        return NEVER
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def diff_lines(desired: dict, live_projected: dict) -> list[str]:
    if desired == live_projected:
        return []
    before = json.dumps(plain_numbers(live_projected), indent=2, sort_keys=True).splitlines()
    after = json.dumps(plain_numbers(desired), indent=2, sort_keys=True).splitlines()
    return list(difflib.unified_diff(before, after, "live", "payload", lineterm="", n=2))


# --- the three kinds ----------------------------------------------------------------------
class DashboardKind:
    def listed(self, apis: Apis, body: dict) -> list[dict]:
        """The summaries with the payload's title (id, title, description, created_at), oldest first."""
        with call("list dashboards", apis.where):  # every page: the list is oldest first, 100 a page
            found = [to_json(s) for s in apis.dashboards.list_dashboards_with_pagination() if s.title == body["title"]]
        return sorted(found, key=self.age)

    def find(self, apis: Apis, body: dict) -> list[dict]:
        found = []
        for summary in self.listed(apis, body):
            with call(f"read dashboard {summary['id']}", apis.where):
                found.append(to_json(apis.dashboards.get_dashboard(summary["id"])))
        return sorted(found, key=self.age)

    def age(self, live: dict):
        return created(live.get("created_at")), str(live.get("id"))

    def comparable(self, live: dict, body: dict) -> dict:
        return same.project(live, body, "dashboard")

    def create(self, apis, body):
        return to_json(apis.dashboards.create_dashboard(to_model(body, Dashboard)))

    def update(self, apis, live, body):
        return to_json(apis.dashboards.update_dashboard(live["id"], to_model(body, Dashboard)))

    def delete(self, apis, live):
        apis.dashboards.delete_dashboard(live["id"])

    def ours(self, live: dict) -> bool:
        return DASHBOARD_MARK in (live.get("description") or "")


class MonitorKind:
    def find(self, apis: Apis, body: dict) -> list[dict]:
        with call("list monitors", apis.where):  # without `page` the answer is every match, unpaged
            found = apis.monitors.list_monitors(name=body["name"], monitor_tags=MONITOR_TAG)
        exact = [to_json(m) for m in found if m.name == body["name"] and MONITOR_TAG in m.tags]
        return sorted(exact, key=self.age)

    listed = find  # the list holds whole monitors

    def age(self, live: dict):
        return (live["id"],)  # monitor ids grow with each create

    def comparable(self, live: dict, body: dict) -> dict:
        return same.project(live, body, "monitor")

    def create(self, apis, body):
        return to_json(apis.monitors.create_monitor(to_model(body, Monitor)))

    def update(self, apis, live, body):
        return to_json(apis.monitors.update_monitor(live["id"], to_model(body, MonitorUpdateRequest)))

    def delete(self, apis, live):
        apis.monitors.delete_monitor(live["id"])

    def ours(self, live: dict) -> bool:
        return MONITOR_TAG in live.get("tags", [])


class DowntimeKind:
    """Downtimes are JSON:API resources; compared on data.attributes."""

    def find(self, apis: Apis, body: dict) -> list[dict]:
        mark = marker(body)
        with call("list downtimes", apis.where):
            everything = [to_json(d) for d in apis.downtimes.list_downtimes_with_pagination(page_limit=100)]
        live = [d for d in everything if d["attributes"].get("status") != "canceled"]
        return sorted([d for d in live if (d["attributes"].get("message") or "").startswith(mark)], key=self.age)

    listed = find  # the list holds whole downtimes

    def age(self, live: dict):
        return created(live["attributes"].get("created")), str(live.get("id"))

    def comparable(self, live: dict, body: dict) -> dict:
        attributes = copy.deepcopy(live["attributes"])
        wanted = body["data"]["attributes"]
        live_recs = (attributes.get("schedule") or {}).get("recurrences") or []
        for live_rec, want in zip(live_recs, (wanted.get("schedule") or {}).get("recurrences") or []):
            if "start" in want:
                live_rec["start"] = same.recurrence_start(live_rec.get("start"), want["start"], want.get("rrule"))
        return {"data": {"type": "downtime", "attributes": same.project(attributes, wanted, "downtime")}}

    def create(self, apis, body):
        return to_json(apis.downtimes.create_downtime(to_model(body, DowntimeCreateRequest)))["data"]

    def update(self, apis, live, body):
        data = {"id": live["id"], **body["data"]}
        return to_json(apis.downtimes.update_downtime(live["id"], to_model({"data": data}, DowntimeUpdateRequest)))["data"]

    def delete(self, apis, live):
        apis.downtimes.cancel_downtime(live["id"])

    def ours(self, live: dict) -> bool:
        return bool(DOWNTIME_MARK.match(live["attributes"].get("message") or ""))


KINDS = {"dashboard": DashboardKind(), "monitor": MonitorKind(), "downtime": DowntimeKind()}


def marker(body: dict) -> str:
    found = DOWNTIME_MARK.match(body["data"]["attributes"].get("message", ""))
    if not found:
        raise P.PayloadError("downtime message must open with a [dd-runbook:<name>] marker")
    return found.group(0)


def monitored_id(downtime: dict):
    return downtime["attributes"].get("monitor_identifier", {}).get("monitor_id")


# --- plan ------------------------------------------------------------------------------------
@dataclass
class Inputs:
    """Everything a plan needs besides the live objects."""

    values: dict
    payload_dir: Path = P.PAYLOAD_DIR
    at_least_once: bool = False
    only: tuple = ()  # spec keys; empty = all
    checked: bool = False  # set by preflight()


def preflight(inputs: Inputs) -> None:
    """The whole payload set rendered and validated, each file and against the others, before any
    request: a bad file stops the run before anything is created."""
    if not inputs.checked:
        P.check_all(inputs.values, inputs.payload_dir, inputs.at_least_once)
        inputs.checked = True


def render_checked(spec: P.Spec, inputs: Inputs, values: dict) -> dict:
    body = P.render(spec, values, inputs.payload_dir, inputs.at_least_once)
    problems = [] if inputs.checked else P.validate(spec, body, P.source(spec, inputs.payload_dir))
    if problems:
        raise P.PayloadError("\n".join(problems))
    return body


def offline_changes(inputs: Inputs) -> list[Change]:
    """Without keys: every selected payload, validated, as a create (nothing live to compare with)."""
    preflight(inputs)
    changes = []
    for spec in [s for s in P.SPECS if not inputs.only or s.key in inputs.only]:
        body = downtime_body(spec, inputs, None) if spec.kind == "downtime" else render_checked(spec, inputs, inputs.values)
        changes.append(Change(spec, "create", body=body, reason="not compared: no keys"))
    return changes


def mine(apis: Apis, spec: P.Spec, body: dict) -> list[dict]:
    """Live objects carrying this payload's mark (a look-alike of someone else's is left alone)."""
    kind = KINDS[spec.kind]
    return [live for live in kind.find(apis, body) if kind.ours(live)]


def plan_one(apis: Apis, spec: P.Spec, body: dict, monitor_id=None) -> list[Change]:
    """The change for one payload, plus deletions of duplicates or strays that carry its mark."""
    found, extra = mine(apis, spec, body), []
    if spec.kind == "downtime":
        extra = [Change(spec, "delete", live=d, reason="stale: mutes another monitor") for d in found if monitored_id(d) != monitor_id]
        found = [d for d in found if monitored_id(d) == monitor_id]
    extra += [Change(spec, "delete", live=d, reason="duplicate") for d in found[1:]]
    if not found:
        return [Change(spec, "create", body=body)] + extra
    live = found[0]
    lines = diff_lines(body, KINDS[spec.kind].comparable(live, body))
    return [Change(spec, "update" if lines else "unchanged", body=body, live=live, diff=lines)] + extra


def plan(apis: Apis, inputs: Inputs) -> list[Change]:
    """Changes in dependency order: dashboards, the monitor, then the downtimes that reference it."""
    preflight(inputs)
    changes = dashboard_changes(apis, inputs) + monitor_changes(apis, inputs)
    monitor_id = current_monitor_id(apis, inputs)
    return changes + downtime_changes(apis, inputs, monitor_id)


def dashboard_changes(apis: Apis, inputs: Inputs) -> list[Change]:
    return [ch for spec in selected(inputs, "dashboard") for ch in plan_one(apis, spec, render_checked(spec, inputs, inputs.values))]


def monitor_changes(apis: Apis, inputs: Inputs) -> list[Change]:
    if not selected(inputs, "monitor"):
        return []
    spec = P.spec("monitor")
    return plan_one(apis, spec, render_checked(spec, inputs, inputs.values))


def downtime_changes(apis: Apis, inputs: Inputs, monitor_id) -> list[Change]:
    return [ch for spec in selected(inputs, "downtime") for ch in plan_one(apis, spec, downtime_body(spec, inputs, monitor_id), monitor_id)]


def downtime_body(spec: P.Spec, inputs: Inputs, monitor_id) -> dict:
    """The downtime payload for monitor_id; before the monitor exists, a visible stand-in id."""
    values = {**inputs.values, "MONITOR_ID": monitor_id if monitor_id is not None else 1}
    body = render_checked(spec, inputs, values)
    if monitor_id is None:
        body["data"]["attributes"]["monitor_identifier"]["monitor_id"] = PENDING_ID
    return body


def selected(inputs: Inputs, kind: str) -> list[P.Spec]:
    return [s for s in P.SPECS if s.kind == kind and (not inputs.only or s.key in inputs.only)]


def current_monitor_id(apis: Apis, inputs: Inputs):
    if "MONITOR_ID" in inputs.values:
        return inputs.values["MONITOR_ID"]
    body = render_checked(P.spec("monitor"), inputs, inputs.values)
    found = KINDS["monitor"].find(apis, body)
    return found[0]["id"] if found else None


# --- apply -----------------------------------------------------------------------------------
def apply_change(apis: Apis, change: Change) -> dict | None:
    """Perform one change; a create whose answer is lost or an error is looked up before it is sent again,
    and is settled against copies another run made (`settle`)."""
    kind, label = KINDS[change.spec.kind], f"{change.action} {change.spec.key}"
    if change.action == "unchanged":
        return change.live
    if change.action == "delete":
        return delete_once(apis, kind, change.live, label)
    if change.action == "update":
        with call(label, apis.where):
            return kind.update(apis, change.live, change.body)
    made = post(apis, label, lambda: kind.create(apis, change.body), lambda: landed(apis, change))
    return settle(apis, change, made)


def settle(apis: Apis, change: Change, made: dict) -> dict:
    """After a create, the objects carrying the same mark, looked up again (one list read): if another
    one is older (it was there before, or another run, on another machine, made it meanwhile), keep it
    and delete this run's copy; the change becomes `kept`. Every run keeps the oldest by the same order,
    so two runs never delete each other's copy."""
    kind = KINDS[change.spec.kind]
    found = [live for live in kind.listed(apis, change.body) if kind.ours(live)]
    if change.spec.kind == "downtime":
        found = [d for d in found if monitored_id(d) == monitored_id(made)]
    if made["id"] not in {live["id"] for live in found}:
        found.append(made)  # a list that does not show it yet
    oldest = min(found, key=kind.age)
    if oldest["id"] == made["id"]:
        return made
    delete_once(apis, kind, made, f"delete this run's copy of {change.spec.key}")
    change.action, change.deleted_copy, change.reason = "kept", made["id"], "created by another run meanwhile"
    return oldest


def landed(apis: Apis, change: Change) -> dict | None:
    """The object a lost create made after all, if any."""
    found = mine(apis, change.spec, change.body)
    if change.spec.kind == "downtime":
        wanted = change.body["data"]["attributes"]["monitor_identifier"].get("monitor_id")
        found = [d for d in found if monitored_id(d) == wanted]
    return found[0] if found else None


def delete_once(apis: Apis, kind, live: dict, label: str) -> None:
    try:
        with call(label, apis.where):
            kind.delete(apis, live)
    except ApiFailure as err:
        if err.status != 404:  # 404: a retried DELETE whose first answer was lost; it is gone
            raise


def validate_online(apis: Apis, changes: list[Change]) -> None:
    """POST /api/v1/monitor/validate for a monitor about to be written, before any write."""
    for change in changes:
        if change.spec.kind == "monitor" and change.action in ("create", "update"):
            post(apis, "validate monitor", lambda body=change.body: apis.monitors.validate_monitor(to_model(body, Monitor)))


def apply(apis: Apis, inputs: Inputs, on_change=None, dry_run: bool = False, on_start=None) -> list[Change]:
    """Bring live objects to the payloads; returns the changes done (or, dry-run, that would be done).
    Everything is validated first; the dashboards and the monitor are planned (read-only) before the
    first write, the downtimes once the monitor they mute exists (the kept one, when another run's
    copy was kept). `on_start(change)` is called before each write, `on_change(change)` after it."""
    preflight(inputs)
    first = dashboard_changes(apis, inputs) + monitor_changes(apis, inputs)
    if not dry_run:
        validate_online(apis, first)
    done = _apply_all(apis, first, on_change, dry_run, on_start)
    monitor_id = inputs.values.get("MONITOR_ID")
    written = [ch for ch in done if ch.spec.kind == "monitor" and ch.action != "delete"]
    if written:
        monitor_id = written[0].live["id"] if written[0].live else None
    elif monitor_id is None and selected(inputs, "downtime"):
        monitor_id = current_monitor_id(apis, inputs)
    if selected(inputs, "downtime") and monitor_id is None and not dry_run:
        raise ApiFailure("no monitor found to schedule downtimes for: run `./run monitor` (or `./run apply`) first")
    return done + _apply_all(apis, downtime_changes(apis, inputs, monitor_id), on_change, dry_run, on_start)


def _apply_all(apis: Apis, changes: list[Change], on_change, dry_run: bool, on_start=None) -> list[Change]:
    for change in changes:
        if not dry_run:
            if on_start:
                on_start(change)
            result = apply_change(apis, change)
            if result is not None:
                change.live = result
        if on_change:
            on_change(change)
    return changes


# --- destroy and export --------------------------------------------------------------------------
def destroy_plan(apis: Apis, inputs: Inputs) -> list[Change]:
    """Everything carrying our mark, downtimes first (they reference the monitor)."""
    preflight(inputs)
    changes = []
    for spec in reversed([s for s in P.SPECS if not inputs.only or s.key in inputs.only]):
        values = {**inputs.values, "MONITOR_ID": 1}
        body = render_checked(spec, inputs, values)
        changes += [Change(spec, "delete", live=live, reason="carries our mark") for live in mine(apis, spec, body)]
    return changes


def export(apis: Apis, inputs: Inputs, out_dir: Path) -> list[Path]:
    """Write each live object back in its payload's form, with the placeholders restored; returns the
    files written (a file whose content already matches is left as it is). Every object is read first;
    only then is each file replaced, in one rename, so a failed read leaves every file as it was."""
    changed: dict[Path, str] = {}
    monitor_id = current_monitor_id(apis, inputs)
    for spec in [s for s in P.SPECS if not inputs.only or s.key in inputs.only]:
        values = {**inputs.values, "MONITOR_ID": monitor_id if monitor_id is not None else 1}
        template = P.load_template(spec, inputs.payload_dir)
        body = P.render(spec, values, inputs.payload_dir)
        kind = KINDS[spec.kind]
        found = [f for f in kind.find(apis, body) if kind.ours(f) and (spec.kind != "downtime" or monitored_id(f) == monitor_id)]
        if not found:
            continue
        exported = restore(template, body, kind.comparable(found[0], body))
        path = out_dir / spec.file
        if path.exists() and P._read_json(path) == exported:
            continue  # same content: keep the file's own layout
        changed[path] = json.dumps(exported, indent=2, ensure_ascii=False) + "\n"
    for path, text in changed.items():
        staged = path.with_name(f".{path.name}.new")
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)
    return list(changed)


def restore(template, filled, live):
    """live in template form. filled is template with its placeholders filled (same shape): where live
    equals it, the template wins; where live differs, live is kept with the placeholder values put back."""
    if isinstance(template, dict) and isinstance(live, dict):
        return {k: restore(v, filled[k], live[k]) if k in live else v for k, v in template.items()}
    if isinstance(template, list) and isinstance(live, list):
        return [restore(t, f, item) for t, f, item in zip(template, filled, live)] + live[len(template) :]
    if live == filled:
        return template
    if isinstance(template, str) and isinstance(live, str):
        return unfill(template, filled, live)
    return live


def unfill(template: str, filled: str, live: str) -> str:
    """Put back the placeholders of template into an edited live string, value by value."""
    pieces = re.split(P.PLACEHOLDER, template)
    names, texts = pieces[1::2], pieces[0::2]
    pattern = "^" + "(.*?)".join(re.escape(t) for t in texts) + "$"
    values = re.match(pattern, filled, re.S)
    out = live
    for name, value in zip(names, values.groups() if values else ()):
        if value and len(value) > 2:  # a one- or two-character value would be replaced everywhere
            out = out.replace(value, "${" + name + "}")
    return out
