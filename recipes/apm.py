"""APM on this machine: traffic to the app, and the whole APM section as a local demo needing no account.

The VM half (apm-app, apm-stop) is in ``recipes/vm/apm.py``.
"""

from __future__ import annotations

import json as jsonlib  # `json` is also a task option
from pathlib import Path
from typing import TYPE_CHECKING

from recipes.taskdef import task

from recipes import ROOT
from recipes.errors import Failed, Refused
from recipes.lazy import lazy
from recipes.terminal import task_console

if TYPE_CHECKING:
    from rich.console import Console

shutil = lazy("shutil")
tempfile = lazy("tempfile")
schema = lazy("recipes.settings")

TRAFFIC_HELP = {
    "url": "base URL of the app (default: the VM's forwarded port, http://127.0.0.1:<apm.port>)",
    "requests": "number of requests, 0 = bounded by --duration only (default 300)",
    "duration": "stop after this many seconds (default: no time bound)",
    "concurrency": "parallel connections, one thread each (default 4)",
    "route": "route to hit; repeat for several (default: /, /api/apm, /api/trace)",
    "no_keepalive": "open a new connection for every request, like the write-up's loop",
    "json": "print the report as JSON instead of a table",
}


@task(iterable=["route"], help=TRAFFIC_HELP)
def traffic(c, url=None, requests=300, duration=0.0, concurrency=4, route=None, no_keepalive=False, json=False):
    """Send traffic to the app's three routes and report counts, errors and latency percentiles."""
    from app.traffic import DEFAULT_ROUTES, Plan, TargetUnreachable, execute

    try:
        plan = Plan(
            url=url or f"http://127.0.0.1:{schema.of(c).apm.port}", routes=tuple(route or DEFAULT_ROUTES),
            requests=int(requests), duration=float(duration), concurrency=int(concurrency), keepalive=not no_keepalive,
        )
        report = execute(plan, as_json=json)
    except ValueError as exc:
        raise Refused(f"traffic: bad option: {exc}") from None
    except TargetUnreachable as exc:
        raise Refused(f"traffic: {exc} (start it with `./run apm-app`, or try `./run apm-demo`)") from None
    if report.errors:
        raise Failed(f"traffic: {report.errors} of {len(report.samples)} requests failed")


@task(
    help={
        "requests": "requests to send (default 300)",
        "concurrency": "parallel connections (default 4)",
        "server": "gunicorn (default, as on the VM) or dev (Flask's development server)",
        "json": "print the whole summary as JSON instead of tables",
        "save": "also write the summary (with a per-second timeline) to previews.apm_summary, which the "
                "APM dashboard picture reads (default artifacts/apm-demo.json)",
        "keep_logs": "keep the test agent's and the app's logs in a temporary folder and print its path",
    }
)
def apm_demo(c, requests=300, concurrency=4, server="gunicorn", json=False, save=False, keep_logs=False):
    """Run the whole APM section locally: test agent, traced app, traffic, and the service page it would show."""
    from app.demo import DemoSettings, run_demo
    from app.processes import ProcessFailed
    from app.traffic import TargetUnreachable

    schema.option("--requests", requests, schema.Count)
    schema.option("--concurrency", concurrency, schema.Count)
    console = task_console(stderr=json)  # with --json, stdout carries only the JSON
    apm = schema.of(c).apm
    try:
        settings = DemoSettings(service=apm.service, env=apm.env, version=apm.version,
                                requests=int(requests), concurrency=int(concurrency), server=server)
    except ValueError as exc:
        raise Refused(f"apm-demo: bad option: {exc}") from None
    workdir = Path(tempfile.mkdtemp(prefix="apm-demo-"))
    try:
        summary = run_demo(settings, workdir, quiet=json)
    except (ProcessFailed, TargetUnreachable) as exc:
        keep_logs = True
        raise Failed(f"apm-demo: {exc}") from None
    finally:
        if keep_logs:
            console.print(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    show_demo(console, summary, json)
    if save:
        where = schema.of(c).previews.apm_summary
        saved = ROOT / where
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(jsonlib.dumps(summary, indent=2) + "\n")
        console.print(f"summary written to {where}")
    check_demo(summary)


def show_demo(console: Console, summary: dict, as_json: bool) -> None:
    from app.service_page import render

    if as_json:
        print(jsonlib.dumps(summary, indent=2))
        return
    console.print(render(summary["services"]))
    logs = summary["log_correlation"]
    console.print(
        f"{summary['traces_received']} traces ({summary['spans_received']} spans) reached the test agent; "
        f"{logs['matching_received_spans']} of {logs['lines_with_ids']} app log lines with dd.trace_id/dd.span_id "
        "point at a span it received (what links Logs to Traces in Datadog)."
    )


def check_demo(summary: dict) -> None:
    """Fail the task if the agent saw fewer request traces than requests sent."""
    sent = summary["traffic"]["requests"]
    hits = sum(r["hits"] for s in summary["services"].values() for r in s["resources"].values())
    if hits < sent:
        raise Failed(f"apm-demo: {sent} requests sent but only {hits} request traces reached the test agent")
