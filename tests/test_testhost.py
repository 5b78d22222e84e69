"""The Debian test host itself: real SSH, sudo, apt through the proxy, the signed STAND-IN Agent repo,
parallel isolated hosts, and a teardown that leaves nothing behind."""

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import paramiko
import pytest
from fabric import Config, Connection

from tests.testhost import standin_apt_repo, start_hosts
from tests.testhost.standin_repo import throwaway_key
from tests.testhost_fixtures import requires_root

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


def test_vagrant_logs_in_over_real_ssh_with_fabric(test_host):
    with connect(test_host) as conn:
        result = conn.run("id -un; hostname; cat /proc/1/comm", hide=True)
    assert result.stdout.split() == ["vagrant", test_host.name, "sshd"]
    assert test_host.target == f"vagrant@{test_host.addr}:22"


def test_an_unknown_host_key_is_rejected(test_host, tmp_path):
    empty_known_hosts = tmp_path / "known_hosts"
    empty_known_hosts.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(test_host, str(empty_known_hosts)).open()


def test_the_ssh_config_file_works_with_openssh(test_host):
    result = subprocess.run(["ssh", "-F", test_host.ssh_config, "-o", "BatchMode=yes", test_host.name,
                             "echo", "hello-from", "$(hostname)"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"hello-from {test_host.name}"


def test_vagrant_has_passwordless_sudo(test_host):
    with connect(test_host) as conn:
        assert conn.sudo("id -u", hide=True).stdout.strip() == "0"
        assert conn.run("sudo -n true", hide=True, warn=True).ok
    assert test_host.root("id -u").stdout.strip() == "0"


def test_apt_reaches_the_mirror_only_through_the_proxy(test_host):
    routes = test_host.root("cat /proc/net/route").stdout.splitlines()[1:]
    assert not [r for r in routes if r.split()[1] == "00000000"], "the guest must have no default route"
    direct = test_host.root("curl -sS --max-time 5 --noproxy '*' http://deb.debian.org/debian/")
    assert direct.returncode != 0
    with connect(test_host) as conn:
        update = conn.sudo("apt-get update", hide=True, warn=True)
    assert update.ok, update.stderr
    assert "deb.debian.org/debian bookworm InRelease" in update.stdout


def test_prefetched_packages_are_cached_but_not_installed(test_host):
    recipe_packages = "mariadb-server default-mysql-server acl gnupg python3-venv python3-pip"
    installed = test_host.root("dpkg-query -W -f '${db:Status-Status} ${Package}\\n' mariadb-server acl gnupg")
    assert "installed" not in installed.stdout.replace("not-installed", "")
    fetch = test_host.root(f"apt-get install -y -q --download-only --no-download {recipe_packages}")
    assert fetch.returncode == 0, fetch.stdout + fetch.stderr
    with connect(test_host) as conn:
        install = conn.sudo("env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-download acl",
                            hide=True, warn=True)
    assert install.ok, install.stdout + install.stderr
    assert test_host.root("getfacl --version").returncode == 0


def test_standin_agent_installs_from_the_signed_repo(test_host, standin_repo):
    with connect(test_host) as conn:
        install_datadog_repo(conn, standin_repo)
        update = conn.sudo("apt-get update", hide=True, warn=True)
        assert update.ok and "W:" not in update.stderr, update.stderr
        install = conn.sudo("env DEBIAN_FRONTEND=noninteractive apt-get install -y -q datadog-agent "
                            "datadog-signing-keys", hide=True, warn=True)
        assert install.ok, install.stdout + install.stderr
        status = conn.sudo("datadog-agent status", hide=True, warn=True)
    version = test_host.root("dpkg-query -W -f '${Version}' datadog-agent").stdout
    assert version == standin_repo.packages["datadog-agent"]
    assert test_host.root("id -gn dd-agent").stdout.strip() == "dd-agent"
    layout = set(test_host.root("find /etc/datadog-agent /var/log/datadog").stdout.split())
    etc = "/etc/datadog-agent"
    assert {f"{etc}/datadog.yaml.example", f"{etc}/conf.d/mysql.d/conf.yaml.example", f"{etc}/checks.d",
            "/var/log/datadog"} <= layout
    assert f"{etc}/datadog.yaml" not in layout, "the recipe writes datadog.yaml, the package must not"
    assert "STAND-IN" in status.stdout and status.failed  # no datadog.yaml yet
    assert any(path.endswith("_amd64.deb") and "datadog-agent" in path for path in standin_repo.requests)


def test_standin_init_script_logs_each_start_and_restart(test_host, standin_repo):
    add_repo_with_keyring(test_host, standin_repo, standin_repo.keyring_file.read_bytes())
    with connect(test_host) as conn:
        conn.sudo("apt-get update", hide=True)
        conn.sudo("env DEBIAN_FRONTEND=noninteractive apt-get install -y -q datadog-agent", hide=True)
    test_host.root("printf 'api_key: standin\\nhostname: h\\n' > /etc/datadog-agent/datadog.yaml", check=True)
    test_host.root("service datadog-agent start && service datadog-agent restart", check=True)
    log = test_host.root("cat /var/log/datadog-standin/restarts.log").stdout.split("\n")
    assert [line.split()[1] for line in log if line] == ["start", "restart"]
    assert test_host.root("service datadog-agent status").returncode == 0
    status = test_host.root("datadog-agent status")
    assert status.returncode == 0 and "STAND-IN" in status.stdout and "running (pid" in status.stdout
    test_host.root("service datadog-agent stop", check=True)
    assert test_host.root("datadog-agent status").returncode == 1
    check = test_host.root("datadog-agent check mysql")
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


def test_three_hosts_run_at_once_and_are_isolated(test_hosts):
    assert len({h.addr for h in test_hosts}) == len({h.name for h in test_hosts}) == 3
    first, second = test_hosts[0], test_hosts[1]
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
        assert list(pool.map(whoami, test_hosts)) == [h.name for h in test_hosts]


# --- the step engine's command runner (recipes.steps.run_script) over the real sshd ---------------------
# A background child keeps the session's stdout open: sshd sends exit-status when the shell exits and
# the output (3 MB after a delay) only later, then EOF. This is what a busy machine does to any command.
LATE_OUTPUT = ("( sleep 1; head -c 3000000 /dev/zero | tr '\\0' o; echo END; "
               "head -c 200000 /dev/zero | tr '\\0' e >&2 ) & exit 7")


def test_the_late_output_scenario_really_sends_the_exit_status_before_the_output(test_host):
    with connect(test_host) as conn:
        conn.open()
        channel = conn.transport.open_session()
        channel.exec_command(LATE_OUTPUT)
        assert channel.status_event.wait(10)
        assert channel.exit_status == 7
        assert not channel.eof_received and not channel.recv_ready()  # the output is still to come
        channel.close()


def test_the_command_runner_reads_output_that_arrives_after_the_exit_status(test_host):
    from recipes.steps import run_script

    with connect(test_host) as conn:
        outcome = run_script(conn, "bash -s", LATE_OUTPUT + "\n", timeout=60)
    assert outcome.exited == 7
    assert outcome.stdout == "o" * 3_000_000 + "END\n"
    assert outcome.stderr == "e" * 200_000


def test_the_command_runner_times_out_with_a_message_when_the_output_never_ends(test_host):
    from recipes.steps import StepFailed, run_script

    with connect(test_host) as conn:
        with pytest.raises(StepFailed, match="timed out after 2 s"):
            run_script(conn, "bash -s", "( sleep 30 ) & exit 0\n", timeout=2)


def test_stop_leaves_no_namespace_mount_or_process(testhost_rootfs):
    (host,) = start_hosts(1)
    pid1, proxy_pid, workdir, rootfs = host.pid1, host._proxy.pid, host.workdir, str(host.rootfs)
    host.root("(sleep 300 >/dev/null 2>&1 &)", check=True)
    children = host.root("ps -eo pid= ").stdout.split()
    assert len(children) >= 3  # sshd, the sleep, ps itself
    host.stop()
    assert not Path(f"/proc/{pid1}").exists()
    assert not Path(f"/proc/{proxy_pid}").exists()
    netns_names = [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                              text=True).stdout.splitlines()]
    assert host.name not in netns_names
    assert not Path(f"/sys/class/net/rbh{host.index}").exists()
    assert not workdir.exists()
    leftovers = subprocess.run(["grep", "-l", rootfs] + [str(p) for p in Path("/proc").glob("[0-9]*/mountinfo")],
                               capture_output=True, text=True).stdout
    assert leftovers == ""
    host.stop()  # idempotent


def output_of_a_killed_run(script: str) -> str:
    """Run ``script`` in a separate Python that SIGKILLs itself (no cleanup ran); return what it printed."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parent.parent).stdout


def test_hosts_of_a_killed_run_are_reaped_by_the_next_start(testhost_rootfs):
    killed_run = ("import os, signal; from tests.testhost import start_hosts\n"
                  "(h,) = start_hosts(1); print(h.name, h.pid1, h._proxy.pid, h.workdir, flush=True)\n"
                  "os.kill(os.getpid(), signal.SIGKILL)\n")
    out = output_of_a_killed_run(killed_run)
    name, pid1, proxy_pid, workdir = out.split()
    assert Path(f"/proc/{pid1}").exists(), "the killed run's host should still be running"
    (host,) = start_hosts(1)
    try:
        assert not Path(f"/proc/{pid1}").exists() and not Path(f"/proc/{proxy_pid}").exists()
        if host.name != name:  # else the new host took over the freed name and work dir
            assert not Path(workdir).exists() and not Path(f"/run/netns/{name}").exists()
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
