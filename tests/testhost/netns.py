"""Network namespace and veth of one test host: host end 10.200.N.1/24, guest end (eth0) 10.200.N.2/24."""

import subprocess
from pathlib import Path

from .locking import file_lock
from .settings import MAX_HOSTS, SERVICE_NET, SUBNET_PREFIX


def ns_name(index: int) -> str:
    return f"rbhost{index}"


def host_end(index: int) -> str:
    """The host-side veth name (15 chars max in Linux)."""
    return f"rbh{index}"


def host_addr(index: int) -> str:
    return f"{SUBNET_PREFIX}.{index}.1"


def guest_addr(index: int) -> str:
    return f"{SUBNET_PREFIX}.{index}.2"


def _ip(*args: str, batch: str | None = None) -> None:
    cmd = ["ip", *args] + (["-batch", "-"] if batch is not None else [])
    result = subprocess.run(cmd, input=batch, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {result.stderr.strip()}\n{batch or ''}")


def _link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def allocate() -> int:
    """Reserve the lowest free index by creating its namespace (under a cross-process lock)."""
    with file_lock():
        for index in range(MAX_HOSTS):
            if not Path(f"/run/netns/{ns_name(index)}").exists() and not _link_exists(host_end(index)):
                _ip("netns", "add", ns_name(index))
                return index
    raise RuntimeError(f"all {MAX_HOSTS} test host network namespaces are in use")


def wire(index: int) -> None:
    """Create the veth pair; guests also route the stand-in service net via their host end."""
    ns, veth = ns_name(index), host_end(index)
    _ip(batch=(
        f"link add {veth} type veth peer name eth0 netns {ns}\n"
        f"addr add {host_addr(index)}/24 dev {veth}\n"
        f"link set {veth} up\n"
    ))
    _ip("-n", ns, batch=(
        "link set lo up\n"
        f"addr add {guest_addr(index)}/24 dev eth0\n"
        "link set eth0 up\n"
        f"route add {SERVICE_NET}.0/24 via {host_addr(index)} dev eth0\n"
    ))


def unwire(index: int) -> None:
    """Delete the veth (both ends) and the namespace; missing pieces are fine."""
    if _link_exists(host_end(index)):
        _ip("link", "del", host_end(index))
    if Path(f"/run/netns/{ns_name(index)}").exists():
        _ip("netns", "del", ns_name(index))
