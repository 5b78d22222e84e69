"""pytest fixtures for the Debian test host and the stand-in Agent apt repository (see tests/testhost).

`test_host` / `test_hosts` are the default flavour (bookworm, no systemd). `flavoured_host` runs a test once
per flavour (ids bookworm, systemd, mysql); narrow it with
`@pytest.mark.parametrize("testhost_flavour", SYSTEMD_FLAVOURS, indirect=True)`.
"""

import hashlib
import os
import shutil
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from recipes.uvtool import uvx_command
from recipes.vm.apm import PIP_MIN, locked_requirements
from tests.testhost import standin_apt_repo, start_hosts, stop_hosts
from tests.testhost.flavours import DEFAULT, FLAVOURS, flavour_named
from tests.testhost.locking import file_lock
from tests.testhost.rootfs import cached_rootfs
from tests.testhost.settings import cache_dir

REASON = "end-to-end test host needs root, mmdebstrap and network namespaces"
TOOLS = ("mmdebstrap", "tinyproxy", "ip", "unshare", "nsenter", "ssh-keygen", "dpkg-deb",
         "apt-ftparchive", "gpg")
SYSTEMD_FLAVOURS = [name for name, spec in FLAVOURS.items() if spec.systemd]


def missing_requirements(flavour: str = DEFAULT) -> list[str]:
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [tool for tool in TOOLS + flavour_named(flavour).tools if shutil.which(tool) is None]
    if not Path("/proc/self/ns/net").exists():
        missing.append("network namespaces")
    return missing


def _reason(flavour: str = DEFAULT) -> str:
    missing = missing_requirements(flavour)
    return f"{REASON} (missing: {', '.join(missing)})" if missing else REASON


requires_root = pytest.mark.skipif(bool(missing_requirements()), reason=_reason())


def _skip_unless_capable(flavour: str = DEFAULT) -> None:
    if missing_requirements(flavour):
        pytest.skip(_reason(flavour))


@pytest.fixture(scope="session")
def testhost_images(request):
    """testhost_images(flavour) -> the flavour's cached rootfs tree; a first build (20 s-2 min) prints its
    progress uncaptured. Skips the test when this machine cannot boot the flavour."""
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def image(flavour: str = DEFAULT) -> Path:
        _skip_unless_capable(flavour)
        with capture.global_and_fixture_disabled():
            return cached_rootfs(flavour)

    return image


@pytest.fixture(scope="session")
def testhost_rootfs(testhost_images) -> Path:
    """The cached prepared rootfs tree of the default flavour."""
    return testhost_images(DEFAULT)


@contextmanager
def booted(n: int, flavour: str = DEFAULT):
    """n fresh hosts of a flavour, stopped afterwards even if the test fails."""
    hosts = start_hosts(n, flavour)
    try:
        yield hosts
    finally:
        stop_hosts(hosts)


@pytest.fixture
def test_host(testhost_rootfs):
    """A fresh test host for one test, stopped afterwards even if the test fails."""
    with booted(1) as (host,):
        yield host


@pytest.fixture
def test_hosts(testhost_rootfs):
    """Three fresh test hosts booted in parallel, for tests of parallel runs."""
    with booted(3) as hosts:
        yield hosts


@pytest.fixture(params=list(FLAVOURS), ids=str)
def testhost_flavour(request, testhost_images) -> str:
    """Each flavour in turn (its image built first)."""
    testhost_images(request.param)
    return request.param


@pytest.fixture
def flavoured_host(testhost_flavour):
    """A fresh host of each flavour in turn: the test runs once per flavour."""
    with booted(1, testhost_flavour) as (host,):
        yield host


@pytest.fixture(scope="module", params=list(FLAVOURS), ids=str)
def shared_flavour(request, testhost_images) -> str:
    """Each flavour in turn, for the module-scoped shared_host."""
    testhost_images(request.param)
    return request.param


@pytest.fixture(scope="module")
def shared_host(shared_flavour):
    """One host of each flavour shared by a module's tests that only look, or add what no other one reads
    (booting a host per test costs 2-7 s on this machine). Narrow it with
    `@pytest.mark.parametrize("shared_flavour", [...], indirect=True)`."""
    with booted(1, shared_flavour) as (host,):
        yield host


@pytest.fixture(scope="session")
def standin_repo():
    """The signed STAND-IN Datadog Agent apt repository, served for the whole session."""
    _skip_unless_capable()
    repo = standin_apt_repo()
    try:
        yield repo
    finally:
        repo.stop()


def guest_python(host) -> str:
    """The guest's python3 minor version, read from its apt lists (python3 itself arrives with python3-venv)."""
    version = host.root("apt-cache show --no-all-versions python3 | sed -n 's/^Version: //p'", check=True).stdout
    return ".".join(version.strip().split(".")[:2])


@pytest.fixture(scope="session")
def wheels_for():
    """The locked wheels (and a current pip) for a guest's Python, downloaded once per Python version."""
    requirements = locked_requirements() + f"pip>={PIP_MIN[0]}\n"

    def download(python: str) -> Path:
        key = hashlib.sha256(f"{python}\n{requirements}".encode()).hexdigest()[:12]
        folder = Path.home() / ".cache/runbook-apm-wheels" / key
        folder.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(folder.parent / f"{key}.lock"):  # another test process may be downloading the same
            return fetched(python, folder)

    def fetched(python: str, folder: Path) -> Path:
        if not (folder / "complete").exists():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "requirements.txt").write_text(requirements)
            subprocess.run(uvx_command("pip", "download", "-q", "--only-binary=:all:", "--python-version", python,
                                       "--platform", "manylinux2014_x86_64", "-d", str(folder),
                                       "-r", str(folder / "requirements.txt")), check=True, timeout=300)
            (folder / "complete").touch()
        return folder

    return download


def pytest_collection_finish(session):
    """Start building the test host images this run will boot, in the background, while the first tests (the
    site's) run: a first build takes 1-2 min per flavour, and the flavours build side by side. A test that
    needs an image still being built waits for it (cached_rootfs's lock); a build that fails here fails again,
    with its message, in the test's own fixture."""
    if not any(item.get_closest_marker("e2e") for item in session.items):
        return
    for flavour in [name for name in FLAVOURS if not missing_requirements(name)]:
        log = open(cache_dir() / f"build-{flavour}.log", "a")  # noqa: SIM115 (the thread's, closed by it)
        threading.Thread(target=_build_quietly, args=(flavour, log), daemon=True, name=f"build-{flavour}").start()


def _build_quietly(flavour: str, log) -> None:
    try:
        cached_rootfs(flavour, log=lambda *parts, **_: print(*parts, file=log, flush=True))
    except Exception as error:  # noqa: BLE001 (reported again by the fixture that needs the image)
        print(f"background build of {flavour} failed: {error}", file=log, flush=True)
    finally:
        log.close()
