"""The Debian test host of the end-to-end tests, and the stand-in Datadog Agent apt repository.

A test host is a copy-on-write overlay of one flavour's Debian rootfs (built by mmdebstrap) booted in its own
network namespace with a real sshd, a ``vagrant`` user with NOPASSWD sudo, and apt going through
tinyproxy on the host end of its veth. Needs root. Flavours (flavours.py): ``bookworm`` (default: sshd as
PID 1, no systemd), ``systemd`` (bookworm under systemd-nspawn --boot), ``mysql`` (sid with Oracle MySQL
running under systemd).

    hosts = start_hosts(n=1, flavour="bookworm"); h = hosts[0]
    h.name, h.addr, h.port, h.user, h.key_file, h.known_hosts, h.target, h.ssh_config, h.flavour, h.has_systemd
    h.root("cmd")   # as root inside the guest, via nsenter (not SSH)
    h.stop()        # or stop_hosts(hosts), in parallel
    repo = standin_apt_repo()   # .url, .key_url, .keyring_fingerprint, .stop()
"""

from .flavours import FLAVOURS
from .host import TestHost, start_hosts, stop_hosts
from .standin_repo import StandinAptRepo, standin_apt_repo

__all__ = ["FLAVOURS", "StandinAptRepo", "TestHost", "standin_apt_repo", "start_hosts", "stop_hosts"]
