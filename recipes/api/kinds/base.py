"""What every kind of payload is: the object a kind of Datadog object is to the runbook.

A kind holds its client model, its lint (this runbook's own checks, after the model's), its mark (how a live
object is found again without a state file), its comparison rules (when a live object already matches, the
server's rewrites accepted: recipes/api/same.py) and its find, create, update and delete calls. payloads.py
checks and fills with it, sync.py plans and applies with it: a new kind is one new subclass, in its own module.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from recipes.api import same

NEVER = datetime.max.replace(tzinfo=timezone.utc)  # an object without a creation time sorts last


class Kind:
    """One kind of Datadog object; the defaults suit an object that stands alone (no monitor to mute)."""

    name = ""
    model: type = object  # the client model a payload is checked with and created from
    rules: dict = {}  # payload key -> comparison rules (recipes/api/same.py) beyond "the same number"
    mark_field = ""  # where a payload holds its mark, as messages name it
    mutes_monitor = False  # True: planned after the monitor, aimed at its id (`aimed_at`, `muted`)
    links_others = False  # True: planned last, its ${LINK_<KEY>}s filled with the other objects' addresses

    def __repr__(self) -> str:
        return self.name

    # --- offline: the payload ---
    def lint(self, body: dict) -> list[str]:
        """This runbook's checks of a body the client's model accepted; each 'field.path: message'."""
        return []

    def mark(self, body: dict) -> str:
        """The payload's mark: two payloads of a kind may not share one."""
        return ""

    def prepare(self, template: dict, values: dict, file: str) -> dict:
        """The template before its placeholders are filled (computed values the kind fills itself)."""
        return template

    # --- online: live objects ---
    def ours(self, live: dict) -> bool:
        """Whether a live object carries the runbook's mark (a look-alike of someone else's does not)."""
        raise NotImplementedError

    def find(self, apis, body: dict) -> list[dict]:
        """The live objects found by the payload's mark, whole, oldest first."""
        raise NotImplementedError

    def listed(self, apis, body: dict) -> list[dict]:
        """Like `find`, from one list read (enough to tell ids and ages apart)."""
        return self.find(apis, body)

    def age(self, live: dict):
        """The order in which copies were created: every run keeps the oldest by it."""
        raise NotImplementedError

    def comparable(self, live: dict, body: dict) -> dict:
        """The live object in the payload's shape and terms (recipes/api/same.py)."""
        return same.project(live, body, self.rules)

    def page(self, live: dict) -> str:
        """Where the live object opens in Datadog's web app, as a path on the site's app address."""
        raise NotImplementedError

    def validate_online(self, apis, body: dict) -> None:
        """Ask the API to check a body about to be written, where it can."""

    def create(self, apis, body: dict) -> dict:
        raise NotImplementedError

    def update(self, apis, live: dict, body: dict) -> dict:
        raise NotImplementedError

    def delete(self, apis, live: dict) -> None:
        raise NotImplementedError

    # --- a kind that mutes the monitor ---
    def aimed_at(self, body: dict, monitor_id) -> dict:
        """The body for the monitor `monitor_id` (None: not created yet)."""
        return body

    def muted(self, live: dict):
        """The id of the monitor a live object mutes."""
        return None

    def aim(self, body: dict):
        """The id of the monitor a body mutes."""
        return None


def created(stamp) -> datetime:
    """A creation time as the client gives it (a datetime written by str() or ISO 8601), in UTC."""
    try:
        when = datetime.fromisoformat(str(stamp))
    except (TypeError, ValueError):
        return NEVER
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


# --- metric queries, as dashboards and monitors write them --------------------------------------------------
METRIC = r"(avg|sum|min|max|count|p50|p75|p90|p95|p99):[A-Za-z_][\w.]*\{[^{}]*\}(\s+by\s+\{[^{}]+\})?"
ROLLUP = re.compile(r"\.rollup\(\s*(\w+)\s*(?:,\s*(\d+))?\s*\)")
ANOMALIES = re.compile(r"anomalies\((.+),\s*'(\w+)'\s*,\s*([\d.]+)\s*(?:,.*)?\)$")


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
