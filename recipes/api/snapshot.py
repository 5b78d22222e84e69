"""snapshot: the last hand step of Visualizing Data, a graph snapshot of the past 5 minutes sent with the @ notation.

Datadog renders a graph snapshot asynchronously: `GET /api/v1/graph/snapshot` answers at once with the URL
the PNG will have, and the URL answers 403 until it is drawn. This module asks for the snapshot of one of
the timeboard's widgets, waits (bounded) until the image is there, then posts an event whose text shows the
image and @-mentions `api.notify`, which notifies that handle. The event carries the runbook's mark, so a
re-run within the same window finds it instead of posting again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import urllib3
from datadog_api_client.v1.model.event_create_request import EventCreateRequest
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from recipes.api import client, payloads, sync
from recipes.api.client import Apis, call
from recipes.api.kinds.monitor import MONITOR_TAG
from recipes.api.models import to_json
from recipes import settings as schema
from recipes.errors import Failed, Refused

MARK = "[dd-runbook:snapshot]"
TAGS = [MONITOR_TAG, "runbook:snapshot"]
PNG_SIGNATURE = b"\x89PNG"

clock = time.time  # the tests fix one moment for the window


@dataclass
class Shot:
    """What the task sends: one widget's query over one window, and who is told."""

    title: str
    query: str
    start: int
    end: int
    notify: str

    @property
    def minutes(self) -> int:
        return (self.end - self.start) // 60

    def event_title(self) -> str:
        return f"{MARK} {self.title}, past {self.minutes} min"

    def event_text(self, url: str) -> str:
        return (f"%%% \n![{self.title}]({url})\n\n{self.title}, the past {self.minutes} minutes: a snapshot sent by "
                f"`./run snapshot`. {self.notify}\n %%%")

    def event_body(self, url: str) -> EventCreateRequest:
        return EventCreateRequest(title=self.event_title(), text=self.event_text(url), tags=TAGS, date_happened=self.end,
                                  alert_type="info", source_type_name="my apps")  # dated in its window: found again


def notify_of(c) -> str:
    """api.notify, refused while it is still the shipped example (the mention would notify nobody you know)."""
    refusal = schema.examples_left(c).get("api.notify")
    if refusal:
        raise Refused(refusal)
    return schema.of(c).api.notify.strip()


def widget_query(inputs: sync.Inputs, wanted: str | None) -> tuple[str, str]:
    """(title, query) of the timeboard widget titled `wanted`, or of its my_metric graph by default."""
    body = inputs.payloads.body("timeboard")
    widgets = [(w["definition"].get("title", ""), r["q"]) for w in body.get("widgets", [])
               for r in w.get("definition", {}).get("requests", [])[:1] if r.get("q")]
    if wanted is None:
        found = [w for w in widgets if w[1].startswith("avg:my_metric") and ".rollup(" not in w[1]]
    else:
        found = [w for w in widgets if w[0].lower() == wanted.strip().lower()]
    if not found:
        titles = "; ".join(repr(t) for t, _ in widgets)
        what = f"no widget titled {wanted!r}" if wanted is not None else "no my_metric graph"
        raise Refused(f"option --widget: {inputs.payloads.source('timeboard')} has {what}; its widgets: {titles}")
    return found[0]


def requests_shown(shot: Shot) -> list[str]:
    """The two requests, as --dry-run prints them (the snapshot URL is not known before the first answer)."""
    event = shot.event_body("<snapshot_url>").to_dict()
    params = f"metric_query={shot.query}&start={shot.start}&end={shot.end}&title={shot.title}"
    return [f"GET /api/v1/graph/snapshot?{params}", "POST /api/v1/events " + json.dumps(event, indent=2)]


def posted_before(apis: Apis, shot: Shot) -> dict | None:
    """The runbook's event for this widget posted within the window, if any."""
    with call("list events", apis.where):
        answer = apis.events.list_events(start=shot.start, end=shot.end + 60, tags=",".join(TAGS))
    mine = [to_json(e) for e in answer.events or [] if str(e.title or "").startswith(shot.event_title())]
    return mine[0] if mine else None


def take(apis: Apis, shot: Shot) -> str:
    with call("take a graph snapshot", apis.where):
        answer = apis.snapshots.get_graph_snapshot(start=shot.start, end=shot.end, metric_query=shot.query,
                                                   title=shot.title)
    return answer.snapshot_url


def wait_for_image(url: str, wait: float, pause: float, console) -> int:
    """Poll the image URL until it answers a PNG; the number of looks. Failed (nothing posted) when time is up."""
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=min(10.0, wait)))
    deadline, looks = time.monotonic() + wait, 0
    columns = (SpinnerColumn(), TextColumn("waiting for the snapshot to render"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        progress.add_task("render", total=None)
        while True:
            looks += 1
            try:
                answer = http.request("GET", url, preload_content=True)
                if answer.status == 200 and answer.data.startswith(PNG_SIGNATURE):
                    return looks
            except urllib3.exceptions.HTTPError:
                pass  # not there yet, or a hiccup: look again until the time is up
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f"the snapshot did not render within {wait:g} s ({looks} looks; nothing was posted): {url}")
            time.sleep(min(pause, left))


def post(apis: Apis, shot: Shot, url: str) -> dict:
    body = shot.event_body(url)
    answer = client.post(apis, "post the snapshot event", lambda: apis.events.create_event(body),
                         look_up=lambda: posted_before(apis, shot))
    return answer if isinstance(answer, dict) else to_json(answer.event)


def timeboard_link(apis: Apis, inputs: sync.Inputs, shot: Shot, base: str) -> str | None:
    """The timeboard opened on the same live window, or None when it was never created."""
    live = sync.mine(apis, payloads.spec("timeboard"), inputs.payloads.body("timeboard"))
    if not live:
        return None
    path = live[0].get("url") or f"/dashboard/{live[0]['id']}"
    return f"{base}{path}?from_ts={shot.start * 1000}&to_ts={shot.end * 1000}&live=true"
