"""Datadog monitor messages offline, the one parser of their templates: render the text each state sends
(the previews), lint it like the monitor editor (the previews' notes), and the problems ``./run validate``
refuses (``problems``).

The template language is Datadog's: ``{{#is_alert}} ... {{/is_alert}}`` blocks (``{{^is_alert}}`` negates),
variables such as ``{{value}}`` or ``{{host.ip}}``, and @-handles that say who is notified.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

STATES = ("alert", "warning", "no_data", "recovery")

# Datadog's own list of what a monitor message may hold: DataDog/documentation,
# content/en/monitors/notify/variables.md (https://docs.datadoghq.com/monitors/notify/variables/).
# Conditional blocks -> the states (of those the previews render) in which their content is kept; "recovery" is
# back to OK from alert. is_match and is_exact_match test a variable instead (see _block_applies).
BLOCKS = {
    "is_alert": {"alert"},
    "is_warning": {"warning"},
    "is_no_data": {"no_data"},
    "is_recovery": {"recovery"},
    "is_alert_recovery": {"recovery"},
    "is_warning_recovery": set(),
    "is_no_data_recovery": set(),
    "is_alert_to_warning": set(),
    "is_renotify": set(),
    "is_unknown": set(),
    "is_priority": set(),  # {{#is_priority 'P1'}}, P1 to P5
    "is_exact_match": set(),
    "is_match": set(),
}
TRIGGER_BLOCKS = ("is_alert", "is_warning", "is_no_data")
ELSE = "else"  # {{else}} inside a block shows its content when the block's test fails

# Template variables (the page's table), and check_message of check monitors.
VARIABLES = {
    "value", "threshold", "warn_threshold", "ok_threshold", "comparator",
    "first_triggered_at", "first_triggered_at_epoch", "last_triggered_at", "last_triggered_at_epoch",
    "triggered_duration_sec", "check_message",
}
LOCAL_TIME = "local_time"  # {{local_time 'last_triggered_at' 'Asia/Tokyo'}}: a date variable in another zone
# Filled only when the monitor alerts per host (query grouped by host); any host tag's <key>.name too.
HOST_VARIABLES = {"host.name", "host.ip", "host.metadata_agent_version", "host.metadata_machine",
                  "host.metadata_platform", "host.metadata_processor"}
# Matching attribute and tag variables of log, trace analytics and RUM monitors.
EVENT_VARIABLE = re.compile(r"(?:log|span|rum)\.(?:(?:attributes|tags)\.(?:\[[^\]]+\]|[\w.@-]+)|link|\w+)")
TAG_KEY = r"(?:\[[^\]]+\]|[\w-]+)"  # a tag key, bracketed when it holds periods: {{[dot.key.test].name}}
GROUP_VARIABLE = re.compile(rf"(?P<key>@?{TAG_KEY})\.(?P<attribute>name|ip)")

TAG = re.compile(r"\{\{\s*([#^/]?)\s*([^{}]*?)\s*\}\}")
HANDLE = re.compile(r"(?<![\w.])@[A-Za-z0-9_.+-]+(?:@[A-Za-z0-9.-]+)?")
GROUP_BY = re.compile(r"\bby\s*\{([^}]*)\}")


@dataclass(frozen=True)
class Finding:
    """One lint result: level is "error" (the monitor is wrong) or "warning" (the editor's yellow note)."""

    level: str
    message: str


@dataclass
class _Scan:
    findings: list[Finding] = field(default_factory=list)
    handle_blocks: dict[str, set[str]] = field(default_factory=dict)  # handle -> blocks ("" = outside any)
    variables: list[str] = field(default_factory=list)


def group_keys(query: str) -> set[str]:
    """Tag keys a monitor query is grouped by (``... by {host,env}`` -> {"host", "env"})."""
    match = GROUP_BY.search(query or "")
    return {key.strip() for key in match.group(1).split(",") if key.strip()} if match else set()


def _scan(message: str) -> _Scan:
    scan, stack, pos = _Scan(), [], 0
    for tag in TAG.finditer(message):
        _note_handles(scan, message[pos:tag.start()], stack)
        pos = tag.end()
        sigil, name = tag.group(1), _block_name(tag.group(2))
        if sigil in ("#", "^"):
            if name not in BLOCKS:
                scan.findings.append(Finding("error", f"Unknown block {{{{{sigil}{name}}}}}."))
            stack.append(name)
        elif name == ELSE:
            if not stack:
                scan.findings.append(Finding("error", "{{else}} outside a block."))
        elif sigil == "/":
            if not stack:
                scan.findings.append(Finding("error", f"{{{{/{name}}}}} closes a block that was never opened."))
            elif stack[-1] != name:
                scan.findings.append(Finding("error", f"{{{{/{name}}}}} closes {{{{#{stack[-1]}}}}}: blocks are unbalanced."))
                stack.pop()
            else:
                stack.pop()
        else:
            scan.variables.append(tag.group(2))
    _note_handles(scan, message[pos:], stack)
    for name in reversed(stack):
        scan.findings.append(Finding("error", f"{{{{#{name}}}}} is never closed: blocks are unbalanced."))
    return scan


def _note_handles(scan: _Scan, text: str, stack: list[str]) -> None:
    for handle in HANDLE.findall(text):
        scan.handle_blocks.setdefault(handle, set()).add(stack[-1] if stack else "")


def lint(message: str, query: str = "") -> list[Finding]:
    """What Datadog's monitor editor would say about this message, for a monitor with this query."""
    scan = _scan(message)
    findings = list(scan.findings)
    groups = group_keys(query)
    for name in dict.fromkeys(scan.variables):
        if name in HOST_VARIABLES:
            if "host" not in groups:
                findings.append(Finding("warning", f"{{{{{name}}}}} is empty unless the monitor is grouped by host "
                                                   f"(add `by {{host}}` to the query)."))
        elif not _known_variable(name, groups):
            findings.append(Finding("error", f"Unknown template variable {{{{{name}}}}}."))
    if not scan.handle_blocks:
        findings.append(Finding("warning", "No @-handle in the message: nobody is notified."))
    for handle, blocks in scan.handle_blocks.items():
        if "" in blocks or "is_recovery" in blocks or "is_alert_recovery" in blocks:
            continue
        for block in TRIGGER_BLOCKS:
            if block in blocks:
                findings.append(Finding("warning", f"In message: {handle} is used in {block} but not in is_recovery. "
                                                   f"No recovery notification will be sent."))
    return findings


def problems(message: str, query: str, thresholds: dict, options: dict) -> list[str]:
    """What makes a monitor wrong, for ``./run validate``: the editor's errors (unbalanced or unknown blocks,
    unknown variables), a host variable the query leaves empty, and a state that can happen but whose
    notification reaches no @-handle."""
    scan = _scan(message)
    found = [f.message for f in lint(message, query) if f.level == "error"]
    if any(name in HOST_VARIABLES for name in scan.variables) and "host" not in group_keys(query):
        found.append("uses {{host.*}} but the query is not grouped `by {host}` (the variable stays empty)")
    if not scan.handle_blocks:
        return found + ["notifies nobody (no @-handle in it)"]
    states = ["alert"] + (["warning"] if thresholds.get("warning") is not None else [])
    states += (["no_data"] if options.get("notify_no_data") else []) + ["recovery"]
    silent = [state for state in states if not recipients(message, state)]
    if silent:
        found.append(f"notifies nobody on {', '.join(silent)} (no @-handle reaches that state)")
    return found


def _known_variable(name: str, groups: set[str]) -> bool:
    """A variable Datadog fills for this query: a template variable, local_time of one, a group's tag, any host
    tag when grouped by host, or an attribute of the matching log, span or RUM event."""
    if name in VARIABLES or EVENT_VARIABLE.fullmatch(name):
        return True
    if name.startswith(LOCAL_TIME + " "):
        try:
            arguments = shlex.split(name[len(LOCAL_TIME):])
        except ValueError:
            return False
        return len(arguments) == 2 and arguments[0] in VARIABLES
    grouped = GROUP_VARIABLE.fullmatch(name)
    if grouped:
        key = grouped["key"].strip("[]")
        return key in groups or ("host" in groups and grouped["attribute"] == "name")
    return name in groups


def render(message: str, state: str, values: dict[str, str]) -> str:
    """The text a notification in ``state`` carries: blocks kept or dropped, variables filled from ``values``."""
    if state not in STATES:
        raise ValueError(f"unknown monitor state {state!r}; expected one of {', '.join(STATES)}")
    out, keep, outer, pos = [], [True], [], 0
    for tag in TAG.finditer(message):
        if keep[-1]:
            out.append(message[pos:tag.start()])
        pos = tag.end()
        sigil, name = tag.group(1), tag.group(2)
        if sigil in ("#", "^"):
            shown = _block_applies(name, state, values)
            keep.append(keep[-1] and (shown if sigil == "#" else not shown))
            outer.append(keep[-2])
        elif sigil == "/":
            if len(keep) > 1:
                keep.pop()
                outer.pop()
        elif name == ELSE:
            if len(keep) > 1:
                keep[-1] = outer[-1] and not keep[-1]
        elif keep[-1]:
            out.append(str(values.get(name, "")))
    if keep[-1]:
        out.append(message[pos:])
    return _tidy("".join(out))


def _block_name(tag_text: str) -> str:
    """``is_match "host.name" "db"`` -> ``is_match``; a plain variable is returned whole."""
    return tag_text.split(None, 1)[0] if tag_text else tag_text


def _block_applies(tag_text: str, state: str, values: dict[str, str]) -> bool:
    name, _, rest = tag_text.partition(" ")
    if name in ("is_match", "is_exact_match"):
        try:
            variable, *wanted = shlex.split(rest)
        except ValueError:
            return False
        actual = str(values.get(variable, ""))
        return any(w == actual if name == "is_exact_match" else w in actual for w in wanted)
    return state in BLOCKS.get(name, set())


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy).strip()


def recipients(message: str, state: str) -> list[str]:
    """The @-handles notified in ``state``."""
    return list(dict.fromkeys(HANDLE.findall(render(message, state, {}))))
