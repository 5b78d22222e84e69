"""The JSON payloads in payloads/: loading, placeholder filling and offline validation.

Validation runs before any request, on the whole set: first datadog-api-client's own models (an
unknown widget type, a missing required field, a wrong type or a field no schema knows fails, with the
field path), then this runbook's checks (query syntax basics, thresholds present and ordered, a message
that notifies someone in every state, downtime start without offset and not in the past, a parseable
RRULE), then the files against each other (each dashboard its own title, each downtime its own marker:
the sync finds them by these). Every message names the file and the field.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datadog_api_client import Configuration
from datadog_api_client.exceptions import OpenApiException
from datadog_api_client.model_utils import ModelComposed, ModelNormal, OpenApiModel, UnparsedObject, validate_and_convert_types
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v2.model.downtime_create_request import DowntimeCreateRequest
from dateutil.rrule import rrulestr

from recipes import ROOT
from recipes.api import messages
from recipes.errors import Refused

PAYLOAD_DIR = ROOT / "payloads"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
# Placeholder -> the configuration key that fills it (MONITOR_ID and START_DATE are computed).
CONFIG_KEYS = {"HOST": "api.host", "NOTIFY": "api.notify", "TIMEZONE": "api.timezone", "SERVICE": "apm.service", "ENV": "apm.env"}


class PayloadError(Refused):
    """A payload is unusable; the message names the file and the field."""


@dataclass(frozen=True)
class Spec:
    """One payload file: what it creates and the client model that checks it."""

    key: str
    file: str
    kind: str  # dashboard | monitor | downtime
    model: type
    overlay: str | None = None  # merged over the file by --at-least-once


SPECS = [
    Spec("timeboard", "timeboard.json", "dashboard", Dashboard),
    Spec("apm-dashboard", "apm-dashboard.json", "dashboard", Dashboard),
    Spec("monitor", "monitor.json", "monitor", Monitor, overlay="monitor-at-least-once.json"),
    Spec("downtime-weeknights", "downtime-weeknights.json", "downtime", DowntimeCreateRequest),
    Spec("downtime-weekends", "downtime-weekends.json", "downtime", DowntimeCreateRequest),
]


def spec(key: str) -> Spec:
    return next(s for s in SPECS if s.key == key)


def label(path: Path) -> str:
    """A file as messages name it: relative to the repository when inside it (payloads/monitor.json)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def source(spec: Spec, payload_dir: Path = PAYLOAD_DIR) -> str:
    return label(Path(payload_dir) / spec.file)


# --- loading and filling -------------------------------------------------------------
def load_template(spec: Spec, payload_dir: Path = PAYLOAD_DIR, at_least_once: bool = False) -> dict:
    """The payload as written, placeholders still in, with the at-least-once overlay if asked."""
    body = _read_json(payload_dir / spec.file)
    if at_least_once and spec.overlay:
        body = deep_merge(body, _read_json(payload_dir / spec.overlay))
    return body


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PayloadError(f"{label(path)}: file not found") from None
    except json.JSONDecodeError as err:
        raise PayloadError(f"{label(path)}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None


def deep_merge(base: dict, overlay: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def placeholders(obj) -> set[str]:
    """Every ${NAME} used anywhere in obj."""
    return {name for text in _strings(obj) for name in PLACEHOLDER.findall(text)}


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _strings(value)


def fill(obj, values: dict, file: str, path: str = ""):
    """Replace ${NAME}s; a string that is only a placeholder takes the value's own type (ints stay ints)."""
    if isinstance(obj, dict):
        return {k: fill(v, values, file, f"{path}.{k}" if path else k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [fill(v, values, file, f"{path}[{i}]") for i, v in enumerate(obj)]
    if not isinstance(obj, str):
        return obj
    for name in PLACEHOLDER.findall(obj):
        if values.get(name) in (None, ""):
            source = f" (set {CONFIG_KEYS[name]} or pass --define {name}=...)" if name in CONFIG_KEYS else ""
            raise PayloadError(f"{file}: {path}: placeholder ${{{name}}} is not filled{source}")
    whole = PLACEHOLDER.fullmatch(obj)
    if whole:
        return values[whole.group(1)]
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), obj)


def config_values(settings, overrides: dict | None = None) -> dict:
    """Placeholder values from the checked settings (``settings.of(c)``), then `--define NAME=VALUE` overrides."""
    values = {}
    for name, dotted in CONFIG_KEYS.items():
        section, key = dotted.split(".")
        values[name] = getattr(getattr(settings, section), key)
    values.update(overrides or {})
    return values


def parse_overrides(pairs) -> dict:
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not PLACEHOLDER.fullmatch("${" + name + "}"):
            raise PayloadError(f"--define {pair!r}: expected NAME=VALUE with an upper-case NAME")
        out[name] = int(value) if name == "MONITOR_ID" and value.isdigit() else value
    return out


def next_start_date(recurrence: dict, timezone: str, today: date | None = None) -> str:
    """The first date from `today` (default: today in the downtime's time zone) whose weekday the
    recurrence's RRULE lists."""
    days = re.search(r"BYDAY=([A-Z,]+)", recurrence.get("rrule", ""))
    wanted = {WEEKDAYS.index(d) for d in days.group(1).split(",") if d in WEEKDAYS} if days else set()
    wanted = wanted or set(range(7))  # no usable BYDAY: any day (validate() reports a bad rule)
    day = today or datetime.now(_zone(timezone)).date()
    while day.weekday() not in wanted:
        day += timedelta(days=1)
    return day.isoformat()


def fill_start_dates(template: dict, values: dict, file: str) -> dict:
    """Each recurrence's ${START_DATE} filled with its own first matching day (a Saturday rule and a
    Sunday rule in one downtime start on different dates). START_DATE, when given, is the earliest day."""
    body = copy.deepcopy(template)
    recurrences = body.get("data", {}).get("attributes", {}).get("schedule", {}).get("recurrences", [])
    if not isinstance(recurrences, list):
        return body
    earliest = None
    if values.get("START_DATE"):
        try:
            earliest = date.fromisoformat(str(values["START_DATE"]))
        except ValueError:
            raise PayloadError(f"{file}: START_DATE {values['START_DATE']!r} is not a date (YYYY-MM-DD)") from None
    for i, recurrence in enumerate(recurrences):
        if isinstance(recurrence, dict) and "${START_DATE}" in str(recurrence.get("start", "")):
            if earliest is None and not values.get("TIMEZONE"):
                continue  # fill() reports the missing placeholder
            when = next_start_date(recurrence, values.get("TIMEZONE") or "UTC", earliest)
            recurrence["start"] = fill(recurrence["start"], {**values, "START_DATE": when}, file,
                                       f"data.attributes.schedule.recurrences[{i}].start")
    return body


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PayloadError(f"api.timezone: {name!r} is not an IANA time zone (e.g. Europe/Paris)") from None


def render(spec: Spec, values: dict, payload_dir: Path = PAYLOAD_DIR, at_least_once: bool = False) -> dict:
    """The exact body to send: template filled, each downtime recurrence starting on its own next matching day."""
    template = load_template(spec, payload_dir, at_least_once)
    if spec.kind == "downtime":
        template = fill_start_dates(template, values, source(spec, payload_dir))
    return fill(template, values, source(spec, payload_dir))


# --- validation ------------------------------------------------------------------------
MODEL_CONFIG = Configuration()  # only for model checks: no keys, no host


def validate(spec: Spec, body: dict, where: str | None = None) -> list[str]:
    """Every problem found, each as 'file: field.path: message'; empty when the payload is good."""
    where = where or source(spec)
    problems = [f"{where}: {p}" for p in model_problems(body, spec.model)]
    if problems:  # our checks assume the types the models guarantee
        return problems
    checks = {"dashboard": dashboard_problems, "monitor": monitor_problems, "downtime": downtime_problems}
    problems += [f"{where}: {p}" for p in checks[spec.kind](body)]
    return problems


def problems_by_file(values: dict, payload_dir: Path = PAYLOAD_DIR, at_least_once: bool = False) -> dict[str, list[str]]:
    """Each payload rendered and validated (downtimes with a stand-in monitor id), then checked against
    the others; spec key -> its problems."""
    values = {**values, "MONITOR_ID": values.get("MONITOR_ID", 1)}
    found, bodies = {}, {}
    for each in SPECS:
        try:
            body = render(each, values, payload_dir, at_least_once)
        except PayloadError as err:
            found[each.key] = [str(err)]
            continue
        found[each.key] = validate(each, body, source(each, payload_dir))
        if not found[each.key]:
            bodies[each.key] = body
    for key, problem in set_problems(bodies, payload_dir):
        found[key].append(problem)
    return found


def check_all(values: dict, payload_dir: Path = PAYLOAD_DIR, at_least_once: bool = False) -> None:
    problems = [p for found in problems_by_file(values, payload_dir, at_least_once).values() for p in found]
    if problems:
        raise PayloadError("\n".join(problems))


def set_problems(bodies: dict, payload_dir: Path):
    """(spec key, problem) for marks two payloads share: the sync would take one object for the other."""
    marks = {"dashboard": ("title", lambda b: b.get("title")),
             "downtime": ("data.attributes.message", lambda b: _marker(b["data"]["attributes"].get("message") or ""))}
    seen = {}
    for each in SPECS:
        if each.key not in bodies or each.kind not in marks:
            continue
        field, mark_of = marks[each.kind]
        mark = mark_of(bodies[each.key])
        if mark and (each.kind, mark) in seen:
            other = seen[each.kind, mark]
            yield each.key, (f"{source(each, payload_dir)}: {field}: {mark!r} is also in {source(other, payload_dir)} "
                             f"(objects are found again by it: give each payload its own)")
        seen.setdefault((each.kind, mark), each)


def _marker(message: str) -> str:
    found = re.match(r"^\[dd-runbook:[\w-]+\]", message)
    return found.group(0) if found else ""


def model_problems(body: dict, model: type) -> list[str]:
    """Deserialize through the client's own model machinery; report missing, mistyped and unknown parts."""
    missing = list(_missing_required(body, model, ""))
    if missing:
        return missing
    try:
        instance = validate_and_convert_types(copy.deepcopy(body), (model,), ["body"], True, True, configuration=MODEL_CONFIG)
    except (OpenApiException, TypeError, ValueError) as err:
        return [str(err).replace("['body']", "").strip() or type(err).__name__]
    return list(_unparsed(instance, body, "")) or list(_unknown_fields(body, model, ""))


def _join(path: str, key) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


def _missing_required(data, cls, path):
    if not (isinstance(cls, type) and issubclass(cls, ModelNormal)) or not isinstance(data, dict):
        return
    params = inspect.signature(cls.__init__).parameters.values()
    required = [p.name for p in params if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD][1:]
    names = cls.attribute_map
    for name in required:
        if names.get(name, name) not in data:
            yield f"{_join(path, names.get(name, name))}: required field is missing"
    for name, key in names.items():
        if key in data:
            for kind in cls.openapi_types[name]:
                if isinstance(kind, list) and isinstance(data[key], list):
                    for i, item in enumerate(data[key]):
                        yield from _missing_required(item, kind[0], _join(_join(path, key), i))
                else:
                    yield from _missing_required(data[key], kind, _join(path, key))


def _unknown_fields(data, cls, path):
    """Keys the schema does not have (the client keeps them as extra properties and sends them on)."""
    cls = _schema_for(data, cls)
    if not (isinstance(cls, type) and issubclass(cls, ModelNormal)) or not isinstance(data, dict):
        return
    names = {key: name for name, key in cls.attribute_map.items()}
    for key, value in data.items():
        if key not in names:
            yield f"{_join(path, key)}: unknown field (not in the {cls.__name__} schema)"
            continue
        for kind in cls.openapi_types[names[key]]:
            if isinstance(kind, list) and isinstance(value, list):
                for i, item in enumerate(value):
                    yield from _unknown_fields(item, kind[0], _join(_join(path, key), i))
            elif isinstance(kind, type) and issubclass(kind, OpenApiModel):
                yield from _unknown_fields(value, kind, _join(path, key))


def _schema_for(data, cls):
    """A oneOf resolved to the candidate this data is: by its `type`, else the one knowing most of its keys."""
    if not (isinstance(cls, type) and issubclass(cls, ModelComposed)) or not isinstance(data, dict):
        return cls
    candidates = [c for c in cls._composed_schemas.get("oneOf", []) if isinstance(c, type) and issubclass(c, ModelNormal)]
    typed = [c for c in candidates if data.get("type") in _allowed_types(c)]
    return max(typed or candidates, key=lambda c: len(set(data) & set(c.attribute_map.values())), default=cls)


def _unparsed(model, raw, path):
    """Parts the client could not match to any known schema (it marks them, and their parents, unparsed)."""
    if isinstance(model, list):
        for i, item in enumerate(model):
            yield from _unparsed(item, raw[i] if isinstance(raw, list) and i < len(raw) else None, _join(path, i))
        return
    if not isinstance(model, OpenApiModel) or not getattr(model, "_unparsed", False):
        return
    inner = []
    if isinstance(model, ModelComposed):
        for each in model._composed_instances:
            if not isinstance(each, UnparsedObject):  # an unmatched oneOf: reported below, by its schema
                inner += _unparsed(each, raw, path)
    else:
        for name, value in model._data_store.items():
            key = getattr(model, "attribute_map", {}).get(name, name)
            inner += _unparsed(value, raw.get(key) if isinstance(raw, dict) else None, _join(path, key))
    yield from inner or [_unmatched(model, raw, path)]


def _unmatched(model, raw, path) -> str:
    kind = raw.get("type") if isinstance(raw, dict) else raw
    for candidate in getattr(type(model), "_composed_schemas", {}).get("oneOf", []):
        if kind in _allowed_types(candidate):
            missing = list(_missing_required(raw, candidate, path))
            if missing:
                return "; ".join(missing)
            return f"{path}: does not match the {candidate.__name__} schema"
    return f"{path or 'body'}: not a known {type(model).__name__} (got {kind!r})"


def _allowed_types(cls) -> set:
    if not (isinstance(cls, type) and issubclass(cls, ModelNormal)) or "type" not in cls.openapi_types:
        return set()
    return {v for t in cls.openapi_types["type"] for v in getattr(t, "allowed_values", ())}


# --- this runbook's own checks -----------------------------------------------------------
METRIC = r"(avg|sum|min|max|count|p50|p75|p90|p95|p99):[A-Za-z_][\w.]*\{[^{}]*\}(\s+by\s+\{[^{}]+\})?"
ROLLUP = re.compile(r"\.rollup\(\s*(\w+)\s*(?:,\s*(\d+))?\s*\)")
ANOMALIES = re.compile(r"anomalies\((.+),\s*'(\w+)'\s*,\s*([\d.]+)\s*(?:,.*)?\)$")
MONITOR_QUERY = re.compile(r"^(avg|max|min|sum)\(last_(\d+)([mhd])\):(.+?)\s*(>=|>|<=|<)\s*(-?[\d.]+)$")


def query_problems(query: str) -> list[str]:
    """Basic syntax: balanced brackets and quotes, at least one `agg:metric{scope}`, known functions' arguments."""
    problems = []
    pairs = {")": "(", "}": "{"}
    stack = []
    for char in query:
        if char in "({":
            stack.append(char)
        elif char in ")}":
            if not stack or stack.pop() != pairs[char]:
                return [f"unbalanced {char!r} in {query!r}"]
    if stack:
        return [f"unclosed {stack[-1]!r} in {query!r}"]
    if query.count("'") % 2:
        return [f"unclosed quote in {query!r}"]
    if not re.search(METRIC, query):
        problems.append(f"no `aggregation:metric{{scope}}` in {query!r}")
    for method, _ in ROLLUP.findall(query):
        if method not in {"sum", "avg", "min", "max", "count"}:
            problems.append(f"rollup method {method!r} is not sum/avg/min/max/count in {query!r}")
    if "anomalies(" in query:
        found = ANOMALIES.search(query)
        if not found or found.group(2) not in {"basic", "agile", "robust"}:
            problems.append(f"anomalies() needs (query, 'basic'|'agile'|'robust', bounds) in {query!r}")
    return problems


TOTAL_DURATION = re.compile(r"\bavg:(trace\.[\w.]+)\.duration\{([^{}]*)\}")


def dashboard_problems(body: dict) -> list[str]:
    problems = []
    for i, widget in enumerate(body.get("widgets", [])):
        for j, request in enumerate(widget.get("definition", {}).get("requests", []) or []):
            if isinstance(request, dict) and "q" in request:
                path = f"widgets[{i}].definition.requests[{j}].q"
                problems += [f"{path}: {p}" for p in query_problems(request["q"]) + latency_problems(request["q"])]
    return problems


def latency_problems(query: str) -> list[str]:
    """`trace.<span>.duration` is the total time of the spans in each interval, not a request's latency."""
    found = TOTAL_DURATION.search(query)
    if not found:
        return []
    span, scope = found.groups()
    return [f"avg:{span}.duration is the total span time, not the average latency: use avg:{span}{{{scope}}} "
            f"(the distribution) or sum:{span}.duration{{{scope}}}.rollup(sum) / sum:{span}.hits{{{scope}}}.rollup(sum)"]


def monitor_problems(body: dict) -> list[str]:
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


def threshold_order(thresholds: dict, above: bool) -> list[str]:
    """An alert above N warns below N first (and the reverse): otherwise the warning never fires first."""
    warning, critical = thresholds.get("warning"), thresholds["critical"]
    if warning is None or (warning < critical if above else warning > critical):
        return []
    side = "equal to" if warning == critical else ("above" if warning > critical else "below")
    return [f"options.thresholds.warning ({warning}) is {side} critical ({critical})"]


START = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def downtime_problems(body: dict, today: date | None = None) -> list[str]:
    schedule = body.get("data", {}).get("attributes", {}).get("schedule", {})
    problems, zone = [], ZoneInfo("UTC")
    if "timezone" in schedule:
        try:
            zone = _zone(schedule["timezone"])
        except PayloadError:
            problems.append(f"data.attributes.schedule.timezone: {schedule['timezone']!r} is not an IANA time zone")
    today = today or datetime.now(zone).date()
    if schedule.get("start"):
        problems += past_start("data.attributes.schedule.start", schedule["start"], today)
    for i, recurrence in enumerate(schedule.get("recurrences", [])):
        problems += recurrence_problems(f"data.attributes.schedule.recurrences[{i}]", recurrence, today)
    return problems


def recurrence_problems(path: str, recurrence: dict, today: date) -> list[str]:
    start, rule = recurrence.get("start") or "", recurrence.get("rrule", "")
    problems = []
    if start and not START.match(start):
        problems.append(f"{path}.start: {start!r} must be a local time without offset, like 2026-01-05T19:00")
    elif start:
        problems += past_start(f"{path}.start", start, today)
    if not re.fullmatch(r"\d+[mhdw]", recurrence.get("duration", "")):
        problems.append(f"{path}.duration: {recurrence.get('duration')!r} must be a number and m/h/d/w, like 14h")
    if re.search(r"\b(DTSTART|DTEND|DURATION)\b", rule):
        return problems + [f"{path}.rrule: DTSTART, DTEND and DURATION are not accepted (use start and duration)"]
    try:
        rrulestr(rule, dtstart=datetime.fromisoformat(start) if START.match(start) else datetime(2026, 1, 5))
    except (ValueError, TypeError) as err:
        problems.append(f"{path}.rrule: {rule!r} is not a valid RRULE ({err})")
    return problems


def past_start(path: str, start: str, today: date) -> list[str]:
    """A start before today is a typo or a stale copy (the payloads take ${START_DATE}, the next matching day)."""
    try:
        day = datetime.fromisoformat(start).date()
    except ValueError:
        return []
    if day >= today:
        return []
    return [f"{path}: {start} is in the past (today is {today.isoformat()}): use ${{START_DATE}}T<time>, the next day the rule allows"]
