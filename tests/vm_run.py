"""What the VM tests share: a config for the test host, running a task as a user would, and looking at the host
after it (files, packages, the database user) as root."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.inprocess import run_task

ROOT = Path(__file__).resolve().parent.parent
STANDIN_API_KEY = "standin0123456789abcdef01234567"  # a stand-in key: nothing here talks to Datadog
DATADOG_YAML = "/etc/datadog-agent/datadog.yaml"
CONF_YAML = "/etc/datadog-agent/conf.d/mysql.d/conf.yaml"
RESTARTS = "/var/log/datadog-standin/restarts.log"
DROPIN = "/etc/mysql/mariadb.conf.d/zz-datadog.cnf"


def write_config(tmp_path, host, repo, **extra) -> Path:
    """An invoke runtime config pointing the recipes at the test host's key and the stand-in repo."""
    config = {
        "ssh": {"key_file": host.key_file, "known_hosts": host.known_hosts},
        "agent": {"repo_url": repo.url, "key_urls": [repo.key_url]},
        "api": {"host": host.name},  # the guest's hostname, what the Agent reports (verify checks it)
    }
    for section, values in extra.items():
        config.setdefault(section, {}).update(values)
    path = tmp_path / f"invoke-{len(list(tmp_path.glob('invoke-*')))}.json"
    path.write_text(json.dumps(config))
    return path


def invoke(config: Path, *args: str, api_key: str | None = STANDIN_API_KEY, subprocess_: bool = False):
    """Run a task as a user would (`invoke -f CONFIG task ...`, no terminal), as a child process or in-process.

    In-process runs go through invoke's own Program (same parser, config files and exit codes); they save
    the ~4 s that importing every recipe module (matplotlib included) costs each new process.
    """
    env = {k: v for k, v in os.environ.items() if k != "DD_API_KEY"}
    env["COLUMNS"] = "160"
    if api_key is not None:
        env["DD_API_KEY"] = api_key
    argv = ["invoke", "-f", str(config), *args]
    if subprocess_:
        return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=900)
    code, out, err = run_task(argv[1:], env)
    return subprocess.CompletedProcess(argv, code, out, err)


def changed_count(output: str) -> int:
    return len(re.findall(r"^\S+ (?:\[\d+/\d+\] )?changed\b", output, re.MULTILINE))


def restarts(host) -> int:
    out = host.root(f"cat {RESTARTS} 2>/dev/null").stdout
    return len(out.splitlines())


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert STANDIN_API_KEY not in result.stdout + result.stderr
    return result.stdout


def assert_configured(host, tags=("env:dev", "role:database", "owner:runbook")) -> None:
    """Inspect a host after `setup` as root: files, owners, modes, ACLs, MariaDB user, grants, queries."""
    stat = host.root(f"stat -c '%U %G %a %n' {DATADOG_YAML} {CONF_YAML} /usr/share/keyrings/datadog-archive-keyring.gpg "
                     "/etc/datadog-agent/checks.d/custom_my_metric.py /etc/datadog-agent/conf.d/custom_my_metric.yaml"
                     ).stdout.splitlines()
    assert stat == [f"dd-agent dd-agent 640 {DATADOG_YAML}", f"dd-agent dd-agent 640 {CONF_YAML}",
                    "root root 644 /usr/share/keyrings/datadog-archive-keyring.gpg",
                    "dd-agent dd-agent 644 /etc/datadog-agent/checks.d/custom_my_metric.py",
                    "dd-agent dd-agent 644 /etc/datadog-agent/conf.d/custom_my_metric.yaml"]
    assert host.root("test -e /etc/logrotate.d/dd-agent_ACLs").returncode != 0, "a second rotation block"
    datadog_yaml = host.root(f"cat {DATADOG_YAML}").stdout
    assert f"api_key: {STANDIN_API_KEY}" in datadog_yaml and "site: datadoghq.com" in datadog_yaml
    assert "tags:\n" + "".join(f"  - {tag}\n" for tag in tags) in datadog_yaml
    assert "logs_enabled: true" in datadog_yaml
    source = host.root("cat /etc/apt/sources.list.d/datadog.list").stdout
    assert "deb [signed-by=/usr/share/keyrings/datadog-archive-keyring.gpg] http://" in source
    assert host.root("dpkg-query -W -f='${Status}' datadog-agent").stdout == "install ok installed"
    acl = host.root("getfacl -cp /var/log/mysql").stdout
    assert "user:dd-agent:r-x" in acl and "default:user:dd-agent:r-x" in acl
    listing = host.root("su -s /bin/sh dd-agent -c 'ls /var/log/mysql && head -c 0 /var/log/mysql/mysql_error.log'")
    assert listing.returncode == 0 and "mysql_error.log" in listing.stdout, listing.stderr
    live = host.root("mysql -N -B -e 'SELECT @@performance_schema, @@slow_query_log, @@log_error'").stdout.split()
    assert live == ["1", "1", "/var/log/mysql/mysql_error.log"]
    users = host.root("mysql -N -B -e \"SELECT CONCAT(user,'@',host,' ',max_user_connections) FROM mysql.user "
                      "WHERE user='datadog'\"").stdout
    assert users.split("\n")[0].split() == ["datadog@localhost", "5"]
    grants = host.root("mysql -N -B -e \"SHOW GRANTS FOR 'datadog'@'localhost'\"").stdout
    if "MariaDB" in host.root("mysql -N -B -e 'SELECT VERSION()'").stdout:
        assert re.search(r"GRANT .*BINLOG MONITOR.* ON \*\.\*", grants) and "SLAVE MONITOR" in grants
    else:
        assert re.search(r"GRANT .*REPLICATION CLIENT.* ON \*\.\*", grants), grants
    assert "PROCESS" in grants
    assert re.search(r"GRANT SELECT ON `performance_schema`\.\*", grants)
    # The integration's queries as the datadog user, over TCP as the integration connects, password from conf.yaml.
    password = re.search(r'password: "([^"]+)"', host.root(f"cat {CONF_YAML}").stdout).group(1)
    for sql in ("SHOW GLOBAL STATUS LIKE 'Uptime'", "SELECT COUNT(*) FROM information_schema.PROCESSLIST",
                "SHOW REPLICA STATUS", "SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest"):
        query = host.root("mysql --defaults-extra-file=/dev/stdin --protocol=TCP -h 127.0.0.1 -P 3306 -N -B "
                          f"-e \"{sql}\"", input=f"[client]\nuser=datadog\npassword={password}\n")
        assert query.returncode == 0, f"{sql}: {query.stderr}"
    conf = host.root(f"cat {CONF_YAML}").stdout
    assert "    port: 3306\n" in conf
    assert [line for line in conf.splitlines() if "<" in line and not line.lstrip().startswith("#")] == []


def full_state(host) -> str:
    """Every file under /etc (owner, mode, size, mtime), the installed packages and the server's user table."""
    return host.root("find /etc -xdev -printf '%p %U %G %m %s %T@\\n' | sort; "
                     "dpkg-query -W -f='${Package} ${Version} ${db:Status-Status}\\n'; "
                     "mysql -N -B -e 'SELECT user, host, plugin, authentication_string, max_user_connections "
                     "FROM mysql.user ORDER BY 1, 2' 2>&1").stdout
