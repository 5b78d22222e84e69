"""The Debian test host itself, in each flavour: real SSH, sudo, apt through the proxy, the signed STAND-IN
Agent repo, systemd where the flavour has it, parallel isolated hosts, and a teardown that leaves nothing
behind."""

import io
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest
from fabric import Config, Connection

from tests.testhost import FLAVOURS, boot, standin_apt_repo, start_hosts
from tests.testhost.standin_repo import throwaway_key
from tests.testhost_fixtures import SYSTEMD_FLAVOURS, booted, requires_root

pytestmark = [pytest.mark.e2e, requires_root]


def connect(host, known_hosts: str | None = None) -> Connection:
    """A Fabric connection that trusts only the given known_hosts file (the host's own by default)."""
    no_stdin = Config(overrides={"run": {"in_stream": False}})  # pytest's stdin is not readable
    conn = Connection(host.addr, user=host.user, port=host.port, connect_timeout=10, config=no_stdin,
                      connect_kwargs={"key_filename": host.key_file, "look_for_keys": False,
                                      "allow_agent": False})
    conn.client.load_host_keys(known_hosts or host.known_hosts)
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def install_datadog_repo(conn: Connection, repo) -> None:
    """Datadog's documented install path (keyring + signed-by line), pointed at the stand-in."""
    keyring = repo.keyring_path
    conn.sudo("env DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnupg", hide=True)
    conn.put(io.BytesIO(f"{repo.apt_line}\n".encode()), "/tmp/datadog.list")
    conn.sudo("install -m 0644 /tmp/datadog.list /etc/apt/sources.list.d/datadog.list", hide=True)
    conn.sudo(f"touch {keyring}", hide=True)
    conn.sudo(f"chmod a+r {keyring}", hide=True)
    conn.run(f"curl -fsS {repo.key_url} | sudo gpg --no-default-keyring --keyring {keyring} --import --batch",
             hide=True)


def add_repo_with_keyring(host, repo, keyring: bytes) -> None:
    """The repo line plus a keyring written from this machine (faster than gnupg in the guest)."""
    host.root(f"echo '{repo.apt_line}' > /etc/apt/sources.list.d/datadog.list", check=True)
    host.root(f"cat > {repo.keyring_path}", input=keyring, check=True)


def install_standin_agent(host, repo) -> None:
    add_repo_with_keyring(host, repo, repo.keyring_file.read_bytes())
    with connect(host) as conn:
        conn.sudo("apt-get update", hide=True)
        conn.sudo("env DEBIAN_FRONTEND=noninteractive apt-get install -y -q datadog-agent", hide=True)
    host.root("printf 'api_key: standin\\nhostname: h\\n' > /etc/datadog-agent/datadog.yaml", check=True)


def restart_events(host) -> list[str]:
    log = host.root("cat /var/log/datadog-standin/restarts.log").stdout
    return [line.split()[1] for line in log.splitlines() if line]


def main_pid(host, unit: str) -> int:
    return int(host.root(f"systemctl show -p MainPID --value {unit}").stdout)


def runs_as(host, pid: int, user: str, command: str) -> bool:
    """The unit's main process has exec'd its command as its user. Right after `systemctl start` of a
    Type=simple unit, MainPID can still be systemd's forked child, briefly root, before the exec."""
    return bool(wait_for(lambda: host.root(f"ps -o user=,comm= -p {pid}").stdout.split() == [user, command]))


def wait_for(condition, timeout: float = 30, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while not (result := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return result


on_bookworm_shared = pytest.mark.parametrize("shared_flavour", ["bookworm"], indirect=True)


def test_vagrant_logs_in_over_real_ssh_with_fabric(shared_host):
    with connect(shared_host) as conn:
        result = conn.run("id -un; hostname; cat /proc/1/comm", hide=True)
    pid1 = "systemd" if shared_host.has_systemd else "sshd"
    assert result.stdout.split() == ["vagrant", shared_host.name, pid1]
    assert shared_host.target == f"vagrant@{shared_host.addr}:22"
    systemd_dir = shared_host.root("test -d /run/systemd/system").returncode == 0
    assert systemd_dir == shared_host.has_systemd


@on_bookworm_shared
def test_an_unknown_host_key_is_rejected(shared_host, tmp_path):
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(shared_host, str(empty_known_hosts)).open()


@on_bookworm_shared
def test_the_ssh_config_file_works_with_openssh(shared_host):
    result = subprocess.run(["ssh", "-F", shared_host.ssh_config, "-o", "BatchMode=yes", shared_host.name,
                             "echo", "hello-from", "$(hostname)"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"hello-from {shared_host.name}"


def test_vagrant_has_passwordless_sudo(shared_host):
    with connect(shared_host) as conn:
        assert conn.sudo("id -u", hide=True).stdout.strip() == "0"
        assert conn.run("sudo -n true", hide=True, warn=True).ok
    assert shared_host.root("id -u").stdout.strip() == "0"


def test_logrotate_is_installed(shared_host):
    version = shared_host.root("logrotate --version")
    assert version.returncode == 0 and version.stdout.startswith("logrotate "), version.stdout + version.stderr
    dry_run = shared_host.root("logrotate --debug /etc/logrotate.conf")
    assert dry_run.returncode == 0, dry_run.stderr


def test_apt_reaches_the_mirror_only_through_the_proxy(shared_host):
    routes = shared_host.root("cat /proc/net/route").stdout.splitlines()[1:]
    assert not [r for r in routes if r.split()[1] == "00000000"], "the guest must have no default route"
    direct = shared_host.root("curl -sS --max-time 5 --noproxy '*' http://deb.debian.org/debian/")
    assert direct.returncode != 0
    with connect(shared_host) as conn:
        update = conn.sudo("apt-get update", hide=True, warn=True)
    assert update.ok, update.stderr
    assert f"deb.debian.org/debian {shared_host.spec.suite} InRelease" in update.stdout


def test_prefetched_packages_are_cached_but_not_installed(shared_host):
    recipe_packages = " ".join(shared_host.spec.prefetch)
    installed = shared_host.root(f"dpkg-query -W -f '${{db:Status-Status}} ${{Package}}\\n' {recipe_packages}")
    assert "installed" not in installed.stdout.replace("not-installed", "")
    fetch = shared_host.root(f"apt-get install -y -q --download-only --no-download {recipe_packages}")
    assert fetch.returncode == 0, fetch.stdout + fetch.stderr
    with connect(shared_host) as conn:
        install = conn.sudo("env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download acl",
                            hide=True, warn=True)
    assert install.ok, install.stdout + install.stderr
    assert shared_host.root("getfacl --version").returncode == 0


def test_standin_agent_installs_from_the_signed_repo(flavoured_host, standin_repo):
    host = flavoured_host
    with connect(host) as conn:
        install_datadog_repo(conn, standin_repo)
        update = conn.sudo("apt-get update", hide=True, warn=True)
        assert update.ok and "W:" not in update.stderr, update.stderr
        install = conn.sudo("env DEBIAN_FRONTEND=noninteractive apt-get install -y -q datadog-agent "
                            "datadog-signing-keys", hide=True, warn=True)
        assert install.ok, install.stdout + install.stderr
        status = conn.sudo("datadog-agent status", hide=True, warn=True)
    version = host.root("dpkg-query -W -f '${Version}' datadog-agent").stdout
    assert version == standin_repo.packages["datadog-agent"]
    assert host.root("id -gn dd-agent").stdout.strip() == "dd-agent"
    layout = set(host.root("find /etc/datadog-agent /var/log/datadog").stdout.split())
    etc = "/etc/datadog-agent"
    assert {f"{etc}/datadog.yaml.example", f"{etc}/conf.d/mysql.d/conf.yaml.example", f"{etc}/checks.d",
            "/var/log/datadog"} <= layout
    assert f"{etc}/datadog.yaml" not in layout, "the recipe writes datadog.yaml, the package must not"
    assert "STAND-IN" in status.stdout and status.failed  # no datadog.yaml yet
    assert any(path.endswith("_amd64.deb") and "datadog-agent" in path for path in standin_repo.requests)


def test_standin_agent_service_logs_each_start_and_restart(flavoured_host, standin_repo):
    """`service` runs the init script without systemd and the systemd unit with it: both log alike."""
    host = flavoured_host
    install_standin_agent(host, standin_repo)
    host.root("service datadog-agent start && service datadog-agent restart", check=True)
    assert restart_events(host) == ["start", "restart"]
    assert host.root("service datadog-agent status").returncode == 0
    status = host.root("datadog-agent status")
    assert status.returncode == 0 and "STAND-IN" in status.stdout and "running (pid" in status.stdout
    host.root("service datadog-agent stop", check=True)
    assert host.root("datadog-agent status").returncode == 1
    check = host.root("datadog-agent check mysql")
    assert check.returncode == 1 and "no config found" in check.stdout


def test_standin_repo_is_refused_with_a_wrong_key(test_host, standin_repo, tmp_path):
    wrong = throwaway_key(tmp_path / "gnupg", "Wrong key")
    try:
        wrong.export_binary(tmp_path / "wrong.gpg")
    finally:
        wrong.close()
    add_repo_with_keyring(test_host, standin_repo, (tmp_path / "wrong.gpg").read_bytes())
    with connect(test_host) as conn:
        update = conn.sudo("apt-get update", hide=True, warn=True)
        install = conn.sudo("apt-get install -y -q datadog-agent", hide=True, warn=True)
    assert "NO_PUBKEY" in update.stderr or "not signed" in update.stderr, update.stderr
    assert install.failed
    assert test_host.root("dpkg-query -W datadog-agent").returncode != 0


@pytest.mark.parametrize("testhost_flavour", ["bookworm", "systemd"], indirect=True)
def test_three_hosts_run_at_once_and_are_isolated(testhost_flavour):
    with booted(3, testhost_flavour) as hosts:
        check_three_isolated_hosts(hosts)


def check_three_isolated_hosts(hosts):
    assert len({h.addr for h in hosts}) == len({h.name for h in hosts}) == 3
    first, second = hosts[0], hosts[1]
    first.root("echo only-on-first > /root/marker; (sleep 300 >/dev/null 2>&1 &)", check=True)
    assert second.root("cat /root/marker").returncode != 0
    assert "sleep 300" not in second.root("ps -eo args").stdout
    assert "sleep 300" in first.root("ps -eo args").stdout
    reach = first.root(f"curl -sS --max-time 3 --noproxy '*' telnet://{second.addr}:22 </dev/null")
    assert reach.returncode != 0, "a guest must not reach another guest"

    def whoami(host):
        with connect(host) as conn:
            return conn.run("hostname", hide=True).stdout.strip()

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(whoami, hosts)) == [h.name for h in hosts]


# --- the step engine's command runner (recipes.vm.session.run_script) over the real sshd ---------------------
# A background child keeps the session's stdout open: sshd sends exit-status when the shell exits and
# the output (3 MB after a delay) only later, then EOF. This is what a busy machine does to any command.
LATE_OUTPUT = ("( sleep 1; head -c 3000000 /dev/zero | tr '\\0' o; echo END; "
               "head -c 200000 /dev/zero | tr '\\0' e >&2 ) & exit 7")


@on_bookworm_shared
def test_the_late_output_scenario_really_sends_the_exit_status_before_the_output(shared_host):
    with connect(shared_host) as conn:
        conn.open()
        channel = conn.transport.open_session()
        channel.exec_command(LATE_OUTPUT)
        assert channel.status_event.wait(10)
        assert channel.exit_status == 7
        assert not channel.eof_received and not channel.recv_ready()  # the output is still to come
        channel.close()


@on_bookworm_shared
def test_the_command_runner_reads_output_that_arrives_after_the_exit_status(shared_host):
    from recipes.vm.session import run_script

    with connect(shared_host) as conn:
        outcome = run_script(conn, "bash -s", LATE_OUTPUT + "\n", timeout=60)
    assert outcome.exited == 7
    assert outcome.stdout == "o" * 3_000_000 + "END\n"
    assert outcome.stderr == "e" * 200_000


@on_bookworm_shared
def test_the_command_runner_times_out_with_a_message_when_the_output_never_ends(shared_host):
    from recipes.vm.session import SessionFailed, run_script

    with connect(shared_host) as conn:
        with pytest.raises(SessionFailed, match="timed out after 2 s"):
            run_script(conn, "bash -s", "( sleep 30 ) & exit 0\n", timeout=2)


# --- teardown and reaping -------------------------------------------------------------------------------
def guest_processes(host) -> list[int]:
    """PIDs (on this machine) of every process in the host's PID namespace."""
    pid_ns = Path(f"/proc/{host.pid1}/ns/pid").readlink()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "ns/pid").readlink() == pid_ns:
                found.append(int(proc.name))
        except OSError:
            pass
    return found


def nspawn_leftovers(name: str, lock: Path | None, running: bool = False) -> list[str]:
    """The cgroups, propagation dir and image lock systemd-nspawn made for this host name, where present. Once
    the host is gone (``running`` false), a lock file that a live process holds is not its leftover: the lock
    is named after the overlay's device number, which the kernel hands to the next mount, so it is another
    host's, booted since."""
    paths = [root / name for root in boot.cgroup_roots()] + [boot.NSPAWN_RUN / "propagate" / name]
    if lock is not None and (running or not held(lock)):
        paths.append(lock)
    return [str(path) for path in paths if path.exists()]


def held(path: Path) -> bool:
    """Whether a live process holds a lock on the file (it is in /proc/locks)."""
    try:
        st = path.stat()
    except OSError:
        return False
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    return ident in re.findall(r"\b[0-9a-f]+:[0-9a-f]+:\d+\b", Path("/proc/locks").read_text())


def test_stop_leaves_no_namespace_cgroup_lock_mount_or_process(flavoured_host):
    host = flavoured_host
    pid1, boot_pid, proxy_pid, workdir = host.pid1, host._boot.pid, host._proxy.pid, host.workdir
    rootfs = str(host.rootfs)
    lock = boot.image_lock(host.rootfs) if host.has_systemd else None
    host.root("(sleep 300 >/dev/null 2>&1 &)", check=True)
    if host.has_systemd:
        host.root("systemd-run --unit=rb-sleeper sleep 300", check=True)
        assert nspawn_leftovers(host.name, lock, running=True) and lock.exists(), "nspawn makes cgroups and a lock"
    guest = guest_processes(host)
    assert len(guest) >= 2  # PID 1 (sshd or systemd) and the sleep at least
    host.stop()
    assert [pid for pid in [pid1, boot_pid, proxy_pid, *guest] if Path(f"/proc/{pid}").exists()] == []
    netns_names = [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                              text=True).stdout.splitlines()]
    assert host.name not in netns_names
    assert not Path(f"/sys/class/net/rbh{host.index}").exists()
    assert not workdir.exists()
    assert nspawn_leftovers(host.name, lock) == []
    leftovers = subprocess.run(["grep", "-l", rootfs] + [str(p) for p in Path("/proc").glob("[0-9]*/mountinfo")],
                               capture_output=True, text=True).stdout
    assert leftovers == ""
    host.stop()  # idempotent


def output_of_a_killed_run(script: str) -> str:
    """Run ``script`` in a separate Python that SIGKILLs itself (no cleanup ran); return what it printed."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent.parent).stdout


def test_hosts_of_a_killed_run_are_reaped_by_the_next_start(testhost_flavour, testhost_rootfs):
    killed_run = ("import os, signal; from tests.testhost import boot, start_hosts\n"
                  f"(h,) = start_hosts(1, {testhost_flavour!r})\n"
                  "print(h.name, h.pid1, h._boot.pid, h._proxy.pid, h.workdir, boot.image_lock(h.rootfs), flush=True)\n"
                  "os.kill(os.getpid(), signal.SIGKILL)\n")
    out = output_of_a_killed_run(killed_run)
    name, pid1, boot_pid, proxy_pid, workdir, lock = out.split()
    assert Path(f"/proc/{pid1}").exists(), "the killed run's host should still be running"
    if FLAVOURS[testhost_flavour].systemd:
        assert nspawn_leftovers(name, Path(lock), running=True) and Path(lock).exists(), \
            "the killed run's nspawn should hold cgroups and a lock"
    # The next start of any flavour reaps. A bookworm host makes no cgroups or nspawn lock, so if it takes
    # over the freed name, whatever is left under that name is the killed run's. If another test process
    # (pytest-xdist, a second run) took the freed name first, what is under it is that process's host.
    (host,) = start_hosts(1)
    try:
        assert [pid for pid in (pid1, boot_pid, proxy_pid) if Path(f"/proc/{pid}").exists()] == []
        if host.name == name:
            assert nspawn_leftovers(name, Path(lock)) == []
        else:
            state = Path(workdir) / "state.json"
            owned = {str(pid) for pid, _ in json.loads(state.read_text())["pids"].values()} if state.exists() else set()
            assert pid1 not in owned, "the killed run's host was not reaped"
    finally:
        host.stop()


def test_a_repo_address_left_by_a_killed_run_is_reclaimed(standin_repo):
    killed_run = ("import os, signal; from tests.testhost import standin_apt_repo\n"
                  "r = standin_apt_repo(); print(r.addr, r.workdir, flush=True)\n"
                  "os.kill(os.getpid(), signal.SIGKILL)\n")
    out = output_of_a_killed_run(killed_run)
    addr, workdir = out.split()
    assert f" {addr}/32" in subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "lo"],
                                           capture_output=True, text=True).stdout
    again = standin_apt_repo()  # takes the lowest free address: the orphan's, once reclaimed
    try:
        assert not Path(workdir).exists()
        owner_file = Path(f"/run/runbook-testhost-repo-{addr}.json")
        assert not owner_file.exists() or workdir not in owner_file.read_text()
    finally:
        again.stop()


# --- systemd flavours -----------------------------------------------------------------------------------
on_systemd = pytest.mark.parametrize("testhost_flavour", SYSTEMD_FLAVOURS, indirect=True)
on_systemd_shared = pytest.mark.parametrize("shared_flavour", SYSTEMD_FLAVOURS, indirect=True)


@on_systemd_shared
def test_systemd_is_pid1_and_the_system_is_running(shared_host):
    state = shared_host.root("systemctl is-system-running").stdout.strip()
    failed = shared_host.root("systemctl --failed --no-legend --plain").stdout
    assert state == "running", f"{state}; failed units:\n{failed}"
    assert shared_host.root("cat /proc/1/comm").stdout.strip() == "systemd"
    assert shared_host.root("systemctl is-active ssh").stdout.strip() == "active"


@on_systemd_shared
def test_a_unit_with_user_and_restart_on_failure_restarts_after_sigkill(shared_host):
    host = shared_host
    unit = ("[Service]\nUser=vagrant\nGroup=vagrant\nRestart=on-failure\nRestartSec=0.2\n"
            "ExecStart=/bin/sleep infinity\n")
    host.root("cat > /etc/systemd/system/rb-sleeper.service && systemctl daemon-reload", input=unit, check=True)
    host.root("systemctl start rb-sleeper", check=True)
    first = main_pid(host, "rb-sleeper")
    assert runs_as(host, first, "vagrant", "sleep")
    host.root(f"kill -KILL {first}", check=True)
    second = wait_for(lambda: (pid := main_pid(host, "rb-sleeper")) not in (0, first) and pid)
    assert second, host.root("systemctl status rb-sleeper").stdout
    assert host.root("systemctl is-active rb-sleeper").stdout.strip() == "active"
    assert runs_as(host, second, "vagrant", "sleep")


@on_systemd
def test_standin_agent_is_a_systemd_service(flavoured_host, standin_repo):
    host = flavoured_host
    install_standin_agent(host, standin_repo)
    assert host.root("systemctl is-enabled datadog-agent").stdout.strip() == "enabled"
    assert host.root("systemctl show -p FragmentPath --value datadog-agent").stdout.strip().endswith(
        "/systemd/system/datadog-agent.service")
    host.root("systemctl restart datadog-agent", check=True)
    first = main_pid(host, "datadog-agent")
    assert runs_as(host, first, "dd-agent", "sleep")  # the stand-in agent's `run` is `sleep infinity`
    host.root("systemctl restart datadog-agent", check=True)
    second = main_pid(host, "datadog-agent")
    assert second not in (0, first)
    status = host.root("datadog-agent status")
    assert status.returncode == 0 and f"running (pid {second})" in status.stdout, status.stdout
    host.root(f"kill -KILL {second}", check=True)  # Restart=on-failure brings it back, logged as a restart
    assert wait_for(lambda: main_pid(host, "datadog-agent") not in (0, second))
    assert wait_for(lambda: restart_events(host) == ["start", "restart", "restart"]), restart_events(host)
    host.root("systemctl stop datadog-agent", check=True)
    assert host.root("datadog-agent status").returncode == 1


@pytest.mark.parametrize("shared_flavour", ["mysql"], indirect=True)
def test_the_mysql_flavour_runs_oracle_mysql_under_systemd(shared_host):
    host = shared_host
    version = host.root("mysqld --version").stdout
    assert "MariaDB" not in version and re.search(r"\bVer (8|9)\.\d+", version), version
    assert host.root("systemctl is-active mysql").stdout.strip() == "active"
    assert host.root("mysql -N -e 'select @@version'").stdout.strip() == version.split("Ver ")[1].split()[0]
    assert host.root("test -f /etc/logrotate.d/mysql-server && test -d /etc/mysql/mysql.conf.d").returncode == 0
