"""A payload file as written: read (with its overlay), its ``${NAME}`` placeholders and what fills them.

Nothing here knows what a payload creates (``recipes/api/kinds/``) or checks it against the client's models
(``recipes/api/models.py``). Every message names the file and the field.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from recipes import ROOT
from recipes.errors import Refused

PAYLOAD_DIR = ROOT / "payloads"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# Placeholder -> the configuration key that fills it (MONITOR_ID, START_DATE and LINK_<KEY> are computed).
CONFIG_KEYS = {"HOST": "api.host", "NOTIFY": "api.notify", "TIMEZONE": "api.timezone", "SERVICE": "apm.service", "ENV": "apm.env",
               "SITE": "site.pages"}
WIDGET = "$widget"  # {"$widget": "<payload key>: <widget title as written>"}: that dashboard widget's definition


class PayloadError(Refused):
    """A payload is unusable; the message names the file and the field."""


def label(path: Path) -> str:
    """A file as messages name it: relative to the repository when inside it (payloads/monitor.json)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def read_json(path: Path) -> dict:
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


def placeholder_names(folder: Path) -> set[str]:
    """Every ``${NAME}`` the payload files of ``folder`` hold (overlays included): what ``--define`` may set."""
    return {name for path in sorted(Path(folder).glob("*.json")) for name in PLACEHOLDER.findall(path.read_text())}


def parse_overrides(pairs, known: set[str] | None = None) -> dict:
    """``--define NAME=VALUE`` pairs as values; a name no payload holds is refused with the names there are."""
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not PLACEHOLDER.fullmatch("${" + name + "}"):
            raise PayloadError(f"--define {pair!r}: expected NAME=VALUE with an upper-case NAME")
        if known is not None and name not in known:
            raise PayloadError(f"--define {pair!r}: no payload holds ${{{name}}}; the names are {', '.join(sorted(known))}")
        out[name] = int(value) if name == "MONITOR_ID" and value.isdigit() else value
    return out


def link_name(key: str) -> str:
    """The placeholder of the web app address of the object a payload makes: LINK_TIMEBOARD, LINK_APM_DASHBOARD."""
    return "LINK_" + key.upper().replace("-", "_")


def widget_refs(obj) -> bool:
    """Whether obj holds a ``{"$widget": ...}`` reference."""
    if isinstance(obj, dict):
        return WIDGET in obj or any(widget_refs(v) for v in obj.values())
    return isinstance(obj, list) and any(widget_refs(v) for v in obj)


def resolve_widgets(obj, dashboards: dict, file: str, path: str = ""):
    """obj with each ``{"$widget": "<key>: <title>"}`` replaced by a copy of the definition of the widget of that
    title in the dashboard payload ``dashboards[key]`` (both as written, placeholders still in): a query shown in two
    places is written once."""
    if isinstance(obj, dict) and set(obj) == {WIDGET}:
        key, _, title = str(obj[WIDGET]).partition(": ")
        if key not in dashboards:
            raise PayloadError(f"{file}: {path}.{WIDGET}: {obj[WIDGET]!r} names no dashboard payload "
                               f"(expected '<key>: <widget title>', key one of {', '.join(sorted(dashboards))})")
        definitions = [w.get("definition", {}) for w in dashboards[key].get("widgets", [])]
        found = [d for d in definitions if d.get("title") == title]
        if len(found) != 1:
            titles = "; ".join(repr(d.get("title")) for d in definitions)
            raise PayloadError(f"{file}: {path}.{WIDGET}: {key} has {'no' if not found else 'more than one'} widget "
                               f"titled {title!r} (its titles: {titles})")
        return copy.deepcopy(found[0])
    if isinstance(obj, dict):
        return {k: resolve_widgets(v, dashboards, file, f"{path}.{k}" if path else k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve_widgets(v, dashboards, file, f"{path}[{i}]") for i, v in enumerate(obj)]
    return obj
