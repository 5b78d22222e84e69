"""The JSON payloads in payloads/: which files, what each creates, and the set one run reads, fills and checks once.

Checking runs before any request, on the whole set: first datadog-api-client's own models (an unknown widget
type, a missing required field, a wrong type or a field no schema knows fails, with the field path:
recipes/api/models.py), then the kind's own checks (recipes/api/kinds/: query syntax basics, thresholds present
and ordered, a message that notifies someone in every state, downtime start without offset and not in the past,
a parseable RRULE), then the files against each other (each payload its own mark: the sync finds the objects
again by it). Every message names the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recipes.api.kinds import DASHBOARD, DOWNTIME, MONITOR, NOTEBOOK, Kind
from recipes.api.models import model_problems
from recipes.api.template import (CONFIG_KEYS, PAYLOAD_DIR, PayloadError, config_values, deep_merge, fill, label,
                                  link_name, parse_overrides, placeholder_names, placeholders, read_json,
                                  resolve_widgets, widget_refs)

# What callers take from here, template.py's names among them.
__all__ = ["CONFIG_KEYS", "PAYLOAD_DIR", "PayloadError", "PayloadSet", "SPECS", "Spec", "config_values", "label",
           "load_template", "parse_overrides", "placeholder_names", "placeholders", "problems_by_file", "render",
           "source", "spec", "validate"]

STAND_IN_MONITOR_ID = 1  # a downtime is checked (and filled) aimed at it until the monitor's id is known
AS_FILLED = object()  # PayloadSet.body: the downtime as filled, not aimed at another monitor
PENDING_LINK = "#not-created-yet"  # a ${LINK_<KEY>} whose object is not found (yet): apply fills the real one


@dataclass(frozen=True)
class Spec:
    """One payload file: the kind of object it creates."""

    key: str
    file: str
    kind: Kind
    overlay: str | None = None  # merged over the file by --at-least-once

    @property
    def model(self) -> type:
        return self.kind.model


SPECS = [  # in dependency order: a downtime mutes the monitor, the notebook links to every other object
    Spec("timeboard", "timeboard.json", DASHBOARD),
    Spec("apm-dashboard", "apm-dashboard.json", DASHBOARD),
    Spec("monitor", "monitor.json", MONITOR, overlay="monitor-at-least-once.json"),
    Spec("downtime-weeknights", "downtime-weeknights.json", DOWNTIME),
    Spec("downtime-weekends", "downtime-weekends.json", DOWNTIME),
    Spec("notebook", "notebook.json", NOTEBOOK),
]
LINKS = {link_name(each.key): each.key for each in SPECS}  # ${LINK_<KEY>} -> the payload whose object it opens


def spec(key: str) -> Spec:
    return next(s for s in SPECS if s.key == key)


def source(spec: Spec, payload_dir: Path = PAYLOAD_DIR) -> str:
    return label(Path(payload_dir) / spec.file)


def load_template(spec: Spec, payload_dir: Path = PAYLOAD_DIR, at_least_once: bool = False) -> dict:
    """The payload as written, placeholders still in, with the at-least-once overlay if asked."""
    body = read_json(Path(payload_dir) / spec.file)
    if at_least_once and spec.overlay:
        body = deep_merge(body, read_json(Path(payload_dir) / spec.overlay))
    return body


def _filled(spec: Spec, template: dict, values: dict, payload_dir: Path, templates: dict | None = None) -> dict:
    """The template with its widget references resolved (`templates`: the set's, by key; else read from
    payload_dir), its computed values (the kind's `prepare`, links not known yet as PENDING_LINK) and placeholders filled."""
    where = source(spec, payload_dir)
    if templates is None:  # one file on its own: the dashboards it refers to read from its folder
        templates = {each.key: load_template(each, payload_dir) for each in SPECS if each.kind is DASHBOARD} \
            if widget_refs(template) else {}
    dashboards = {each.key: templates[each.key] for each in SPECS if each.kind is DASHBOARD and each.key in templates}
    resolved = resolve_widgets(template, dashboards, where)
    values = {**{name: PENDING_LINK for name in LINKS}, **values}
    return fill(spec.kind.prepare(resolved, values, where), values, where)


def render(spec: Spec, values: dict, payload_dir: Path = PAYLOAD_DIR, at_least_once: bool = False) -> dict:
    """The exact body to send for one payload, read from its file (a run reads the whole set once: `PayloadSet`)."""
    return _filled(spec, load_template(spec, payload_dir, at_least_once), values, payload_dir)


def validate(spec: Spec, body: dict, where: str | None = None) -> list[str]:
    """Every problem found, each as 'file: field.path: message'; empty when the payload is good."""
    where = where or source(spec)
    problems = [f"{where}: {p}" for p in model_problems(body, spec.model)]
    if problems:  # the kind's checks assume the types the models guarantee
        return problems
    return [f"{where}: {p}" for p in spec.kind.lint(body)]


class PayloadSet:
    """Every payload of one run, each file read and filled once with the run's values (a downtime with a stand-in
    monitor id until `aimed_at` gives it the real one). A payload that cannot be read or filled raises its
    PayloadError when its body is asked for; `check()` refuses the set on any problem at all."""

    def __init__(self, values: dict, payload_dir: Path = PAYLOAD_DIR, at_least_once: bool = False):
        self.values = dict(values)
        self.payload_dir = Path(payload_dir)
        self.at_least_once = at_least_once
        filled = {**self.values, "MONITOR_ID": self.values.get("MONITOR_ID", STAND_IN_MONITOR_ID)}
        self._templates, self._bodies, self._errors = {}, {}, {}
        for each in SPECS:
            try:
                self._templates[each.key] = load_template(each, self.payload_dir, at_least_once)
                self._bodies[each.key] = _filled(each, self._templates[each.key], filled, self.payload_dir, self._templates)
            except PayloadError as error:
                self._errors[each.key] = error
        self._problems: dict[str, list[str]] | None = None

    def source(self, key: str) -> str:
        return source(spec(key), self.payload_dir)

    def template(self, key: str) -> dict:
        """The file as written (with the overlay when at least once)."""
        if key in self._errors:
            raise self._errors[key]
        return self._templates[key]

    def body(self, key: str, monitor_id=AS_FILLED, links: dict | None = None) -> dict:
        """The body to send; a downtime's aimed at `monitor_id` when given (None: the monitor is not created yet);
        with `links` (payload key -> web app address of its object), each ${LINK_<KEY>} filled with its own."""
        if key in self._errors:
            raise self._errors[key]
        kind = spec(key).kind
        if kind.mutes_monitor and monitor_id is not AS_FILLED:
            return kind.aimed_at(self._bodies[key], monitor_id)
        if links:
            values = {**self.values, **{link_name(k): address for k, address in links.items()}}
            return _filled(spec(key), self._templates[key], values, self.payload_dir, self._templates)
        return self._bodies[key]

    def links(self, key: str) -> list[str]:
        """The payload keys whose object's address the payload `key` holds (its ${LINK_<KEY>}s), in SPECS order."""
        used = placeholders(self.template(key))
        return [each.key for each in SPECS if link_name(each.key) in used]

    def problems(self) -> dict[str, list[str]]:
        """Spec key -> its problems: each payload against its model and its kind's checks, then against the others."""
        if self._problems is None:
            found, good = {}, {}
            for each in SPECS:
                if each.key in self._errors:
                    found[each.key] = [str(self._errors[each.key])]
                    continue
                found[each.key] = validate(each, self._bodies[each.key], self.source(each.key))
                if not found[each.key]:
                    good[each.key] = self._bodies[each.key]
            for key, problem in self._shared_marks(good):
                found[key].append(problem)
            self._problems = found
        return self._problems

    def check(self) -> None:
        """Refuse the set (one PayloadError listing every problem) unless every payload is good."""
        problems = [p for found in self.problems().values() for p in found]
        if problems:
            raise PayloadError("\n".join(problems))

    def _shared_marks(self, bodies: dict):
        """(spec key, problem) for marks two payloads share: the sync would take one object for the other."""
        seen = {}
        for each in SPECS:
            if each.key not in bodies:
                continue
            mark = each.kind.mark(bodies[each.key])
            if mark and (each.kind, mark) in seen:
                other = seen[each.kind, mark]
                yield each.key, (f"{self.source(each.key)}: {each.kind.mark_field}: {mark!r} is also in "
                                 f"{self.source(other.key)} (objects are found again by it: give each payload its own)")
            seen.setdefault((each.kind, mark), each)


def problems_by_file(values: dict, payload_dir: Path = PAYLOAD_DIR, at_least_once: bool = False) -> dict[str, list[str]]:
    """Each payload read, filled (downtimes with a stand-in monitor id) and checked; spec key -> its problems."""
    return PayloadSet(values, payload_dir, at_least_once).problems()
