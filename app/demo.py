"""The APM section end to end on this machine, no account: test agent, traced app, traffic, service page.

Datadog's ``ddapm-test-agent`` stands in for the Agent's trace intake: it accepts what
``ddtrace-run`` sends and hands the traces back over HTTP (``GET /test/traces``).
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import urllib3

from app import processes
from app.service_page import ROOT_SPAN, log_correlation, service_page, timeline
from app.traffic import Plan, Report, execute

APP_DIR = Path(__file__).resolve().parent
HOST = "127.0.0.1"


@dataclass(frozen=True)
class DemoSettings:
    service: str = "flask"
    env: str = "dev"
    version: str = "1.0.0"
    requests: int = 300
    concurrency: int = 4
    server: str = "gunicorn"  # or "dev": Flask's development server
    trace_wait: float = 20.0  # seconds to wait for every trace to reach the agent

    def __post_init__(self):
        if self.server not in ("gunicorn", "dev"):
            raise ValueError(f"server: expected 'gunicorn' or 'dev', got {self.server!r}")


def agent_argv(port: int) -> list[str]:
    # The OTLP listeners default to fixed ports; give them free ones so two demos can run at once.
    return [
        processes.venv_tool("ddapm-test-agent"), "--host", HOST, "--port", str(port),
        "--otlp-http-port", str(processes.free_port()), "--otlp-grpc-port", str(processes.free_port()),
    ]


def app_env(settings: DemoSettings, agent_port: int, app_port: int) -> dict[str, str]:
    return {
        "DD_SERVICE": settings.service,
        "DD_ENV": settings.env,
        "DD_VERSION": settings.version,
        "DD_TRACE_AGENT_URL": f"http://{HOST}:{agent_port}",
        "DD_LOGS_INJECTION": "true",
        "DD_TRACE_WRITER_INTERVAL_SECONDS": "0.5",
        # Nothing else to talk to: no telemetry or remote configuration without a real Agent.
        "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
        "DD_REMOTE_CONFIGURATION_ENABLED": "false",
        "APM_BIND": HOST,
        "APM_PORT": str(app_port),
        "PYTHONUNBUFFERED": "1",
    }


def app_argv(server: str) -> list[str]:
    if server == "dev":
        return [processes.venv_tool("ddtrace-run"), processes.venv_tool("python"), "my_app.py"]
    return [processes.venv_tool("ddtrace-run"), processes.venv_tool("gunicorn"), "-c", "gunicorn_conf.py", "my_app:app"]


def fetch_traces(agent_port: int) -> list[list[dict]]:
    response = urllib3.request("GET", f"http://{HOST}:{agent_port}/test/traces", timeout=10, retries=False)
    if response.status != 200:
        raise processes.ProcessFailed(f"test agent answered {response.status} to /test/traces")
    return json.loads(response.data)


def wait_for_traces(agent_port: int, expected: int, timeout: float) -> list[list[dict]]:
    """Poll the agent until it holds `expected` request traces (they arrive ~0.5-1 s late)."""
    deadline = time.monotonic() + timeout
    while True:
        traces = fetch_traces(agent_port)
        roots = sum(1 for trace in traces for span in trace if span.get("name") == ROOT_SPAN and not span.get("parent_id"))
        if roots >= expected or time.monotonic() >= deadline:
            return traces
        time.sleep(0.3)


def run_demo(settings: DemoSettings, workdir: Path, quiet: bool = False) -> dict:
    """Start agent and app, send traffic, collect the traces; stop both whatever happens.

    Logs and the received traces (``traces.json``) stay in workdir; quiet prints nothing.
    """
    started: list[processes.Proc] = []
    try:
        agent_port, app_port = processes.free_port(), processes.free_port()
        agent = processes.start("ddapm-test-agent", agent_argv(agent_port), workdir / "test-agent.log")
        started.append(agent)
        processes.wait_port(agent, HOST, agent_port)
        app = processes.start("app under ddtrace-run", app_argv(settings.server), workdir / "app.log",
                              env=app_env(settings, agent_port, app_port), cwd=APP_DIR)
        started.append(app)
        processes.wait_port(app, HOST, app_port, timeout=60)
        plan = Plan(url=f"http://{HOST}:{app_port}", requests=settings.requests, concurrency=settings.concurrency)
        report: Report = execute(plan, quiet=quiet, show=not quiet)
        traces = wait_for_traces(agent_port, len(report.samples), settings.trace_wait)
        (workdir / "traces.json").write_text(json.dumps(traces))
        result = summary(settings, report, traces, (workdir / "app.log").read_text(errors="replace"))
        return {**result, "agent_url": f"http://{HOST}:{agent_port}"}
    finally:
        for proc in reversed(started):
            processes.stop(proc)


def summary(settings: DemoSettings, report: Report, traces: list[list[dict]], app_log: str) -> dict:
    return {
        "settings": {"service": settings.service, "env": settings.env, "version": settings.version,
                     "server": settings.server},
        "traffic": report.to_dict(),
        "traces_received": len(traces),
        "spans_received": sum(len(trace) for trace in traces),
        "services": service_page(traces),
        "timeline": timeline(traces),
        "log_correlation": log_correlation(app_log, traces),
    }
