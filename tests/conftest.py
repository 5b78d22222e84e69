"""Shared pytest setup. Each layer registers its fixtures module in ``pytest_plugins``."""

import os
import re
import signal

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


def pytest_configure(config):
    """Ctrl-C reaches a task run from a terminal, and the tests that press it expect it to. A suite started as
    a background job of a shell without job control (`./run test &` in a script) inherits SIGINT ignored, and
    an ignored signal stays ignored across exec: the children those tests interrupt would never see it. Each
    test process (xdist's workers too) puts Python's own handler back, which its children reset to the default."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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
# Tests that share something costly stay in one worker process: a module's tests share its module-scoped test
# hosts and fake API, so a module is a scope, split by test host flavour (each flavour's hosts are its own); every
# test of one site engine shares that engine's build and browser crawl, so an engine is a scope across modules.
# The scopes are read from the test ids, which name the flavour or the engine ("...[mkdocs-home]",
# "...[bookworm-kill at ...]"). pytest-xdist's own `loadgroup` cannot do it under pytest 9 (it rewrites an
# attribute pytest no longer reads), so `./run test` asks for `--dist loadscope` and gets this scheduler.
# The site's scopes start first, while the test host images build in the background
# (tests/testhost_fixtures.py); then the test host scopes, longest first (the APM app on each flavour).
START_ORDER = ("browser", "tests/test_apm_vm.py", "e2e")


def scope_of(nodeid: str) -> str:
    """The scope a test runs in: ``site-<engine>``, ``<module>:<flavour>`` or ``<module>``."""
    from recipes.formats import SITE_ENGINES  # noqa: PLC0415
    from tests.testhost.flavours import FLAVOURS  # noqa: PLC0415

    module, ids = nodeid.split("::")[0], nodeid.partition("[")[2]
    words = set(re.split(r"[-\[\] ]", ids))
    engine = next((name for name in SITE_ENGINES if name in words), None)
    if engine:
        return f"site-{engine}"
    flavour = next((name for name in FLAVOURS if name in words), None)
    return f"{module}:{flavour}" if flavour else module


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None  # any other --dist: pytest-xdist's own

    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 (only with -n)

    class RunbookScopes(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return RunbookScopes(config, log)


def start_rank(item) -> int:
    """0 for the browser tests, then the APM app on each flavour, then the other test host tests, then the rest."""
    for rank, mark in enumerate(START_ORDER):
        if item.nodeid.startswith(mark) or item.get_closest_marker(mark):
            return rank
    return len(START_ORDER)


def pytest_collection_modifyitems(config, items):
    items.sort(key=start_rank)  # stable: within a rank, the collection order
