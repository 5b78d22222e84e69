"""Where the test host keeps things, and its fixed addresses."""

import os
from pathlib import Path

FILES = Path(__file__).parent / "files"
STANDIN_SOURCES = Path(__file__).parent / "standin"

SUITE = "bookworm"
# Host end of host N's veth is 10.200.N.1, the guest end 10.200.N.2 (N < 250).
SUBNET_PREFIX = "10.200"
MAX_HOSTS = 250
# The stand-in apt repository listens on 10.200.255.K (a /32 on the host's lo); every guest routes
# 10.200.255.0/24 via its host end, so one repo URL serves every host.
SERVICE_NET = f"{SUBNET_PREFIX}.255"
PROXY_PORT = 8888
LOCK_FILE = Path("/run/runbook-testhost.lock")


def cache_dir() -> Path:
    """The rootfs tar, the test SSH key and the per-host work dirs live here."""
    default = Path.home() / ".cache" / "runbook-testhost"
    path = Path(os.environ.get("RUNBOOK_TESTHOST_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path
