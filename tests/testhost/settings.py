"""Where the test host keeps things, and its fixed addresses."""

import os
from pathlib import Path

FILES = Path(__file__).parent / "files"
STANDIN_SOURCES = Path(__file__).parent / "standin"

# The suite whose entries in this machine's apt sources name the Debian mirror the guests use.
HOST_SUITE = "bookworm"
# Host end of host N's veth is 10.200.N.1, the guest end 10.200.N.2 (N < 250).
SUBNET_PREFIX = "10.200"
MAX_HOSTS = 250
# The stand-in apt repository listens on 10.200.255.K (a /32 on the host's lo); every guest routes
# 10.200.255.0/24 via its host end, so one repo URL serves every host.
SERVICE_NET = f"{SUBNET_PREFIX}.255"
PROXY_PORT = 8888
LOCK_FILE = Path("/run/runbook-testhost.lock")


# What a booted host writes (its overlay's upper dir: packages the recipes install, MySQL's data) goes to RAM
# when it has room: dpkg is slower on this machine's disk (the bookworm image's install: 29 s there, 18 s in RAM).
RAM_WORK_ROOT = Path("/dev/shm/runbook-testhost")
RAM_NEEDED_PER_HOST = 1.5e9


def work_root(hosts: int, room_per_host: float = RAM_NEEDED_PER_HOST) -> Path:
    """Where started hosts keep their rootfs copies (RUNBOOK_TESTHOST_WORKDIR overrides): RAM if it has
    ``room_per_host`` bytes for each (the image plus what the hosts will install), else disk."""
    if os.environ.get("RUNBOOK_TESTHOST_WORKDIR"):
        return Path(os.environ["RUNBOOK_TESTHOST_WORKDIR"])
    if RAM_WORK_ROOT.parent.is_dir():
        stats = os.statvfs(RAM_WORK_ROOT.parent)
        # tmpfs may be sized at half the RAM whatever else runs: what the machine has free bounds it too
        # (other test runs' hosts, their guests' servers), or the kernel's OOM killer ends their servers.
        free = min(stats.f_bavail * stats.f_frsize, _memory_available())
        if free > room_per_host * hosts + RAM_NEEDED_PER_HOST * len(_dirs(RAM_WORK_ROOT)):
            return RAM_WORK_ROOT
    return cache_dir() / "hosts"


def _memory_available() -> float:
    """The kernel's estimate of the memory free for new work (MemAvailable), in bytes."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0.0


def _dirs(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if p.is_dir()] if path.is_dir() else []


def cache_dir() -> Path:
    """The rootfs trees, the test SSH key and the per-host work dirs live here."""
    default = Path.home() / ".cache" / "runbook-testhost"
    path = Path(os.environ.get("RUNBOOK_TESTHOST_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path
