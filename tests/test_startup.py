"""Listing the tasks pays only for invoke and the task definitions (issue: lazy imports), and no process walks
start-up's objects again with the garbage collector.

`invoke --list` must not import what only running a task needs. The test asserts which modules a listing
loads (a fact, the same on any machine); `bench/startup_bench.py` measures what that saves.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.test_site import ROOT

HEAVY = ("fabric", "paramiko", "pydantic", "ruamel.yaml", "rich", "datadog_api_client", "ddtrace", "matplotlib")

LIST_AND_REPORT = """
import contextlib, io, json, sys
from invoke.main import program
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        program.run(["invoke", "--list"], exit=False)
    except SystemExit:
        pass
print(json.dumps({"listed": "tag-host" in out.getvalue(), "modules": sorted(sys.modules)}))
"""


def test_listing_the_tasks_imports_none_of_the_heavy_libraries():
    result = subprocess.run([sys.executable, "-c", LIST_AND_REPORT], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["listed"], "invoke --list did not list the tasks"
    loaded = {name for name in report["modules"] if name.split(".")[0] in {h.split(".")[0] for h in HEAVY}}
    assert not loaded, f"invoke --list imported {sorted(loaded)[:10]}"


def test_a_task_still_finds_what_it_imports_late():
    """The settings schema, ruamel.yaml and rich arrive when a task runs: validate uses all three."""
    result = subprocess.run([sys.executable, "-m", "invoke", "validate"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


COLLECTOR_AT_EXIT = """
import atexit, gc, json
# Registered before the tasks load, so it runs after every exit handler they register (the last in, first out).
atexit.register(lambda: print(json.dumps({"frozen": gc.get_freeze_count(), "left": len(gc.get_objects())})))
from invoke.main import program
program.run(["invoke", "validate"], exit=False)
"""


def test_the_collector_leaves_start_up_objects_alone_during_a_task_and_at_exit():
    """tasks.py freezes what start-up built, then everything at exit: Python's last collections, which walked every
    object the imports made (35-57 ms of a 0.6 s re-run), find nothing left to walk."""
    result = subprocess.run([sys.executable, "-c", COLLECTOR_AT_EXIT], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["frozen"] > 20_000, report  # invoke, pydantic, ruamel.yaml, rich and the tasks: tens of thousands
    assert report["left"] < 100, report  # what the exit handlers themselves made
