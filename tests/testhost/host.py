"""A test host: a fresh copy of a flavour's prepared rootfs booted in its own namespaces, with a real sshd."""

import atexit
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import boot, netns, reap
from .flavours import DEFAULT, Flavour, flavour_named
from .locking import file_lock
from .processes import kill_and_wait, start_time
from .proxy import start_proxy, stop_process
from .rootfs import cached_rootfs, mount_copy, unmount_copy
from .settings import PROXY_PORT, RAM_NEEDED_PER_HOST, RAM_WORK_ROOT, cache_dir, work_root

USER = "vagrant"
UID = 1000
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SSH_CONFIG = """\
Host {name}
  HostName {addr}
  User {user}
  Port {port}
  UserKnownHostsFile {known_hosts}
  StrictHostKeyChecking yes
  PasswordAuthentication no
  IdentityFile {key_file}
  IdentitiesOnly yes
  LogLevel FATAL
"""
SSHD_TIMEOUT = 60
BOOT_TIMEOUT = 180  # until systemd has started every unit (MySQL's first start is slow on a loaded machine)
# Until a killed guest is gone. 16 guests that each installed the real-size Agent package (bench/vm_bench.py),
# with their files on disk, took more than 10 s each to be torn down while the machine wrote them back.
STOP_TIMEOUT = 120
_running: set["TestHost"] = set()


def test_key() -> Path:
    """The private key the tests log in with: generated once into the cache dir, never committed."""
    key = cache_dir() / "vagrant_ed25519"
    with file_lock(cache_dir() / "key.lock"):
        if not key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "runbook-testhost",
                            "-f", str(key)], check=True)
    return key


class TestHost:
    """One booted host; see start_hosts(). Stop it with stop() (idempotent)."""

    __test__ = False  # not a pytest test class
    port = 22
    user = USER

    def __init__(self, index: int, key_file: Path, root: Path, flavour: Flavour):
        self.index = index
        self.spec = flavour
        self.flavour = flavour.name
        self.name = netns.ns_name(index)
        self.addr = netns.guest_addr(index)
        self.host_addr = netns.host_addr(index)
        self.key_file = str(key_file)
        self.workdir = root / self.name
        self.rootfs = self.workdir / "rootfs"
        self.known_hosts = str(self.workdir / "known_hosts")
        self.ssh_config = str(self.workdir / "ssh_config")
        self.pid1: int | None = None
        self._pid1_started: str | None = None
        self._boot: subprocess.Popen | None = None
        self._proxy: subprocess.Popen | None = None

    @property
    def has_systemd(self) -> bool:
        return self.spec.systemd

    @property
    def target(self) -> str:
        return f"{self.user}@{self.addr}:{self.port}"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.host_addr}:{PROXY_PORT}/"

    def __repr__(self) -> str:
        return f"<TestHost {self.name} {self.flavour} {self.target} pid1={self.pid1}>"

    def ssh_log(self) -> str:
        """What the guest's sshd logged so far (LogLevel VERBOSE: one "Accepted publickey" per connection,
        one "Starting session:" per session opened on it)."""
        return (self.workdir / "console.log").read_text(errors="replace")

    def ssh_counts(self) -> tuple[int, int]:
        """(connections, sessions) the guest's sshd accepted so far, from its own log."""
        log = self.ssh_log()
        return log.count("Accepted publickey for"), log.count("Starting session: ")

    def proxied_requests(self) -> list[str]:
        """The URLs the guest fetched through its proxy so far (apt's only way out), from tinyproxy's log."""
        log = (self.workdir / "tinyproxy.log").read_text(errors="replace")
        return re.findall(r"Request \(file descriptor \d+\): (?:GET|CONNECT) (\S+)", log)

    def root(self, cmd: str, check: bool = False, input: str | bytes | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess:
        """Run a shell command as root inside the guest (via nsenter, not SSH); stdin from input,
        stdout/stderr captured as text."""
        if self.pid1 is None:
            raise RuntimeError(f"{self.name} is not running")
        enter = ["nsenter", "-t", str(self.pid1), "--all", "-r", "-w"]
        env = {"PATH": GUEST_PATH, "HOME": "/root", "LC_ALL": "C", "TERM": "dumb"}
        data = input.encode() if isinstance(input, str) else input
        result = subprocess.run([*enter, "/bin/sh", "-c", cmd], input=data, capture_output=True, env=env,
                                timeout=timeout)
        result.stdout = result.stdout.decode(errors="replace")
        result.stderr = result.stderr.decode(errors="replace")
        if check:
            result.check_returncode()
        return result

    def start(self, tree: Path) -> None:
        unmount_copy(self.workdir)  # left over by a killed run; its netns was free
        shutil.rmtree(self.workdir, ignore_errors=True)
        mount_copy(tree, self.workdir)
        self._personalize()
        netns.wire(self.index)
        self._proxy = start_proxy(self.host_addr, f"{self.host_addr.rsplit('.', 1)[0]}.0/24", self.workdir)
        self._boot_init()
        reap.record(self.workdir, self.index, {"pid1": self.pid1, "boot": self._boot.pid,
                                               "proxy": self._proxy.pid})
        self._wait_for_sshd()
        if self.has_systemd:
            self._wait_for_systemd()

    def _personalize(self) -> None:
        """What differs per host: name, SSH host key, authorized key, apt proxy."""
        etc = self.rootfs / "etc"
        (etc / "hostname").write_text(f"{self.name}\n")
        if self.has_systemd:
            (etc / "machine-id").write_text(f"{uuid.uuid4().hex}\n")
        (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{self.name}\n{self.addr}\t{self.name}\n")
        (etc / "apt/apt.conf.d/01runbook-testhost-proxy").write_text(
            f'// The guest has no route out: apt goes through tinyproxy on the host end of its veth.\n'
            f'Acquire::http::Proxy "{self.proxy_url}";\n')
        host_key = etc / "ssh/ssh_host_ed25519_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{self.name}",
                        "-f", str(host_key)], check=True)
        host_pub = host_key.with_suffix(".pub").read_text().split()
        Path(self.known_hosts).write_text(f"{self.addr} {host_pub[0]} {host_pub[1]}\n")
        ssh_dir = self.rootfs / "home" / USER / ".ssh"
        authorized = ssh_dir / "authorized_keys"
        authorized.write_text(Path(self.key_file + ".pub").read_text())
        os.chown(authorized, UID, UID)
        authorized.chmod(0o600)
        Path(self.ssh_config).write_text(SSH_CONFIG.format(
            name=self.name, addr=self.addr, user=self.user, port=self.port,
            known_hosts=self.known_hosts, key_file=self.key_file))

    def _boot_init(self) -> None:
        cmd, env = boot.init_command(self.spec, self.name, self.rootfs)
        log = open(self.workdir / "console.log", "ab")
        self._boot = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      env={**os.environ, **env}, start_new_session=True)
        log.close()
        try:
            self.pid1 = boot.namespace_pid1(self._boot.pid)
        except RuntimeError:
            raise RuntimeError(f"{self.name}: init did not start; see {self.workdir / 'console.log'}") from None
        self._pid1_started = start_time(self.pid1)

    def _wait_for_sshd(self, timeout: float = SSHD_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._boot.poll() is not None:
                break
            try:
                with socket.create_connection((self.addr, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0"):
                        return
            except OSError:
                time.sleep(0.02)
        console = (self.workdir / "console.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.name}: sshd did not answer on {self.addr}:{self.port}\n{console}")

    def _wait_for_systemd(self) -> None:
        """Until systemd has finished starting up (sshd answers earlier); a degraded boot is the test's to judge."""
        state = self.root("systemctl is-system-running --wait", timeout=BOOT_TIMEOUT).stdout.strip()
        if state not in ("running", "degraded"):
            raise RuntimeError(f"{self.name}: systemd did not finish booting: {state}")

    def stop(self) -> None:
        """SIGKILL PID 1 by PID (the kernel ends every process of the guest with it; a host is never booted
        again, so an orderly poweroff, 1.5 s and 1 CPU-second with MySQL, buys nothing), then free netns, veth,
        cgroups and the overlay. Idempotent."""
        if self._boot is not None:
            kill_and_wait([(self.pid1, self._pid1_started)], STOP_TIMEOUT)
            try:
                self._boot.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._boot.kill()  # our own unshare/nspawn process
                self._boot.wait(STOP_TIMEOUT)
        self.pid1 = None
        stop_process(self._proxy)
        reap.release_resources(self.index, self.workdir)
        try:
            self.workdir.parent.rmdir()  # only when no other host uses it
        except OSError:
            pass
        _running.discard(self)


def _start_one(tree: Path, key: Path, root: Path, flavour: Flavour) -> TestHost:
    host = TestHost(netns.allocate(), key, root, flavour)
    _running.add(host)
    try:
        host.start(tree)
    except BaseException:
        host.stop()
        raise
    return host


def start_hosts(n: int = 1, flavour: str = DEFAULT, room_per_host: float = RAM_NEEDED_PER_HOST) -> list[TestHost]:
    """Boot n fresh hosts of a flavour (see flavours.py) in parallel from its cached prepared rootfs (built
    first if missing). ``room_per_host``: the bytes each will fill (more than the default when they install
    the real-size Agent package), which decides whether their copies fit in RAM."""
    spec = flavour_named(flavour)
    reap.reap_orphans([RAM_WORK_ROOT, cache_dir() / "hosts", work_root(0)])
    tree, key, root = cached_rootfs(spec.name), test_key(), work_root(n, room_per_host)
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(_start_one, tree, key, root, spec) for _ in range(n)]
    hosts, errors = [], []
    for future in futures:
        try:
            hosts.append(future.result())
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)
    if errors:
        stop_hosts(hosts)
        raise errors[0]
    return hosts


def stop_hosts(hosts: list[TestHost]) -> None:
    """Stop hosts in parallel."""
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        list(pool.map(TestHost.stop, hosts))


@atexit.register
def _stop_leftovers() -> None:
    """Last resort if a caller forgot stop() or the run is interrupted (no new threads at exit)."""
    for host in list(_running):
        host.stop()
