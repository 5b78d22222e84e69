"""pytest fixtures for the Debian test host and the stand-in Agent apt repository (see tests/testhost)."""

import os
import shutil
from pathlib import Path

import pytest

from tests.testhost import standin_apt_repo, start_hosts
from tests.testhost.rootfs import cached_rootfs

REASON = "end-to-end test host needs root, debootstrap and network namespaces"
TOOLS = ("debootstrap", "tinyproxy", "zstd", "ip", "unshare", "nsenter", "ssh-keygen", "dpkg-deb",
         "apt-ftparchive", "gpg")


def missing_requirements() -> list[str]:
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [tool for tool in TOOLS if shutil.which(tool) is None]
    if not Path("/proc/self/ns/net").exists():
        missing.append("network namespaces")
    return missing


def _reason() -> str:
    missing = missing_requirements()
    return f"{REASON} (missing: {', '.join(missing)})" if missing else REASON


requires_root = pytest.mark.skipif(bool(missing_requirements()), reason=_reason())


def _skip_unless_capable() -> None:
    if missing_requirements():
        pytest.skip(_reason())


@pytest.fixture(scope="session")
def testhost_rootfs(request) -> Path:
    """The cached prepared rootfs tar; the first build (~1-2 min) prints its progress uncaptured."""
    _skip_unless_capable()
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        return cached_rootfs()


@pytest.fixture
def test_host(testhost_rootfs):
    """A fresh test host for one test, stopped afterwards even if the test fails."""
    (host,) = start_hosts(1)
    try:
        yield host
    finally:
        host.stop()


@pytest.fixture
def test_hosts(testhost_rootfs):
    """Three fresh test hosts booted in parallel, for tests of parallel runs."""
    hosts = start_hosts(3)
    try:
        yield hosts
    finally:
        for host in hosts:
            host.stop()


@pytest.fixture(scope="session")
def standin_repo():
    """The signed STAND-IN Datadog Agent apt repository, served for the whole session."""
    _skip_unless_capable()
    repo = standin_apt_repo()
    try:
        yield repo
    finally:
        repo.stop()
