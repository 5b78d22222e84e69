"""Graph snapshots and posted events: GET /api/v1/graph/snapshot answers at once with the URL where the
image will be, and the image appears there later (snapshots render asynchronously); POST /api/v1/events
adds to the event stream that telemetry.list_events reads.

Tests steer the rendering: `fake.snapshots.render_after` polls of the image answer 403 before it is
there, and `fake.snapshots.broken` keeps it from ever appearing.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from tests.fakedd.common import ApiError, first
from tests.fakedd.rules import copies

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # enough of a PNG for a client that checks the signature


@dataclass
class Snapshots:
    render_after: int = 1  # polls of an image that answer 403 first (Datadog's not-yet-rendered answer)
    broken: bool = False
    polls: dict[str, int] = field(default_factory=dict)


@copies("graph snapshot", "GET /api/v1/graph/snapshot?metric_query=&start=&end= answers {graph_def, metric_query, "
                          "snapshot_url} at once; start and end are required (400 without); the URL answers 403 "
                          "until the PNG is rendered")
def take(fake, query, body):
    try:
        start, end = int(first(query, "start", "")), int(first(query, "end", ""))
    except ValueError:
        raise ApiError(400, "start and end are required (POSIX timestamps)") from None
    metric = first(query, "metric_query", "")
    if not metric or end <= start:
        raise ApiError(400, "metric_query is required and end must be after start")
    name = hashlib.sha1(f"{metric}{start}{end}{fake.new_id()}".encode()).hexdigest()[:24]
    url = f"{fake.url}/snapshot/view/dd-snapshots-prod/org_321813/{time.strftime('%Y-%m-%d')}/{name}.png"
    graph_def = '{"requests": [{"q": "%s"}], "viz": "timeseries"}' % metric.replace('"', '\\"')
    return 200, {"graph_def": graph_def, "metric_query": metric, "snapshot_url": url}


def view(fake, path: str):
    """The image itself (no keys: the URL is the secret)."""
    polls = fake.snapshots.polls[path] = fake.snapshots.polls.get(path, 0) + 1
    if fake.snapshots.broken or polls <= fake.snapshots.render_after:
        return 403, {"errors": ["Forbidden"]}
    return 200, PNG


@copies("events", "POST /api/v1/events answers 202 {event: {id, title, text, tags, url, date_happened, ...}, "
                  "status: ok}; the event then shows in GET /api/v1/events; an @handle in the text notifies it")
def post_event(fake, query, body):
    body = body or {}
    if not body.get("title") or not body.get("text"):
        raise ApiError(400, "Event title and text are required")
    event_id = fake.new_id() * 1000003
    event = {"id": event_id, "id_str": str(event_id), "title": body["title"], "text": body["text"],
             "tags": list(body.get("tags") or []), "date_happened": int(body.get("date_happened") or time.time()),
             "alert_type": body.get("alert_type", "info"), "priority": body.get("priority", "normal"),
             "source_type_name": body.get("source_type_name", "my apps"),
             "url": f"/event/event?id={event_id}"}
    fake.telemetry.events.append(event)
    return 202, {"event": event, "status": "ok"}


ROUTES = [
    (r"/api/v1/graph/snapshot", "GET", take),
    (r"/api/v1/events", "POST", post_event),
]
