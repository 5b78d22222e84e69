"""apm-app / apm-stop on the Debian test host over real SSH (no systemd there: init script + pidfile).

The guest has no way to PyPI, so the test downloads the locked wheels once on this machine
(``pip download``, cached under ~/.cache/runbook-apm-wheels) and sets ``apm.wheelhouse``: apm-app
uploads them and pip installs from them; a real VM installs from PyPI. About 60 s.
"""

import copy
import hashlib
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from invoke import Config, Context
from invoke.config import merge_dicts

from app.traffic import Plan, execute
from recipes.apm import PIP_MIN, apm_app, apm_stop, locked_requirements
from recipes.defaults import CONFIG
from recipes.uvtool import uvx_command
from tests.testhost_fixtures import requires_root

pytestmark = [pytest.mark.e2e, requires_root]


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """The locked wheels (and a current pip) for the guest's Python 3.11, downloaded once."""
    requirements = locked_requirements() + f"pip>={PIP_MIN[0]}\n"
    folder = Path.home() / ".cache/runbook-apm-wheels" / hashlib.sha256(requirements.encode()).hexdigest()[:12]
    if not (folder / "complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "requirements.txt").write_text(requirements)
        subprocess.run(uvx_command("pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.11",
                        "--platform", "manylinux2014_x86_64", "-d", str(folder), "-r", str(folder / "requirements.txt")),
                       check=True, timeout=300)
        (folder / "complete").touch()
    return folder


def vm_context(host, wheels: Path) -> Context:
    cfg = Config(defaults=merge_dicts(Config.global_defaults(), copy.deepcopy(CONFIG)))
    cfg.load_overrides({"ssh": {"key_file": host.key_file, "known_hosts": host.known_hosts},
                        "apm": {"wheelhouse": str(wheels)}})
    return Context(cfg)


def tally(runs, host) -> dict:
    return runs[host.target].counts()


def new_log_lines(host, since: int, marker: str, expected: int) -> str:
    """The service log after line `since`, once `expected` lines hold marker (access lines come just after)."""
    deadline = time.monotonic() + 10
    while True:
        text = "\n".join(host.root("cat /var/log/flask-app.log").stdout.splitlines()[since:])
        if text.count(marker) >= expected or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def refused(addr: str, port: int) -> bool:
    try:
        socket.create_connection((addr, port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def test_apm_app_installs_starts_serves_traffic_and_a_rerun_changes_nothing(test_host, wheelhouse):
    c, target = vm_context(test_host, wheelhouse), [test_host.target]

    dry = tally(apm_app(c, host=target, dry_run=True), test_host)
    assert dry["changed"] > 0 and dry["failed"] == 0
    assert test_host.root("test -e /opt/flask-app").returncode != 0, "a dry run must not write"

    first = tally(apm_app(c, host=target), test_host)
    assert first["failed"] == 0 and first["changed"] >= 5

    # The SSH session is closed: the service outlived it, as the app user, with the service tags.
    pid = test_host.root("cat /run/flask-app.pid", check=True).stdout.strip()
    assert test_host.root(f"ps -o user= -p {pid}").stdout.strip() == "flaskapp"
    environ = test_host.root(f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout.splitlines()
    assert {"DD_SERVICE=flask", "DD_ENV=dev", "DD_VERSION=1.0.0"} <= set(environ)
    pip = test_host.root("/opt/flask-app/venv/bin/python -m pip --version").stdout
    assert int(re.match(r"pip (\d+)", pip).group(1)) >= 24
    freeze = test_host.root("/opt/flask-app/venv/bin/python -m pip freeze").stdout.split()
    assert {"Flask==3.1.3", "ddtrace==4.16.0", "gunicorn==27.0.1"} <= set(freeze) or \
        {"flask==3.1.3", "ddtrace==4.16.0", "gunicorn==27.0.1"} <= {x.lower() for x in freeze}

    log_before = len(test_host.root("cat /var/log/flask-app.log").stdout.splitlines())  # apm-app's own check
    report = execute(Plan(url=f"http://{test_host.addr}:5050", requests=60, concurrency=3), quiet=True, show=False)
    assert report.errors == 0
    assert {route: row["statuses"] for route, row in report.by_route().items()} == {
        "/": {"200": 20}, "/api/apm": {"200": 20}, "/api/trace": {"200": 20}}
    log = new_log_lines(test_host, log_before, '" 200 ', 60)
    traced = re.findall(r" - my_app - INFO - GET \S+ \[dd\.service=flask dd\.env=dev .*dd\.trace_id=\w+", log)
    assert len(traced) == 60  # under ddtrace-run: every request's log line carries its trace id
    assert len(re.findall(r'"GET /\S* HTTP/1\.1" 200 ', log)) == 60  # gunicorn's access log agrees

    again = tally(apm_app(c, host=target), test_host)
    assert again == {"ok": again["ok"], "changed": 0, "failed": 0} and again["ok"] >= 8
    assert test_host.root("cat /run/flask-app.pid").stdout.strip() == pid, "a re-run must not restart the app"

    assert tally(apm_stop(c, host=target), test_host) == {"ok": 0, "changed": 1, "failed": 0}
    assert refused(test_host.addr, 5050)
    assert tally(apm_stop(c, host=target), test_host) == {"ok": 1, "changed": 0, "failed": 0}


def main_pid(host, unit: str = "flask-app") -> str:
    return host.root(f"systemctl show -p MainPID --value {unit}").stdout.strip()


def wait_for_new_main_pid(host, old: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = main_pid(host)
        if pid not in ("", "0", old) and not refused(host.addr, 5050):  # a new process that accepts again
            return pid
        time.sleep(0.3)
    raise AssertionError(f"flask-app did not come back (restarted by systemd and listening) within {timeout:.0f} s")


def serves_the_three_routes(host) -> None:
    report = execute(Plan(url=f"http://{host.addr}:5050", requests=30, concurrency=3), quiet=True, show=False)
    assert {route: row["statuses"] for route, row in report.by_route().items()} == {
        "/": {"200": 10}, "/api/apm": {"200": 10}, "/api/trace": {"200": 10}}


@pytest.mark.parametrize("testhost_flavour", ["systemd"], indirect=True)
def test_flask_app_is_a_systemd_service_that_outlives_a_sigkill(flavoured_host, wheelhouse):
    host = flavoured_host
    c, target = vm_context(host, wheelhouse), [host.target]
    first = tally(apm_app(c, host=target), host)
    assert first["failed"] == 0 and first["changed"] >= 5
    assert host.root("systemctl is-enabled flask-app").stdout.strip() == "enabled"
    pid = main_pid(host)
    assert host.root(f"ps -o user= -p {pid}").stdout.strip() == "flaskapp"
    serves_the_three_routes(host)

    host.root(f"kill -9 {pid}", check=True)
    restarted = wait_for_new_main_pid(host, pid)
    assert host.root(f"ps -o user= -p {restarted}").stdout.strip() == "flaskapp"
    serves_the_three_routes(host)

    again = tally(apm_app(c, host=target), host)
    assert again["changed"] == 0 and again["failed"] == 0
    assert main_pid(host) == restarted, "a re-run must not restart the app"
    assert tally(apm_stop(c, host=target), host) == {"ok": 0, "changed": 1, "failed": 0}
    assert refused(host.addr, 5050)
