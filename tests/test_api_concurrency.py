"""Runs that overlap, against FakeDatadog with the real datadog-api-client: two applies from one checkout
(the lock, recipes/api/lock.py), a run on another machine creating the same object meanwhile (the look
after each create, recipes/api/sync.py `settle`), a run killed while it holds the lock, and Ctrl-C.

The overlapping runs are real processes (`python -m invoke -f CONFIG apply`, as `./run apply` runs it). The
overlap is made by holding one request in the fake (`Fault(delay=..., hold=event)`) until the test has seen
what it waits for; every wait is for a condition, with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from invoke.exceptions import Exit

from recipes.api import lock, tasks as api
from tests.fakedd.fixtures import EXPECTED, FAKE_API_KEY, FAKE_APP_KEY, api_context, counts, writes

ROOT = Path(__file__).resolve().parents[1]
HELD = 30  # seconds a held request waits at most for the test to release it
ANSWER = 45  # the children's request timeout: longer than any held request

pytestmark = pytest.mark.fake_api


def until(condition, what: str, timeout: float = 30):
    """Wait for `condition()` to be true (its value is returned), failing with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        time.sleep(0.02)


def request_to(fake, method: str, path: str, done: bool = False):
    """The first recorded `method path` request (with `done`, once the fake has carried it out), or None."""
    return next((r for r in list(fake.requests) if (r.method, r.path) == (method, path) and (r.status or not done)), None)


def lock_file(fake) -> Path:
    return lock.path_for(fake.url, FAKE_API_KEY)


@dataclass
class Child:
    """One task run as its own process: `python -m invoke -f CONFIG TASK`, output in files."""

    proc: subprocess.Popen
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def finish(self, timeout: float = 90) -> int:
        return self.proc.wait(timeout)


class Children:
    """Starts task processes against one fake; whatever is still running at the end of the test is killed."""

    def __init__(self, fake, folder: Path):
        self.fake, self.folder, self.started = fake, folder, []
        self.config = folder / "fake-api.json"
        self.config.write_text(json.dumps({"api": {
            "base_url": fake.url, "timeout": ANSWER, "max_retries": 3, "backoff": 0.01, "backoff_max": 0.05,
            "notify": "@oncall@example.com", "timezone": "Europe/Paris", "lock_wait": 60}}))

    def start(self, *argv: str) -> Child:
        n = len(self.started)
        out, err = self.folder / f"run{n}.out", self.folder / f"run{n}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INVOKE_", "DD_")) and k != "RUNBOOK_TRACEBACK"}
        env.update(DD_API_KEY=FAKE_API_KEY, DD_APP_KEY=FAKE_APP_KEY, PYTHONUNBUFFERED="1")
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "invoke", "-f", str(self.config), *argv], cwd=ROOT, env=env,
                                    stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        child = Child(proc, out, err)
        self.started.append(child)
        return child

    def stop_all(self) -> None:
        for child in self.started:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait(10)


@pytest.fixture
def children(fake_dd, tmp_path):
    runs = Children(fake_dd, tmp_path)
    try:
        yield runs
    finally:
        runs.stop_all()


# --- one checkout: the lock -----------------------------------------------------------------------------------
def test_two_applies_started_together_leave_one_of_each_and_the_second_waits_for_the_first_against_the_fake_api(fake_dd, children):
    fake = fake_dd
    release = threading.Event()
    fake.inject("POST", "/api/v1/dashboard", delay=HELD, hold=release)  # the first run's first create waits for the test
    first = children.start("apply")
    until(lambda: request_to(fake, "POST", "/api/v1/dashboard"), "the first run's first create reaches the fake")
    assert lock.holder_of(lock_file(fake)).pid == first.pid  # it holds the lock, and wrote itself in
    assert lock.holder_of(lock_file(fake)).task == "./run apply"
    second = children.start("apply")
    until(lambda: "another run holds the lock" in second.stderr(), "the second run finds the lock held")
    assert first.proc.poll() is None and second.proc.poll() is None  # both are running: the overlap is real
    release.set()
    assert (first.finish(), second.finish()) == (0, 0), first.stderr() + second.stderr()
    assert counts(fake) == EXPECTED
    assert sorted(writes(fake)) == sorted([("POST", "/api/v1/dashboard")] * 2 + [("POST", "/api/v1/monitor")]
                                          + [("POST", "/api/v2/downtime")] * 2 + [("POST", "/api/v1/notebooks")])  # the first run's six; none from the second
    told = second.stderr()
    assert told.count("another run holds the lock") == 1
    assert f"PID {first.pid}, started " in told and "./run apply" in told, told
    assert "0 create, 0 update, 6 unchanged, 0 delete" in second.stdout()  # planned afresh: nothing left to do
    assert "another run holds the lock" not in first.stderr()
    assert not lock_file(fake).exists()  # each run removes the file as it ends


def test_a_run_killed_while_it_holds_the_lock_does_not_block_the_next_against_the_fake_api(fake_dd, children):
    fake = fake_dd
    release = threading.Event()
    fake.inject("POST", "/api/v1/monitor", delay=HELD, hold=release, after=True)  # created; its answer held
    killed = children.start("apply")
    until(lambda: request_to(fake, "POST", "/api/v1/monitor", done=True), "the monitor is created")
    killed.proc.send_signal(signal.SIGKILL)
    assert killed.finish() == -signal.SIGKILL
    release.set()
    assert lock.holder_of(lock_file(fake)).pid == killed.pid  # its file is left behind, unlocked
    started = time.monotonic()
    after = children.start("apply")
    assert after.finish() == 0, after.stderr()
    assert time.monotonic() - started < 30  # well under api.lock_wait (60 s here)
    assert "another run holds the lock" not in after.stderr()
    assert counts(fake) == EXPECTED
    assert writes(fake).count(("POST", "/api/v1/monitor")) == 1  # the killed run's monitor is found, not made again
    assert not lock_file(fake).exists()


def test_a_run_that_cannot_get_the_lock_in_time_names_the_holder_and_sends_nothing_against_the_fake_api(fake_dd, dd_keys):
    c = api_context(fake_dd, lock_wait=0)
    with lock.held(lock_file(fake_dd), "./run destroy", wait=0):
        for task in (api.apply, api.destroy, api.monitor):
            with pytest.raises(Exit) as caught:
                task(c)
            assert caught.value.code == 1
            message = str(caught.value)
            assert message.startswith("error: another run still holds the lock for this Datadog org after 0 s "
                                      f"(PID {os.getpid()}, started ")
            assert "./run destroy" in message and "(nothing was changed)" in message
        assert fake_dd.requests == []
        assert [ch.action for ch in api.plan(c)] == ["create"] * 6  # plan and dry runs only read: no lock
        api.apply(c, dry_run=True)
        assert fake_dd.writes() == []
    assert not lock_file(fake_dd).exists()


# --- two machines: the look after each create -------------------------------------------------------------------
RACES = {"timeboard": "/api/v1/dashboard", "monitor": "/api/v1/monitor", "downtime-weeknights": "/api/v2/downtime"}


@pytest.mark.parametrize("key", RACES)
def test_a_copy_another_machine_creates_meanwhile_is_kept_and_this_runs_own_is_deleted_against_the_fake_api(dd, capsys, key):
    fake, c = dd
    path, theirs = RACES[key], []

    def another_run(fake, body):  # between this run's list and its create, as a run on another machine would
        made = fake.another_client("POST", path, body)
        theirs.append(made["data"]["id"] if "data" in made else made["id"])

    fake.meanwhile("POST", path, another_run)
    capsys.readouterr()
    api.apply(c)
    shown = capsys.readouterr().out
    (other,) = theirs
    deleted = [r.path for r in fake.writes() if r.method == "DELETE"]
    assert len(deleted) == 1 and deleted[0].startswith(path + "/")
    own = deleted[0].rsplit("/", 1)[1]
    assert own != str(other)
    line = f"kept {key} {other} (created by another run meanwhile); deleted this run's copy {own}"
    assert line in " ".join(shown.split()), shown
    assert shown.count("created by another run meanwhile") == 1
    assert counts(fake) == EXPECTED
    kept = {"timeboard": fake.state.dashboards, "monitor": fake.state.monitors,
            "downtime-weeknights": {d["id"]: d for d in fake.active_downtimes()}}[key]
    assert other in kept and own not in {str(k) for k in kept}
    (monitor,) = fake.state.monitors.values()
    assert {d["attributes"]["monitor_identifier"]["monitor_id"] for d in fake.active_downtimes()} == {monitor["id"]}
    if key == "monitor":
        assert monitor["id"] == other  # the downtimes were scheduled for the monitor that was kept
    fake.clear_log()
    assert {ch.action for ch in api.apply(c)} == {"unchanged"}
    assert fake.writes() == []


def test_a_copy_another_machine_creates_after_this_runs_create_is_left_to_its_own_run_against_the_fake_api(dd, capsys):
    """This run's monitor is the older one: it keeps it and deletes nothing (the other run deletes its own
    copy when it looks; a plan would show the newer one as a duplicate)."""
    fake, c = dd
    sent, theirs = [], []
    fake.meanwhile("POST", "/api/v1/monitor", lambda fake, body: sent.append(body))
    fake.meanwhile("GET", "/api/v1/monitor", lambda fake, body: None)  # the plan's list read: nothing happens
    fake.meanwhile("GET", "/api/v1/monitor", lambda fake, body: theirs.append(  # the look after the create
        fake.another_client("POST", "/api/v1/monitor", sent[0])))
    api.apply(c)
    (other,) = theirs
    (mine,) = set(fake.state.monitors) - {other["id"]}
    assert other["id"] > mine and [r for r in fake.writes() if r.method == "DELETE"] == []
    assert "another run" not in capsys.readouterr().out
    assert {d["attributes"]["monitor_identifier"]["monitor_id"] for d in fake.active_downtimes()} == {mine}
    deletes = [ch for ch in api.plan(c) if ch.action == "delete"]
    assert [(ch.spec.key, ch.live_id, ch.reason) for ch in deletes] == [("monitor", other["id"], "duplicate")]


# --- Ctrl-C ------------------------------------------------------------------------------------------------------
def test_ctrl_c_during_a_create_says_what_was_done_and_how_to_resume_and_the_next_run_converges_against_the_fake_api(dd, children):
    fake, c = dd
    release = threading.Event()
    fake.inject("POST", "/api/v1/monitor", delay=HELD, hold=release)  # the monitor's create is in flight
    run = children.start("apply")
    until(lambda: request_to(fake, "POST", "/api/v1/monitor"), "the monitor's create reaches the fake")
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130
    said, shown = run.stderr(), run.stdout()
    assert "Traceback" not in said + shown and "KeyboardInterrupt" not in said + shown
    assert said.count("interrupted") == 1, said
    assert "interrupted while creating monitor" in said
    assert re.search(r"already done: created timeboard [\w-]+, created apm-dashboard [\w-]+", said), said
    assert "the next run finds monitor by its mark if this create landed, and never sends it twice" in said
    assert "resume with: ./run apply" in said
    assert [line.split()[:2] for line in shown.splitlines()] == [["create", "timeboard"], ["create", "apm-dashboard"]]
    assert not lock_file(fake).exists()
    release.set()  # the create lands after all, its answer to nobody
    until(lambda: request_to(fake, "POST", "/api/v1/monitor", done=True), "the held create is carried out")
    api.apply(c)
    assert counts(fake) == EXPECTED
    assert writes(fake).count(("POST", "/api/v1/monitor")) == 1  # found again, not sent twice


def test_ctrl_c_names_the_task_that_resumes_against_the_fake_api(dd, children):
    fake, c = dd
    api.apply(c)
    release = threading.Event()
    fake.inject("DELETE", r"/api/v2/downtime/.*", delay=HELD, hold=release)
    run = children.start("destroy")
    until(lambda: any(r.method == "DELETE" and "downtime" in r.path for r in list(fake.requests)),
          "the first downtime's delete reaches the fake")
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130
    release.set()
    said = run.stderr()
    assert re.search(r"^interrupted while deleting downtime-weekends [\w-]+$", said, re.M), said
    assert re.search(r"^already done: deleted notebook \d+$", said, re.M) and "resume with: ./run destroy" in said
    assert "Traceback" not in said + run.stdout()
