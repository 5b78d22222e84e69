"""apm-app / apm-stop over real SSH on every test host flavour: bookworm without systemd (init script +
pidfile), bookworm under systemd and sid (Python 3.14, Oracle MySQL) under systemd (flask-app.service).

The guest has no way to PyPI, so the test downloads the locked wheels for the guest's Python once on this
machine (``pip download``, cached under ~/.cache/runbook-apm-wheels) and sets ``apm.wheelhouse``: apm-app
uploads them and pip installs from them; a real VM installs from PyPI. About 60 s per flavour.
"""

import copy
import re
import socket
import time
from pathlib import Path

import pytest
from invoke import Config, Context
from invoke.config import merge_dicts

from app.traffic import Plan, execute
from recipes.vm.apm import apm_app, apm_stop
from recipes.defaults import CONFIG
from tests.testhost_fixtures import guest_python, requires_root

pytestmark = [pytest.mark.e2e, requires_root]


def vm_context(host, wheels: Path) -> Context:
    cfg = Config(defaults=merge_dicts(Config.global_defaults(), copy.deepcopy(CONFIG)))
    cfg.load_overrides({"ssh": {"key_file": host.key_file, "known_hosts": host.known_hosts},
                        "apm": {"wheelhouse": str(wheels)}})
    return Context(cfg)


def tally(runs, host) -> dict:
    return runs[host.target].counts()


def service_log(host) -> list[str]:
    """The app's log: the journal under systemd, the init script's log file elsewhere."""
    command = ("journalctl -u flask-app -o cat --no-pager" if host.has_systemd else "cat /var/log/flask-app.log")
    return host.root(command).stdout.splitlines()


def new_log_lines(host, since: int, marker: str, expected: int) -> str:
    """The service log after line `since`, once `expected` lines hold marker (access lines come just after)."""
    deadline = time.monotonic() + 10
    while True:
        text = "\n".join(service_log(host)[since:])
        if text.count(marker) >= expected or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def app_pid(host) -> str:
    """The app's main process: systemd's MainPID, or the init script's pidfile."""
    if host.has_systemd:
        return host.root("systemctl show -p MainPID --value flask-app").stdout.strip()
    return host.root("cat /run/flask-app.pid").stdout.strip()


def refused(addr: str, port: int) -> bool:
    try:
        socket.create_connection((addr, port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def test_apm_app_on_each_flavour_serves_traced_traffic_and_a_rerun_changes_nothing(flavoured_host, wheels_for):
    host = flavoured_host
    c, target = vm_context(host, wheels_for(guest_python(host))), [host.target]

    dry = tally(apm_app(c, host=target, dry_run=True), host)
    assert dry["changed"] > 0 and dry["failed"] == 0
    assert host.root("test -e /opt/flask-app").returncode != 0, "a dry run must not write"

    first = tally(apm_app(c, host=target), host)
    assert first["failed"] == 0 and first["changed"] >= 5

    # The SSH session is closed: the service outlived it, as the app user, with the service tags.
    pid = app_pid(host)
    assert host.root(f"ps -o user= -p {pid}").stdout.strip() == "flaskapp"
    environ = host.root(f"tr '\\0' '\\n' < /proc/{pid}/environ").stdout.splitlines()
    assert {"DD_SERVICE=flask", "DD_ENV=dev", "DD_VERSION=1.0.0"} <= set(environ)
    pip = host.root("/opt/flask-app/venv/bin/python -m pip --version").stdout
    assert int(re.match(r"pip (\d+)", pip).group(1)) >= 24
    freeze = {x.lower() for x in host.root("/opt/flask-app/venv/bin/python -m pip freeze").stdout.split()}
    assert {"flask==3.1.3", "ddtrace==4.16.0", "gunicorn==27.0.1"} <= freeze

    log_before = len(service_log(host))  # apm-app's own check has already logged
    report = execute(Plan(url=f"http://{host.addr}:5050", requests=60, concurrency=3), quiet=True, show=False)
    assert report.errors == 0
    assert {route: row["statuses"] for route, row in report.by_route().items()} == {
        "/": {"200": 20}, "/api/apm": {"200": 20}, "/api/trace": {"200": 20}}
    log = new_log_lines(host, log_before, '" 200 ', 60)
    traced = re.findall(r" - my_app - INFO - GET \S+ \[dd\.service=flask dd\.env=dev .*dd\.trace_id=\w+", log)
    assert len(traced) == 60  # under ddtrace-run: every request's log line carries its trace id
    assert len(re.findall(r'"GET /\S* HTTP/1\.1" 200 ', log)) == 60  # gunicorn's access log agrees

    if host.has_systemd:
        pid = assert_systemd_restarts_it_after_a_sigkill(host, pid)

    again = tally(apm_app(c, host=target), host)
    assert again == {"ok": again["ok"], "changed": 0, "failed": 0} and again["ok"] >= 8
    assert app_pid(host) == pid, "a re-run must not restart the app"

    assert tally(apm_stop(c, host=target), host) == {"ok": 0, "changed": 1, "failed": 0}
    assert refused(host.addr, 5050)
    assert tally(apm_stop(c, host=target), host) == {"ok": 1, "changed": 0, "failed": 0}


def wait_for_new_main_pid(host, old: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = app_pid(host)
        if pid not in ("", "0", old) and not refused(host.addr, 5050):  # a new process that accepts again
            return pid
        time.sleep(0.3)
    raise AssertionError(f"flask-app did not come back (restarted by systemd and listening) within {timeout:.0f} s")


def serves_the_three_routes(host) -> None:
    report = execute(Plan(url=f"http://{host.addr}:5050", requests=30, concurrency=3), quiet=True, show=False)
    assert {route: row["statuses"] for route, row in report.by_route().items()} == {
        "/": {"200": 10}, "/api/apm": {"200": 10}, "/api/trace": {"200": 10}}


def assert_systemd_restarts_it_after_a_sigkill(host, pid: str) -> str:
    """flask-app.service is enabled and comes back, as its user, after its main process is SIGKILLed."""
    assert host.root("systemctl is-enabled flask-app").stdout.strip() == "enabled"
    host.root(f"kill -9 {pid}", check=True)
    restarted = wait_for_new_main_pid(host, pid)
    assert host.root(f"ps -o user= -p {restarted}").stdout.strip() == "flaskapp"
    serves_the_three_routes(host)
    return restarted
