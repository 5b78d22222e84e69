"""End to end: the VM recipes run over real SSH (`invoke ... --host`) against the Debian test host, with the
STAND-IN Datadog Agent apt repository; the tests then inspect the host as root (files, owners, modes, ACLs,
the MariaDB user and grants, performance_schema, the integration's queries as the datadog user).

Cost here (2 cores, warm rootfs cache): about 4 minutes for the module.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from recipes.uvtool import UvNotFound, child_env, uv_command
from tests.testhost_fixtures import requires_root
from tests.vm_run import (CONF_YAML, DATADOG_YAML, DROPIN, ROOT, assert_configured, changed_count,
                          full_state, invoke, ok, restarts, write_config)

pytestmark = [pytest.mark.e2e, requires_root]

CAPTURES = ROOT / "artifacts" / "captures"
FIGURES = ROOT / "artifacts" / "vm-timings.json"


def capture(name: str, text: str) -> None:
    CAPTURES.mkdir(parents=True, exist_ok=True)
    (CAPTURES / name).write_text(text)


def record_figure(name: str, seconds: float) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[name] = round(seconds, 1)
    FIGURES.write_text(json.dumps(figures, indent=1))


def timed(config, *args, **kwargs):
    """Run a task; also return the engine's own figure (connect to summary, printed as `N host(s) in X s`)."""
    result = invoke(config, *args, **kwargs)
    found = re.search(r"host\(s\) in ([\d.]+) s", result.stdout)
    return result, float(found.group(1)) if found else -1.0


def test_full_setup_configures_a_fresh_host_and_the_second_run_changes_nothing(tmp_path, test_host, standin_repo):
    config = write_config(tmp_path, test_host, standin_repo)
    seen_before = len(standin_repo.requests)
    connections, sessions = test_host.ssh_counts()
    first, first_seconds = timed(config, "setup", "--host", test_host.target, subprocess_=True)
    out = ok(first)
    # Counted by the guest's sshd: one connection; a session for the lock with sudo's check and the state reads,
    # and one per change that a later read depends on (two apt transactions, a restart, the queries) or that ends
    # the run (docs/reference/performance.md lists the six).
    after = test_host.ssh_counts()
    assert after[0] == connections + 1 and after[1] - sessions <= 6, f"first run: {after[1] - sessions} sessions"
    assert changed_count(out) >= 10 and "restart datadog-agent" in out
    assert_configured(test_host)
    refreshes = [path for path in standin_repo.requests[seen_before:] if path.endswith("/dists/stable/InRelease")]
    # apt really used the repo, and refreshed its lists once: after writing the Agent's source, not again for
    # MariaDB (the lists were then newer than every source).
    assert len(refreshes) == 1, f"apt-get update reached the Agent's repository {len(refreshes)} times"
    # Debian's lists were fresh (fetched after every source was written) and the packages are in the image's
    # apt cache: nothing at all went out to the Debian mirror. Only the new source's lists were fetched.
    outside = [url for url in test_host.proxied_requests() if not url.startswith(standin_repo.url)]
    assert outside == [], f"went out to the Debian mirror: {outside}"
    restarts_after_first = restarts(test_host)
    assert restarts_after_first >= 1

    connections, sessions = test_host.ssh_counts()
    second, second_seconds = timed(config, "setup", "--host", test_host.target)
    out = ok(second)
    assert changed_count(out) == 0, out
    after = test_host.ssh_counts()
    # The lock with sudo's check and every state read, then the login and queries as the datadog user (they need
    # its password, read in the first).
    assert after == (connections + 1, sessions + 2), f"no-change re-run: {after[1] - sessions} sessions"
    assert restarts(test_host) == restarts_after_first, "the second run restarted the Agent"
    record_figure("setup_first_run_s", first_seconds)
    record_figure("setup_second_run_s", second_seconds)

    verify = ok(invoke(config, "verify", "--host", test_host.target))
    assert "Agent (v7" in verify and "custom_my_metric" in verify and f"hostname {test_host.name}" in verify
    misnamed = write_config(tmp_path, test_host, standin_repo, api={"host": "datadog-exercise"})
    wrong = invoke(misnamed, "verify", "--host", test_host.target)
    assert wrong.returncode == 1 and f"set api.host: {test_host.name}" in wrong.stdout

    dry = ok(invoke(config, "setup", "--dry-run", "--host", test_host.target))
    assert changed_count(dry) == 0 and "diff:" not in dry
    assert_rotation_keeps_the_logs_readable(test_host)


# --- the user's box: every flavour of test host (Debian without systemd, systemd, Oracle MySQL under systemd) ---
def test_setup_rerun_dry_run_verify_and_rotation_on_each_flavour(tmp_path, flavoured_host, standin_repo):
    host = flavoured_host
    config = write_config(tmp_path, host, standin_repo)
    fresh = full_state(host)
    assert changed_count(ok(invoke(config, "setup", "--dry-run", "--host", host.target))) >= 10
    assert full_state(host) == fresh, "a dry run on a fresh host changed it"
    first, first_seconds = timed(config, "setup", "--host", host.target)
    assert changed_count(ok(first)) >= 10
    assert_configured(host)
    record_figure(f"setup_first_run_{host.flavour}_s", first_seconds)
    agent_restarts, server = restarts(host), server_process(host)

    second, second_seconds = timed(config, "setup", "--host", host.target)
    assert changed_count(ok(second)) == 0, second.stdout
    assert restarts(host) == agent_restarts, "the second run restarted the Agent"
    assert server_process(host) == server, "the second run restarted the database server"
    record_figure(f"setup_second_run_{host.flavour}_s", second_seconds)
    dry = ok(invoke(config, "setup", "--dry-run", "--host", host.target))
    assert changed_count(dry) == 0 and "diff:" not in dry
    assert f"hostname {host.name}" in ok(invoke(config, "verify", "--host", host.target))
    assert_rotation_keeps_the_logs_readable(host)
    if host.has_systemd:
        assert_agent_runs_under_systemd(host)
    if host.flavour == "mysql":
        assert_oracle_mysql_kept_and_settled(host)


def server_process(host) -> str:
    """The database server's PID and start time: a restart changes both."""
    return host.root("for p in $(pidof mariadbd mysqld); do ps -o pid=,lstart= -p $p; done").stdout.strip()


def assert_agent_runs_under_systemd(host) -> None:
    """Every start and restart of the Agent went through its systemd unit."""
    assert host.root("systemctl is-active datadog-agent").stdout.strip() == "active"
    main = host.root("systemctl show -p MainPID --value datadog-agent").stdout.strip()
    assert main not in ("", "0") and host.root("cat /run/datadog-agent.pid").stdout.strip() == main
    started = host.root("journalctl -u datadog-agent -o cat --no-pager | grep -c '^Started'").stdout.strip()
    assert int(started) == restarts(host) >= 1, f"journal: {started} starts, restarts log: {restarts(host)}"


def assert_oracle_mysql_kept_and_settled(host) -> None:
    """The box's Oracle MySQL is kept (no MariaDB over it) and reads the runbook's drop-in last."""
    status = host.root("dpkg-query -W -f='${Package} ${db:Status-Status}\\n' mysql-server mariadb-server").stdout
    assert "mysql-server installed" in status and "mariadb-server installed" not in status, status
    assert "MariaDB" not in host.root("mysql -N -B -e 'SELECT @@version, @@version_comment'").stdout
    effective = re.findall(r"^--log[_-]error=(.*)$", host.root("my_print_defaults mysqld").stdout, re.MULTILINE)
    assert effective[-1] == "/var/log/mysql/mysql_error.log", effective


def assert_rotation_keeps_the_logs_readable(host) -> None:
    """The daily rotation as cron would run it: it must succeed, and dd-agent must read the new files."""
    assert host.root("command -v logrotate").returncode == 0, "the test image must have logrotate, as a real box has"
    before = set(host.root("ls /var/log/mysql").stdout.split())
    rotated = host.root("logrotate --force /etc/logrotate.conf")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    after = set(host.root("ls /var/log/mysql").stdout.split())
    assert any(name.startswith("mysql_error.log") for name in after - before), f"nothing rotated: {after}"
    read = host.root("su -s /bin/sh dd-agent -c 'head -c 0 /var/log/mysql/mysql_error.log'")
    assert read.returncode == 0, f"dd-agent cannot read the new error log: {read.stderr}"


def test_a_cut_run_converges_without_duplicate_users_or_lines(tmp_path, test_host, standin_repo):
    config = write_config(tmp_path, test_host, standin_repo)
    ok(invoke(config, "setup", "--host", test_host.target))
    # Cut after CREATE USER but before conf.yaml was written: the password is lost with it.
    test_host.root(f"rm -f {CONF_YAML}", check=True)
    # Cut after the drop-in was written but before the server restart: the running server lacks it.
    test_host.root(f"sed -i 's/performance_schema = ON/performance_schema = OFF/' {DROPIN} && service mariadb restart"
                   f" >/dev/null && sed -i 's/performance_schema = OFF/performance_schema = ON/' {DROPIN}", check=True)
    assert test_host.root("mysql -N -B -e 'SELECT @@performance_schema'").stdout.strip() == "0"
    # What earlier versions of the runbook wrote: a rotation block that collides with the server package's.
    test_host.root("printf '# Managed by this runbook (invoke setup-mysql)\\n/var/log/mysql/mysql_error.log {\\n}\\n'"
                   " > /etc/logrotate.d/dd-agent_ACLs", check=True)
    before = restarts(test_host)
    out = ok(invoke(config, "setup-mysql", "--host", test_host.target))
    assert "the running server has not loaded it yet" in out and "restart mariadb" in out
    assert "removed /etc/logrotate.d/dd-agent_ACLs" in out
    assert_configured(test_host)
    assert restarts(test_host) == before + 1  # conf.yaml was rewritten: exactly one Agent restart
    assert test_host.root(f"grep -c '^tags:' {DATADOG_YAML}").stdout.strip() == "1"
    # Cut after datadog.yaml was written but before the Agent restart: the Agent is not running.
    test_host.root("service datadog-agent stop", check=True)
    started = ok(invoke(config, "setup", "--host", test_host.target))
    assert re.search(r"changed\s+datadog-agent running", started) and changed_count(started) == 2  # + the restart
    assert test_host.root("service datadog-agent status").returncode == 0
    again = ok(invoke(config, "setup", "--host", test_host.target))
    assert changed_count(again) == 0


def check_run_output() -> str:
    """The check's own submissions under datadog_checks.base (the stand-in Agent runs no check), for the capture."""
    try:
        done = subprocess.run(uv_command("run", "--project", "tests/agent_check", "python",
                                         "tests/agent_check/run_once.py", "3"),
                              cwd=ROOT, capture_output=True, text=True, timeout=300, env=child_env())
        return done.stdout + done.stderr[-500:] if done.returncode else done.stdout
    except (OSError, subprocess.TimeoutExpired, UvNotFound) as error:
        return f"(not captured: {error})\n"


def step_of(output: str, title: str) -> str:
    """One step of a run's output: the diff it showed (printed before its line) and its line, which names ``title``."""
    lines = output.splitlines()
    end = next(i for i, line in enumerate(lines) if title in line)
    start = end
    while start > 0 and (lines[start - 1].startswith("    ") or lines[start - 1].endswith(" diff:")):
        start -= 1
    return "\n".join(lines[start:end + 1]) + "\n"


def logs_agent_section(host) -> str:
    """The Logs Agent section of `datadog-agent status` on the host (the stand-in prints it as the Agent does)."""
    status = host.root("datadog-agent status").stdout
    return status[status.index("==========\nLogs Agent"):]


def test_each_step_alone_with_dry_runs_and_the_captures(tmp_path, test_host, standin_repo):
    config = write_config(tmp_path, test_host, standin_repo)
    # A dry run on a fresh host shows diffs and changes nothing.
    files_before = test_host.root("ls /etc/apt/sources.list.d /etc/datadog-agent 2>&1; dpkg -l | wc -l").stdout
    dry = ok(invoke(config, "setup", "--dry-run", "--host", test_host.target))
    assert "+deb [signed-by=/usr/share/keyrings/datadog-archive-keyring.gpg]" in dry
    assert "+api_key: ********" in dry and "changed (dry run)" in dry
    assert test_host.root("ls /etc/apt/sources.list.d /etc/datadog-agent 2>&1; dpkg -l | wc -l").stdout == files_before

    ok(invoke(config, "install-agent", "--host", test_host.target))
    tags_dry = ok(invoke(config, "tag-host", "--dry-run", "--host", test_host.target))
    capture("tags-yaml.txt", tags_dry)
    assert "+tags:" in tags_dry and "+  - env:dev" in tags_dry
    assert "tags:" not in test_host.root(f"cat {DATADOG_YAML}").stdout
    before = restarts(test_host)
    ok(invoke(config, "tag-host", "--host", test_host.target))
    assert restarts(test_host) == before + 1
    out = ok(invoke(config, "tag-host", "--tag", "env:prod", "--tag", "team:db", "--host", test_host.target))
    assert "tags:\n  - env:prod\n  - team:db\n" in test_host.root(f"cat {DATADOG_YAML}").stdout
    assert restarts(test_host) == before + 2 and "ran once" in out
    ok(invoke(config, "tag-host", "--tag", "env:prod", "--tag", "team:db", "--host", test_host.target))
    assert restarts(test_host) == before + 2  # unchanged tags: no restart
    ok(invoke(config, "tag-host", "--host", test_host.target))  # back to the site's tags (agent.tags)
    assert restarts(test_host) == before + 3

    # What Ubuntu's MySQL leaves: /var/log/mysql as mysql:adm 2750, unreadable by dd-agent.
    test_host.root("getent group adm >/dev/null || groupadd adm; groupadd --system mysql && useradd --system -g mysql "
                   "--no-create-home -d /nonexistent -s /bin/false mysql; "
                   "install -d -o mysql -g adm -m 2750 /var/log/mysql && "
                   "install -o mysql -g adm -m 0640 /dev/null /var/log/mysql/mysql_error.log", check=True)
    denied = test_host.root("su -s /bin/sh dd-agent -c 'ls -l /var/log/mysql' 2>&1")
    capture("permissions-error.txt", "$ sudo -u dd-agent ls -l /var/log/mysql\n" + denied.stdout)
    assert denied.returncode != 0 and "Permission denied" in denied.stdout

    mysql_dry = ok(invoke(config, "setup-mysql", "--dry-run", "--host", test_host.target))
    capture("integration-fix.txt", "$ ./run setup-mysql --dry-run   (the conf.yaml step)\n"
                                   + step_of(mysql_dry, "integration config /etc/datadog-agent/conf.d/mysql.d/conf.yaml"))
    assert "+    port: 3306" in mysql_dry and "password: ********" in mysql_dry
    assert re.search(r"^\s*\+\s*extra_performance_metrics\s*:", mysql_dry, re.MULTILINE) is None
    ok(invoke(config, "setup-mysql", "--host", test_host.target))
    allowed = test_host.root("su -s /bin/sh dd-agent -c 'ls -l /var/log/mysql' 2>&1")
    assert allowed.returncode == 0 and "mysql_error.log" in allowed.stdout

    # The ACLs lost, as a hand-set ACL is at the next rotation: the Agent's status says it cannot tail the
    # logs, verify fails naming them, and a re-run of setup-mysql sets the ACLs again.
    test_host.root("setfacl -R -b /var/log/mysql", check=True)
    untailed = logs_agent_section(test_host)
    capture("logs-agent-error.txt", "$ sudo datadog-agent status   (its Logs Agent section)\n" + untailed)
    assert "Status: Error: file /var/log/mysql/mysql_error.log does not exist" in untailed
    failed = invoke(config, "verify", "--host", test_host.target)
    assert failed.returncode == 1 and "the Logs Agent cannot tail /var/log/mysql/mysql_error.log" in failed.stdout
    ok(invoke(config, "setup-mysql", "--host", test_host.target))
    tailed = logs_agent_section(test_host)
    capture("logs-agent.txt", "$ sudo datadog-agent status   (its Logs Agent section)\n" + tailed)
    assert "Status: OK" in tailed and "Status: Error" not in tailed
    facl = test_host.root("getfacl -p /var/log/mysql")
    capture("permissions.txt", "$ getfacl /var/log/mysql\n" + facl.stdout)

    check_out = ok(invoke(config, "custom-check", "--host", test_host.target))
    verify = ok(invoke(config, "verify", "--host", test_host.target))
    capture("my-metric-terminal.txt", "$ ./run custom-check\n" + check_out + "\n$ ./run verify\n" + verify
            + "\n$ uv run --project tests/agent_check python tests/agent_check/run_once.py 3\n" + check_run_output())
    assert "custom_my_metric" in verify
    assert "the stand-in Agent runs no check, so no my_metric to show" in verify  # said, not marked found
    assert_configured(test_host)


def test_parallel_setup_on_three_hosts(tmp_path, test_hosts, standin_repo):
    targets = [arg for h in test_hosts for arg in ("--host", h.target)]
    # Each host has its own known_hosts file: join them for the run.
    joined = tmp_path / "known_hosts"
    joined.write_text("".join(Path(h.known_hosts).read_text() for h in test_hosts))
    config = write_config(tmp_path, test_hosts[0], standin_repo, ssh={"known_hosts": str(joined)})
    result, seconds = timed(config, "setup", *targets)
    out = ok(result)
    record_figure("setup_parallel_3_hosts_s", seconds)
    for host in test_hosts:
        assert host.target.replace(":22", "") in out.replace(":22", "")
        assert_configured(host)
    second = ok(invoke(config, "setup", *targets))
    assert changed_count(second) == 0


# --- bad input: each stops with a message naming what is wrong, and changes nothing ------------------------
def host_fingerprint(host) -> str:
    return host.root("ls -la /etc/apt/sources.list.d /etc/mysql 2>&1; cat /etc/datadog-agent/datadog.yaml 2>&1; "
                     "dpkg -l | wc -l").stdout


def test_bad_input_stops_before_anything_is_written(tmp_path, test_host, standin_repo):
    before = host_fingerprint(test_host)
    cases = [
        (write_config(tmp_path, test_host, standin_repo, mysql={"port": "<3306>"}), ["setup-mysql"],
         "mysql.port: '<3306>' is a placeholder; set a real value"),
        (write_config(tmp_path, test_host, standin_repo, mysql={"port": "33o6"}), ["setup"],
         "mysql.port: Input should be a valid integer, not '33o6'"),
        (write_config(tmp_path, test_host, standin_repo), ["tag-host", "--tag", "env dev"], "--tag: bad tag"),
        (write_config(tmp_path, test_host, standin_repo, check={"min_collection_interval": "<45>"}),
         ["custom-check"], "check.min_collection_interval"),
    ]
    for config, args, message in cases:
        result = invoke(config, *args, "--host", test_host.target)
        assert result.returncode == 2 and message in result.stdout + result.stderr, (args, result.stderr)
    missing_key = invoke(write_config(tmp_path, test_host, standin_repo), "install-agent", "--host",
                         test_host.target, api_key=None)
    assert missing_key.returncode == 2 and "DD_API_KEY is not set" in missing_key.stderr

    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    unknown = invoke(write_config(tmp_path, test_host, standin_repo, ssh={"known_hosts": str(empty)}),
                     "install-agent", "--host", test_host.target, subprocess_=True)
    assert unknown.returncode == 1 and "unknown host key, refused" in unknown.stdout
    trusted = invoke(write_config(tmp_path, test_host, standin_repo,
                                  ssh={"known_hosts": str(empty), "trust_unknown_hosts": True}),
                     "custom-check", "--dry-run", "--host", test_host.target)
    ok(trusted)

    test_host.root("useradd -m nosudo && mkdir -p ~nosudo/.ssh && cp ~vagrant/.ssh/authorized_keys ~nosudo/.ssh/ "
                   "&& chown -R nosudo: ~nosudo/.ssh", check=True)
    refused = invoke(write_config(tmp_path, test_host, standin_repo), "install-agent", "--host",
                     test_host.target.replace("vagrant@", "nosudo@"))
    assert refused.returncode == 1 and "cannot run sudo without a password" in refused.stdout
    assert host_fingerprint(test_host) == before

    # Malformed YAML under tags: on the host -> the file and line are named; the file is left as it was.
    broken = "api_key: x\nsite: datadoghq.com\ntags:\n  - env:dev\n - role:db\n"
    test_host.root("mkdir -p /etc/datadog-agent && cat > /etc/datadog-agent/datadog.yaml", input=broken, check=True)
    result = invoke(write_config(tmp_path, test_host, standin_repo), "tag-host", "--host", test_host.target)
    assert result.returncode == 1
    assert re.search(r"/etc/datadog-agent/datadog.yaml: line [45]: malformed YAML", result.stdout), result.stdout
    assert test_host.root(f"cat {DATADOG_YAML}").stdout == broken
    # setup and its dry run read that file before any change: nothing installed, nothing written anywhere in /etc.
    state = full_state(test_host)
    for args in (["setup", "--dry-run"], ["setup"]):
        result = invoke(write_config(tmp_path, test_host, standin_repo), *args, "--host", test_host.target)
        assert result.returncode == 1 and "malformed YAML" in result.stdout, result.stdout
        assert full_state(test_host) == state, f"{args} changed the host"
    # A malformed integration conf.yaml, which only setup-mysql reads: setup finds it before installing the Agent.
    test_host.root(f"rm {DATADOG_YAML} && mkdir -p {CONF_YAML.rsplit('/', 1)[0]} && cat > {CONF_YAML}",
                   input="instances:\n  - host: localhost\n   port: 3306\n", check=True)
    state = full_state(test_host)
    for args in (["setup", "--dry-run"], ["setup"]):
        result = invoke(write_config(tmp_path, test_host, standin_repo), *args, "--host", test_host.target)
        assert result.returncode == 1 and f"{CONF_YAML}: malformed YAML" in result.stdout, result.stdout
        assert full_state(test_host) == state, f"{args} changed the host"


def test_the_vagrant_box_is_the_default_host_through_its_ssh_config(tmp_path, test_host, standin_repo):
    config = write_config(tmp_path, test_host, standin_repo,
                          vagrant={"ssh_config": test_host.ssh_config, "machine": test_host.name})
    out = ok(invoke(config, "custom-check", "--dry-run"))
    assert f"{test_host.name} " in out and "+  - min_collection_interval: 45" in out
    assert test_host.root("ls /etc/datadog-agent/conf.d/custom_my_metric.yaml").returncode != 0
