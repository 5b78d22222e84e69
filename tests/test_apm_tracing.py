"""The app under the real ddtrace-run, sending to the real ddapm-test-agent (no Datadog account needed)."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from app.demo import DemoSettings, run_demo
from app.service_page import full_trace_id

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = {"GET /", "GET /api/apm", "GET /api/trace"}
APP_LINE = re.compile(r" - my_app - INFO - GET (?P<path>\S+) \[.*dd\.env=(?P<env>\S+) .*"
                      r"dd\.trace_id=(?P<trace>\w+) dd\.span_id=(?P<span>\d+)\]$")


def listening(url: str) -> bool:
    host, port = url.rsplit("/", 1)[-1].split(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One run: test agent + app under ddtrace-run (gunicorn) + 60 requests; non-default names prove config flows."""
    workdir = tmp_path_factory.mktemp("apm-demo")
    settings = DemoSettings(service="flask-test", env="test-env", version="9.9", requests=60, concurrency=3)
    summary = run_demo(settings, workdir, quiet=True)
    traces = json.loads((workdir / "traces.json").read_text())
    return summary, traces, (workdir / "app.log").read_text()


def test_each_request_is_one_trace_with_one_flask_request_root_span(demo):
    _, traces, _ = demo
    assert len(traces) == 60
    for trace in traces:
        roots = [span for span in trace if not span.get("parent_id")]
        assert [span["name"] for span in roots] == ["flask.request"]
        assert len({span["trace_id"] for span in trace}) == 1


def test_the_three_resources_are_received_with_service_env_version_as_configured(demo):
    summary, traces, _ = demo
    roots = [span for trace in traces for span in trace if not span.get("parent_id")]
    assert Counter(span["resource"] for span in roots) == {r: 20 for r in RESOURCES}
    assert {span["service"] for span in roots} == {"flask-test"}
    assert {span["meta"]["env"] for span in roots} == {"test-env"}
    assert {span["meta"]["version"] for span in roots} == {"9.9"}
    page = summary["services"]["flask-test"]
    assert {name: row["hits"] for name, row in page["resources"].items()} == {r: 20 for r in RESOURCES}
    assert all(row["errors"] == 0 and row["latency_ms"]["p50"] > 0 for row in page["resources"].values())


def test_the_timeline_for_dashboard_pictures_adds_up_to_the_hits(demo):
    summary, _, _ = demo
    rows = summary["timeline"]
    assert rows and rows[0]["t_s"] == 0
    assert sum(sum(row["hits"].values()) for row in rows) == 60
    assert all(row["p90_ms"] >= row["p50_ms"] for row in rows)


def test_app_log_lines_carry_the_ids_of_the_trace_that_served_them(demo):
    _, traces, log = demo
    by_id = {full_trace_id(trace): trace for trace in traces}
    lines = [m for m in map(APP_LINE.search, log.splitlines()) if m]
    assert len(lines) == 60
    for line in lines:
        trace = by_id[line["trace"]]  # KeyError: a log line naming a trace the agent never got
        root = next(span for span in trace if not span.get("parent_id"))
        assert root["resource"] == f"GET {line['path']}"
        assert line["span"] in {str(span["span_id"]) for span in trace}
        assert line["env"] == "test-env"


def test_the_log_format_is_the_exercises_plus_trace_fields(demo):
    _, _, log = demo
    line = next(line for line in log.splitlines() if " - my_app - " in line)
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - my_app - INFO - GET /\S* \[dd\.service=flask-test ", line)


def test_demo_stops_the_agent_and_the_app_it_started(demo):
    summary, _, _ = demo
    assert not listening(summary["agent_url"])
    assert not listening(summary["traffic"]["plan"]["url"])


def test_the_development_server_is_traced_the_same_way(tmp_path):
    summary = run_demo(DemoSettings(requests=6, concurrency=1, server="dev"), tmp_path, quiet=True)
    assert set(summary["services"]["flask"]["resources"]) == RESOURCES
    logs = summary["log_correlation"]  # werkzeug's access line is logged inside the span too
    assert logs["lines_with_ids"] == logs["matching_received_spans"] >= 6


def descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_ctrl_c_during_the_demo_stops_everything_it_started():
    proc = subprocess.Popen([str(ROOT / ".venv/bin/invoke"), "apm-demo", "--requests", "200000", "--json"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    started: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("gunicorn" in cmdline(p) for p in started):
            time.sleep(0.3)
            started |= descendants(proc.pid)
        assert started, "the demo started no process"
        time.sleep(1)
        started |= descendants(proc.pid)
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(30)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(alive(pid) for pid in started):
            time.sleep(0.05)
        assert [pid for pid in started if alive(pid)] == []
    finally:  # a failed test leaves nothing running: the demo and what it started, by PID
        if proc.poll() is None:
            proc.kill()
        for pid in started:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        proc.wait()


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
