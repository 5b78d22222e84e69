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


# --- running side by side (pytest-xdist, `./run test`) --------------------------------------------------------
# Tests that share something costly stay in one worker process (`--dist loadgroup`): a module's tests share its
# module-scoped test hosts and fake API, so a module is a group, split by test host flavour (each flavour's hosts
# are its own); every test of one site engine shares that engine's build and browser crawl, so an engine is a
# group across modules. The groups start longest first, so that the last to end is a short one.
FLAVOUR_PARAMS = ("testhost_flavour", "shared_flavour")
ENGINE_PARAMS = ("engine", "published")  # the site engine fixtures: the shared build, the sub-path build
LONGEST_FIRST = ("tests/test_apm_vm.py", "e2e", "browser")


def xdist_group(item) -> str:
    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    engine = next((params[name] for name in ENGINE_PARAMS if name in params), None)
    if engine:
        return f"site-{engine}"
    group = item.nodeid.split("::")[0]
    flavour = next((params[name] for name in FLAVOUR_PARAMS if name in params), None)
    return f"{group}:{flavour}" if flavour else group  # "@" would end the group name


def start_rank(item) -> int:
    """0 for the longest groups (the APM app on each flavour), then the other test host tests, then the browser."""
    for rank, mark in enumerate(LONGEST_FIRST):
        if item.nodeid.startswith(mark) or item.get_closest_marker(mark):
            return rank
    return len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(xdist_group(item)))
    items.sort(key=start_rank)  # stable: within a rank, the collection order
