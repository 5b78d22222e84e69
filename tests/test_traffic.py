"""The traffic generator against the real app under gunicorn: counts, keep-alive, percentiles, refusals."""

import json
import random
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from app import processes
from app.stats import percentile, summarize
from app.traffic import Plan, TargetUnreachable, check_reachable, execute, run

ROOT = Path(__file__).resolve().parents[1]
ACCESS_LINE = re.compile(r'"GET (?P<path>\S+) HTTP/1\.[01]" (?P<status>\d{3}) ')


def brute_force_nearest_rank(values, p):
    """The smallest observed value with at least p% of the values at or below it."""
    for candidate in sorted(values):
        if sum(v <= candidate for v in values) >= p / 100 * len(values):
            return candidate


@pytest.fixture(scope="module")
def gunicorn_app(tmp_path_factory):
    """The exercise's app under plain gunicorn (gthread, keep-alive), access log in a file."""
    workdir = tmp_path_factory.mktemp("gunicorn")
    port = processes.free_port()
    access = workdir / "access.log"
    env = {"APM_PORT": str(port), "APM_ACCESSLOG": str(access), "APM_WORKERS": "1"}
    proc = processes.start("gunicorn", [processes.venv_tool("gunicorn"), "-c", "gunicorn_conf.py", "my_app:app"],
                           workdir / "server.log", env=env, cwd=ROOT / "app")
    try:
        processes.wait_port(proc, "127.0.0.1", port)
        yield f"http://127.0.0.1:{port}", access
    finally:
        processes.stop(proc)


def access_counts(access: Path, since: int, expected: int) -> Counter:
    """Access-log lines after line `since`; gunicorn writes each one just after its response, so wait a little."""
    deadline = time.monotonic() + 5
    while True:
        lines = access.read_text().splitlines()[since:]
        counts = Counter((m["path"], int(m["status"])) for m in map(ACCESS_LINE.search, lines) if m)
        if sum(counts.values()) >= expected or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_percentile_matches_the_textbook_nearest_rank_example():
    values = [15, 20, 35, 40, 50]
    assert [percentile(values, p) for p in (5, 30, 40, 50, 100)] == [15, 20, 20, 35, 50]


def test_percentile_equals_brute_force_nearest_rank_on_random_sets():
    rng = random.Random(5)
    for size in (1, 2, 3, 7, 10, 99, 100, 101, 1000):
        values = [rng.uniform(0, 50) for _ in range(size)]
        ordered = sorted(values)
        for p in (1, 10, 50, 90, 95, 99, 99.9, 100):
            assert percentile(ordered, p) == brute_force_nearest_rank(values, p), (size, p)


def test_percentile_rejects_an_empty_set_and_out_of_range_p():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    assert summarize([]) == {}


@pytest.mark.parametrize(
    "kwargs, field",
    [({"url": "127.0.0.1:5050"}, "url"), ({"routes": ("api/apm",)}, "routes"), ({"requests": 0}, "bound"),
     ({"concurrency": 0}, "concurrency")],
)
def test_plan_rejects_bad_input_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Plan(**kwargs)


def test_counts_match_the_server_access_log_and_connections_are_reused(gunicorn_app):
    url, access = gunicorn_app
    before = line_count(access)
    report = execute(Plan(url=url, requests=151, concurrency=3), quiet=True, show=False)
    routes = report.by_route()
    assert [routes[r]["requests"] for r in ("/", "/api/apm", "/api/trace")] == [51, 50, 50]
    served = access_counts(access, before, 151)
    assert served == {("/", 200): 51, ("/api/apm", 200): 50, ("/api/trace", 200): 50}
    assert report.errors == 0
    assert report.connections == 3  # one per thread: gthread keeps each connection alive


def test_without_keepalive_every_request_opens_a_connection(gunicorn_app):
    url, access = gunicorn_app
    before = line_count(access)
    report = execute(Plan(url=url, requests=40, concurrency=2, keepalive=False), quiet=True, show=False)
    assert report.connections == 40
    assert sum(access_counts(access, before, 40).values()) == 40


def test_statuses_are_counted_per_route_and_404_is_not_an_error(gunicorn_app):
    url, _ = gunicorn_app
    report = execute(Plan(url=url, routes=("/api/apm", "/missing"), requests=10, concurrency=2), quiet=True, show=False)
    routes = report.by_route()
    assert routes["/missing"]["statuses"] == {"404": 5}
    assert routes["/api/apm"]["statuses"] == {"200": 5}
    assert report.errors == 0


def test_a_duration_bound_stops_the_run(gunicorn_app):
    url, _ = gunicorn_app
    report = run(Plan(url=url, requests=0, duration=0.6, concurrency=2))
    assert len(report.samples) > 10
    assert 0.55 < report.elapsed < 2.0


def test_cli_json_report_has_the_requested_counts(gunicorn_app):
    url, _ = gunicorn_app
    out = subprocess.run([sys.executable, "-m", "app.traffic", url, "-n", "9", "-c", "2", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["requests"] == 9 and report["errors"] == 0
    assert set(report["routes"]) == {"/", "/api/apm", "/api/trace"}
    assert {"p50", "p90", "p99"} <= set(report["latency_ms"])


def test_a_refused_connection_gives_a_clear_message_and_nonzero_exit():
    port = processes.free_port()  # nothing listens there
    with pytest.raises(TargetUnreachable, match=f"cannot connect to 127.0.0.1:{port}"):
        check_reachable(Plan(url=f"http://127.0.0.1:{port}"))
    for argv in ([sys.executable, "-m", "app.traffic", f"http://127.0.0.1:{port}"],
                 [str(ROOT / ".venv/bin/invoke"), "traffic", "--url", f"http://127.0.0.1:{port}"]):
        out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 2, out
        assert "cannot connect" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("server, env, expected", [
    ("gunicorn gthread (our config)", {}, "one per thread"),
    ("gunicorn sync worker", {"APM_WORKER_CLASS": "sync", "APM_THREADS": "1"}, "one per request"),
    ("flask development server", None, "one per request"),
])
def test_which_servers_keep_connections_alive(tmp_path, server, env, expected):
    """Measured, not assumed: the client asks for keep-alive; the server decides."""
    port = processes.free_port()
    if env is None:
        argv = [sys.executable, "my_app.py", "--port", str(port)]
    else:
        argv = [processes.venv_tool("gunicorn"), "-c", "gunicorn_conf.py", "my_app:app"]
    proc = processes.start(server, argv, tmp_path / "server.log",
                           env={"APM_PORT": str(port), "APM_WORKERS": "1", **(env or {})}, cwd=ROOT / "app")
    try:
        processes.wait_port(proc, "127.0.0.1", port)
        report = execute(Plan(url=f"http://127.0.0.1:{port}", requests=30, concurrency=2), quiet=True, show=False)
    finally:
        processes.stop(proc)
    assert report.errors == 0
    assert report.connections == (2 if expected == "one per thread" else 30)
