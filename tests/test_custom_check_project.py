"""The custom check's own suite, under the real datadog_checks.base: tests/agent_check is a uv project of its own
(datadog_checks.base pins a ddtrace other than the app's), so this suite runs it as a child process and reports
its result here, where pytest-xdist can run it beside the other tests."""

import subprocess

from tests.vm_run import ROOT
from recipes.uvtool import child_env, uv_command


def test_the_custom_checks_own_suite_passes_under_the_real_datadog_checks_base():
    done = subprocess.run(uv_command("run", "--project", "tests/agent_check", "pytest", "-q", "-p", "no:cacheprovider",
                                     "tests/agent_check"),
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=child_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout and " skipped" not in done.stdout, done.stdout[-2000:]
