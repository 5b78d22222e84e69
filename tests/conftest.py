"""Shared pytest setup. Each layer registers its fixtures module in ``pytest_plugins``."""

import os

import pytest

pytest_plugins: list[str] = [
    "tests.fakedd.fixtures",
    "tests.testhost_fixtures",
    "tests.previews_fixtures",
    "tests.site_fixtures",
]

# The custom check's tests run in their own uv project (datadog_checks.base pins its own ddtrace): `./run test`
# runs them there first; collected here they could only be skipped.
collect_ignore = ["agent_check"]


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On CI (where .ci/run has installed every layer's needs), a skipped test is a failure, not a footnote."""
    outcome = yield
    report = outcome.get_result()
    if on_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, where every layer must run: {reason}"
