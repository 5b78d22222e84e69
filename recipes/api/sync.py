"""Plan, apply, export and destroy the payloads against live Datadog objects, without a state file.

Each object is found again by a stable mark: dashboards by title, the monitor by name and the tag
`managed-by:dd-runbook`, downtimes by the `[dd-runbook:<name>]` marker opening their message (and the
monitor they mute), the notebook by its name and the mark in its first cell. Objects are planned and
written in three stages: what stands alone (dashboards, monitor), what mutes the monitor (downtimes,
aimed at its id), what links to the others (the notebook, its `${LINK_<KEY>}`s filled with their
addresses in the web app). Lists are read to their last page. Live objects are compared on the payload's own
fields only, so what the server adds (ids, timestamps, read-only fields, defaults) never shows as a
change, nor what it rewrites without changing the meaning (recipes/api/same.py), and an unchanged
object gets no write. Each kind (recipes/api/kinds/) says how its objects are found, compared and
written. The payload set is read, filled and checked once, before the first request, and a create
is never sent again before the object has been looked up.

Two runs on one checkout take turns (recipes/api/lock.py); two runs on two machines may both create
the same object. So after each create the run looks again for objects carrying the same mark: when
another one is older (it was there, or came meanwhile), the run keeps that one, deletes its own copy
and says so. Both runs keep the oldest by the same order (`age`), so they agree on which one stays.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from recipes.api import payloads as P
from recipes.api.client import Apis, ApiFailure, call, post
from recipes.api.kinds import MONITOR
from recipes.api.template import PLACEHOLDER, WIDGET, read_json


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


# --- comparison ------------------------------------------------------------------------
def plain_numbers(obj):
    """800.0 -> 800, so a float echoed by the server does not show as a change."""
    if isinstance(obj, dict):
        return {k: plain_numbers(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain_numbers(v) for v in obj]
    return int(obj) if isinstance(obj, float) and obj.is_integer() else obj


def diff_lines(desired: dict, live_projected: dict) -> list[str]:
    if desired == live_projected:
        return []
    before = json.dumps(plain_numbers(live_projected), indent=2, sort_keys=True).splitlines()
    after = json.dumps(plain_numbers(desired), indent=2, sort_keys=True).splitlines()
    return list(difflib.unified_diff(before, after, "live", "payload", lineterm="", n=2))


# --- plan ------------------------------------------------------------------------------------
@dataclass
class Inputs:
    """Everything a plan needs besides the live objects: the run's payload set and the payloads chosen."""

    payloads: P.PayloadSet
    only: tuple = ()  # spec keys; empty = all
    app: str = ""  # the web app's address (client.app_url): what ${LINK_<KEY>} links begin with

    @property
    def values(self) -> dict:
        return self.payloads.values

    def chosen(self, stage=None) -> list[P.Spec]:
        """The chosen payloads in dependency order; `stage`: only those of one stage (`stage_of`)."""
        return [s for s in P.SPECS if (not self.only or s.key in self.only) and (stage is None or stage_of(s.kind) == stage)]

    def objects(self) -> "Inputs":
        """The same run without the payloads that only link to the others (the notebook): the exercise's objects."""
        keys = tuple(s.key for s in self.chosen() if stage_of(s.kind) != LINKING)
        return Inputs(self.payloads, keys, self.app)


ALONE, MUTING, LINKING = 0, 1, 2  # the stages, in order


def stage_of(kind) -> int:
    """When a kind is planned: alone first, then what mutes the monitor, then what links to the others."""
    return LINKING if kind.links_others else MUTING if kind.mutes_monitor else ALONE


def preflight(inputs: Inputs) -> None:
    """The whole payload set checked, each file and against the others, before any request: a bad file
    stops the run before anything is created (the set checks itself once)."""
    inputs.payloads.check()


def offline_changes(inputs: Inputs) -> list[Change]:
    """Without keys: every selected payload, validated, as a create (nothing live to compare with)."""
    preflight(inputs)
    return [Change(spec, "create", body=inputs.payloads.body(spec.key, monitor_id=None), reason="not compared: no keys")
            for spec in inputs.chosen()]  # a notebook's links to objects not created yet: PENDING_LINK


def mine(apis: Apis, spec: P.Spec, body: dict) -> list[dict]:
    """Live objects carrying this payload's mark (a look-alike of someone else's is left alone)."""
    return [live for live in spec.kind.find(apis, body) if spec.kind.ours(live)]


def plan_one(apis: Apis, spec: P.Spec, body: dict, monitor_id=None) -> list[Change]:
    """The change for one payload, plus deletions of duplicates or strays that carry its mark."""
    kind = spec.kind
    found, extra = mine(apis, spec, body), []
    if kind.mutes_monitor:
        extra = [Change(spec, "delete", live=d, reason="stale: mutes another monitor") for d in found if kind.muted(d) != monitor_id]
        found = [d for d in found if kind.muted(d) == monitor_id]
    extra += [Change(spec, "delete", live=d, reason="duplicate") for d in found[1:]]
    if not found:
        return [Change(spec, "create", body=body)] + extra
    live = found[0]
    lines = diff_lines(body, kind.comparable(live, body))
    return [Change(spec, "update" if lines else "unchanged", body=body, live=live, diff=lines)] + extra


def plan(apis: Apis, inputs: Inputs) -> list[Change]:
    """Changes in dependency order: dashboards, the monitor, the downtimes that reference it, the notebook."""
    preflight(inputs)
    changes = first_changes(apis, inputs)
    changes += muting_changes(apis, inputs, current_monitor_id(apis, inputs))
    return changes + linking_changes(apis, inputs, changes)


def first_changes(apis: Apis, inputs: Inputs) -> list[Change]:
    """The dashboards and the monitor: what needs no monitor id."""
    return [ch for spec in inputs.chosen(ALONE) for ch in plan_one(apis, spec, inputs.payloads.body(spec.key))]


def muting_changes(apis: Apis, inputs: Inputs, monitor_id) -> list[Change]:
    """The downtimes, aimed at monitor_id (None: before the monitor exists, a visible stand-in id)."""
    return [ch for spec in inputs.chosen(MUTING)
            for ch in plan_one(apis, spec, inputs.payloads.body(spec.key, monitor_id), monitor_id)]


def linking_changes(apis: Apis, inputs: Inputs, before: list[Change]) -> list[Change]:
    """The notebook, its links filled with the addresses of the objects `before` (this run's changes), or of those
    found by their mark."""
    return [ch for spec in inputs.chosen(LINKING) for ch in plan_one(apis, spec, linked_body(apis, inputs, spec, before))]


def linked_body(apis: Apis, inputs: Inputs, spec: P.Spec, before: list[Change] = ()) -> dict:
    """The payload with each ${LINK_<KEY>} filled: the web app address of that object, from this run's changes,
    else found by its mark (not found: PENDING_LINK, until an apply creates it)."""
    links = {}
    for key in inputs.payloads.links(spec.key):
        planned = [ch for ch in before if ch.spec.key == key and ch.action != "delete"]
        if planned:
            live = planned[0].live  # None: a create not sent yet (a plan, a dry run)
        else:
            found = mine(apis, P.spec(key), inputs.payloads.body(key))
            live = found[0] if found else None
        if live is not None:
            links[key] = inputs.app + P.spec(key).kind.page(live)
    return inputs.payloads.body(spec.key, links=links)


def monitor_spec() -> P.Spec:
    return next(s for s in P.SPECS if s.kind is MONITOR)


def current_monitor_id(apis: Apis, inputs: Inputs):
    if "MONITOR_ID" in inputs.values:
        return inputs.values["MONITOR_ID"]
    found = MONITOR.find(apis, inputs.payloads.body(monitor_spec().key))
    return found[0]["id"] if found else None


# --- apply -----------------------------------------------------------------------------------
def apply_change(apis: Apis, change: Change) -> dict | None:
    """Perform one change; a create whose answer is lost or an error is looked up before it is sent again,
    and is settled against copies another run made (`settle`)."""
    kind, label = change.spec.kind, f"{change.action} {change.spec.key}"
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
    kind = change.spec.kind
    found = [live for live in kind.listed(apis, change.body) if kind.ours(live)]
    if kind.mutes_monitor:
        found = [d for d in found if kind.muted(d) == kind.muted(made)]
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
    kind = change.spec.kind
    found = mine(apis, change.spec, change.body)
    if kind.mutes_monitor:
        found = [d for d in found if kind.muted(d) == kind.aim(change.body)]
    return found[0] if found else None


def delete_once(apis: Apis, kind, live: dict, label: str) -> None:
    try:
        with call(label, apis.where):
            kind.delete(apis, live)
    except ApiFailure as err:
        if err.status != 404:  # 404: a retried DELETE whose first answer was lost; it is gone
            raise


def apply(apis: Apis, inputs: Inputs, on_change=None, dry_run: bool = False, on_start=None) -> list[Change]:
    """Bring live objects to the payloads; returns the changes done (or, dry-run, that would be done).
    Everything is validated first; the dashboards and the monitor are planned (read-only) before the
    first write, the downtimes once the monitor they mute exists (the kept one, when another run's
    copy was kept), the notebook once every object it links to is there.
    `on_start(change)` is called before each write, `on_change(change)` after it."""
    preflight(inputs)
    first = first_changes(apis, inputs)
    if not dry_run:
        for change in first:  # before any write
            if change.action in ("create", "update"):
                change.spec.kind.validate_online(apis, change.body)
    done = _apply_all(apis, first, on_change, dry_run, on_start)
    monitor_id = inputs.values.get("MONITOR_ID")
    written = [ch for ch in done if ch.spec.kind is MONITOR and ch.action != "delete"]
    muting = inputs.chosen(MUTING)
    if written:
        monitor_id = written[0].live["id"] if written[0].live else None
    elif monitor_id is None and muting:
        monitor_id = current_monitor_id(apis, inputs)
    if muting and monitor_id is None and not dry_run:
        raise ApiFailure("no monitor found to schedule downtimes for: run `./run monitor` (or `./run apply`) first")
    done += _apply_all(apis, muting_changes(apis, inputs, monitor_id), on_change, dry_run, on_start)
    return done + _apply_all(apis, linking_changes(apis, inputs, done), on_change, dry_run, on_start)


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
    for spec in reversed(inputs.chosen()):
        body = inputs.payloads.body(spec.key)
        changes += [Change(spec, "delete", live=live, reason="carries our mark") for live in mine(apis, spec, body)]
    return changes


def export(apis: Apis, inputs: Inputs, out_dir: Path) -> list[Path]:
    """Write each live object back in its payload's form, with the placeholders restored; returns the
    files written (a file whose content already matches is left as it is). Every object is read first;
    only then is each file replaced, in one rename, so a failed read leaves every file as it was.
    The payload set is read without the at-least-once overlay: the files are written back as they are."""
    changed: dict[Path, str] = {}
    monitor_id = current_monitor_id(apis, inputs)
    for spec in inputs.chosen():
        kind = spec.kind
        template = inputs.payloads.template(spec.key)
        body = inputs.payloads.body(spec.key, monitor_id if monitor_id is not None else P.STAND_IN_MONITOR_ID)
        if kind.links_others:
            body = linked_body(apis, inputs, spec)
        found = [f for f in kind.find(apis, body) if kind.ours(f) and (not kind.mutes_monitor or kind.muted(f) == monitor_id)]
        if not found:
            continue
        exported = restore(template, body, kind.comparable(found[0], body))
        path = out_dir / spec.file
        if path.exists() and read_json(path) == exported:
            continue  # same content: keep the file's own layout
        changed[path] = json.dumps(exported, indent=2, ensure_ascii=False) + "\n"
    for path, text in changed.items():
        staged = path.with_name(f".{path.name}.new")
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)
    return list(changed)


def restore(template, filled, live):
    """live in template form. filled is template with its placeholders filled (same shape): where live
    equals it, the template wins; where live differs, live is kept with the placeholder values put back.
    A widget reference ({"$widget": ...}) stays one while the widget is as the dashboard's payload has it."""
    if isinstance(template, dict) and WIDGET in template:
        return template if live == filled else live
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
    pieces = re.split(PLACEHOLDER, template)
    names, texts = pieces[1::2], pieces[0::2]
    pattern = "^" + "(.*?)".join(re.escape(t) for t in texts) + "$"
    values = re.match(pattern, filled, re.S)
    out = live
    for name, value in zip(names, values.groups() if values else ()):
        if value and len(value) > 2:  # a one- or two-character value would be replaced everywhere
            out = out.replace(value, "${" + name + "}")
    return out
