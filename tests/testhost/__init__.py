"""The Debian test host of the end-to-end tests, and the stand-in Datadog Agent apt repository.

A test host is a debootstrapped Debian bookworm rootfs (cached as a zstd tar) booted in its own
network namespace with a real sshd as PID 1, a ``vagrant`` user with NOPASSWD sudo, and apt going
through tinyproxy on the host end of its veth. Needs root.

    hosts = start_hosts(n=1); h = hosts[0]
    h.name, h.addr, h.port, h.user, h.key_file, h.known_hosts, h.target, h.ssh_config
    h.root("cmd")   # as root inside the guest, via nsenter (not SSH)
    h.stop()
    repo = standin_apt_repo()   # .url, .key_url, .keyring_fingerprint, .stop()
"""

from .host import TestHost, start_hosts
from .standin_repo import StandinAptRepo, standin_apt_repo

__all__ = ["StandinAptRepo", "TestHost", "standin_apt_repo", "start_hosts"]
