"""A test host: a fresh copy of the prepared rootfs booted in its own namespaces, with a real sshd."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import netns, reap
from .locking import file_lock
from .proxy import start_proxy, stop_process
from .rootfs import cached_rootfs, restore
from .settings import PROXY_PORT, RAM_WORK_ROOT, cache_dir, work_root

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

    def __init__(self, index: int, key_file: Path, root: Path):
        self.index = index
        self.name = netns.ns_name(index)
        self.addr = netns.guest_addr(index)
        self.host_addr = netns.host_addr(index)
        self.key_file = str(key_file)
        self.workdir = root / self.name
        self.rootfs = self.workdir / "rootfs"
        self.known_hosts = str(self.workdir / "known_hosts")
        self.ssh_config = str(self.workdir / "ssh_config")
        self.pid1: int | None = None
        self._boot: subprocess.Popen | None = None
        self._proxy: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"{self.user}@{self.addr}:{self.port}"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.host_addr}:{PROXY_PORT}/"

    def __repr__(self) -> str:
        return f"<TestHost {self.name} {self.target} pid1={self.pid1}>"

    def root(self, cmd: str, check: bool = False, input: str | bytes | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess:
        """Run a shell command as root inside the guest (via nsenter, not SSH); stdin from input,
        stdout/stderr captured as text."""
        if self.pid1 is None:
            raise RuntimeError(f"{self.name} is not running")
        enter = ["nsenter", "-t", str(self.pid1), "-m", "-u", "-i", "-n", "-p", "-r", "-w"]
        env = {"PATH": GUEST_PATH, "HOME": "/root", "LC_ALL": "C", "TERM": "dumb"}
        data = input.encode() if isinstance(input, str) else input
        result = subprocess.run([*enter, "/bin/sh", "-c", cmd], input=data, capture_output=True, env=env,
                                timeout=timeout)
        result.stdout = result.stdout.decode(errors="replace")
        result.stderr = result.stderr.decode(errors="replace")
        if check:
            result.check_returncode()
        return result

    def start(self, tar: Path) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)  # left over by a killed run; its netns was free
        restore(tar, self.rootfs)
        self._personalize()
        netns.wire(self.index)
        self._proxy = start_proxy(self.host_addr, f"{self.host_addr.rsplit('.', 1)[0]}.0/24", self.workdir)
        self._boot_init()
        reap.record(self.workdir, self.index, {"pid1": self.pid1, "unshare": self._boot.pid,
                                               "proxy": self._proxy.pid})
        self._wait_for_sshd()

    def _personalize(self) -> None:
        """What differs per host: name, SSH host key, authorized key, apt proxy."""
        etc = self.rootfs / "etc"
        (etc / "hostname").write_text(f"{self.name}\n")
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
        log = open(self.workdir / "console.log", "ab")
        cmd = ["ip", "netns", "exec", self.name,
               "unshare", "--mount", "--pid", "--uts", "--ipc", "--fork", "--kill-child",
               "--propagation", "private", "chroot", str(self.rootfs), "/sbin/rb-init"]
        self._boot = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        log.close()
        children = Path(f"/proc/{self._boot.pid}/task/{self._boot.pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._boot.poll() is None:
            pids = children.read_text().split() if children.exists() else []
            if pids:
                self.pid1 = int(pids[0])  # the namespace's PID 1 (unshare --fork's child)
                return
            time.sleep(0.005)
        raise RuntimeError(f"{self.name}: init did not start; see {self.workdir / 'console.log'}")

    def _wait_for_sshd(self, timeout: float = 20) -> None:
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

    def stop(self) -> None:
        """Kill PID 1 by PID (unshare --fork ignores SIGTERM), remove netns/veth, delete the rootfs copy."""
        if self.pid1 is not None and self._boot is not None and self._boot.poll() is None:
            try:
                os.kill(self.pid1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._boot is not None:
            try:
                self._boot.wait(10)
            except subprocess.TimeoutExpired:
                self._boot.kill()  # our own unshare process; --kill-child takes PID 1 with it
                self._boot.wait(10)
        self.pid1 = None
        stop_process(self._proxy)
        netns.unwire(self.index)
        shutil.rmtree(self.workdir, ignore_errors=True)
        try:
            self.workdir.parent.rmdir()  # only when no other host uses it
        except OSError:
            pass
        _running.discard(self)


def _start_one(tar: Path, key: Path, root: Path) -> TestHost:
    host = TestHost(netns.allocate(), key, root)
    _running.add(host)
    try:
        host.start(tar)
    except BaseException:
        host.stop()
        raise
    return host


def start_hosts(n: int = 1) -> list[TestHost]:
    """Boot n fresh hosts in parallel from the cached prepared rootfs (built first if missing)."""
    reap.reap_orphans([RAM_WORK_ROOT, cache_dir() / "hosts", work_root(0)])
    tar, key, root = cached_rootfs(), test_key(), work_root(n)
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(_start_one, tar, key, root) for _ in range(n)]
    hosts, errors = [], []
    for future in futures:
        try:
            hosts.append(future.result())
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)
    if errors:
        for host in hosts:
            host.stop()
        raise errors[0]
    return hosts


@atexit.register
def _stop_leftovers() -> None:
    """Last resort if a caller forgot stop() or the run is interrupted."""
    for host in list(_running):
        host.stop()
