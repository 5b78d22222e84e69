"""The JSON payloads in payloads/: loading, placeholder filling and offline validation.

Validation runs before any request: first datadog-api-client's own models (an unknown widget type, a
missing required field or a wrong type fails, with the field path), then this runbook's checks (query
syntax basics, thresholds present and ordered, downtime start without offset, a parseable RRULE).
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

PAYLOAD_DIR = Path(__file__).resolve().parent.parent / "payloads"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
# Placeholder -> the configuration key that fills it (MONITOR_ID and START_DATE are computed).
CONFIG_KEYS = {"HOST": "api.host", "NOTIFY": "api.notify", "TIMEZONE": "api.timezone", "SERVICE": "apm.service", "ENV": "apm.env"}


class PayloadError(Exception):
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
        raise PayloadError(f"{path.name}: file not found in {path.parent}") from None
    except json.JSONDecodeError as err:
        raise PayloadError(f"{path.name}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None


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


def config_values(config, overrides: dict | None = None) -> dict:
    """Placeholder values from configuration, then `--define NAME=VALUE` overrides."""
    values = {}
    for name, dotted in CONFIG_KEYS.items():
        section, key = dotted.split(".")
        values[name] = config.get(section, {}).get(key)
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
        template = fill_start_dates(template, values, spec.file)
    return fill(template, values, spec.file)


# --- validation ------------------------------------------------------------------------
MODEL_CONFIG = Configuration()  # only for model checks: no keys, no host


def validate(spec: Spec, body: dict) -> list[str]:
    """Every problem found, each as 'file: field.path: message'; empty when the payload is good."""
    problems = [f"{spec.file}: {p}" for p in model_problems(body, spec.model)]
    if problems:  # our checks assume the types the models guarantee
        return problems
    checks = {"dashboard": dashboard_problems, "monitor": monitor_problems, "downtime": downtime_problems}
    problems += [f"{spec.file}: {p}" for p in checks[spec.kind](body)]
    return problems


def model_problems(body: dict, model: type) -> list[str]:
    """Deserialize through the client's own model machinery; report missing, mistyped and unknown parts."""
    missing = list(_missing_required(body, model, ""))
    if missing:
        return missing
    try:
        instance = validate_and_convert_types(copy.deepcopy(body), (model,), ["body"], True, True, configuration=MODEL_CONFIG)
    except (OpenApiException, TypeError, ValueError) as err:
        return [str(err).replace("['body']", "").strip() or type(err).__name__]
    return list(_unparsed(instance, body, ""))


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


def dashboard_problems(body: dict) -> list[str]:
    problems = []
    for i, widget in enumerate(body.get("widgets", [])):
        for j, request in enumerate(widget.get("definition", {}).get("requests", []) or []):
            if isinstance(request, dict) and "q" in request:
                path = f"widgets[{i}].definition.requests[{j}].q"
                problems += [f"{path}: {p}" for p in query_problems(request["q"])]
    return problems


def monitor_problems(body: dict) -> list[str]:
    query = body.get("query", "")
    found = MONITOR_QUERY.match(query)
    if not found:
        return [f"query: expected `avg(last_5m):agg:metric{{scope}} [by {{tag}}] > N`, got {query!r}"]
    problems = [f"query: {p}" for p in query_problems(found.group(4))]
    comparator, critical_in_query = found.group(5), float(found.group(6))
    thresholds = body.get("options", {}).get("thresholds", {})
    if "critical" not in thresholds:
        return problems + ["options.thresholds.critical: required (the alert threshold)"]
    if float(thresholds["critical"]) != critical_in_query:
        problems.append(f"options.thresholds.critical: {thresholds['critical']} differs from the query's {found.group(6)}")
    warning = thresholds.get("warning")
    if warning is not None:
        above = comparator.startswith(">")
        if (above and warning >= thresholds["critical"]) or (not above and warning <= thresholds["critical"]):
            problems.append(f"options.thresholds.warning: {warning} must be {'below' if above else 'above'} critical {thresholds['critical']}")
    message = body.get("message", "")
    if "{{host." in message and "by {host}" not in found.group(4).replace(" ", " "):
        problems.append("message: uses {{host.*}} but the query is not grouped `by {host}` (the variable stays empty)")
    problems += message_problems(message)
    return problems


BLOCK = re.compile(r"\{\{#(is_\w+)\}\}(.*?)\{\{/\1\}\}", re.S)


def message_problems(message: str) -> list[str]:
    blocks = dict((name, text) for name, text in BLOCK.findall(message))
    opened = re.findall(r"\{\{#(is_\w+)\}\}", message)
    problems = [f"message: {{{{#{name}}}}} is not closed" for name in opened if name not in blocks]
    with_handle = {name for name, text in blocks.items() if "@" in text}
    if with_handle and with_handle != set(blocks):
        missing = ", ".join(sorted(set(blocks) - with_handle))
        problems.append(f"message: the @-handle is missing from {missing} (that state notifies no one)")
    return problems


START = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def downtime_problems(body: dict) -> list[str]:
    attributes = body.get("data", {}).get("attributes", {})
    schedule = attributes.get("schedule", {})
    problems = []
    if "timezone" in schedule:
        try:
            _zone(schedule["timezone"])
        except PayloadError:
            problems.append(f"data.attributes.schedule.timezone: {schedule['timezone']!r} is not an IANA time zone")
    for i, recurrence in enumerate(schedule.get("recurrences", [])):
        path = f"data.attributes.schedule.recurrences[{i}]"
        start, rule = recurrence.get("start", ""), recurrence.get("rrule", "")
        if start and not START.match(start):
            problems.append(f"{path}.start: {start!r} must be a local time without offset, like 2026-01-05T19:00")
        if not re.fullmatch(r"\d+[mhdw]", recurrence.get("duration", "")):
            problems.append(f"{path}.duration: {recurrence.get('duration')!r} must be a number and m/h/d/w, like 14h")
        if re.search(r"\b(DTSTART|DTEND|DURATION)\b", rule):
            problems.append(f"{path}.rrule: DTSTART, DTEND and DURATION are not accepted (use start and duration)")
            continue
        try:
            rrulestr(rule, dtstart=datetime.fromisoformat(start) if START.match(start) else datetime(2026, 1, 5))
        except (ValueError, TypeError) as err:
            problems.append(f"{path}.rrule: {rule!r} is not a valid RRULE ({err})")
    return problems
