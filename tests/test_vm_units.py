"""Unit tests of the VM recipes' pure parts: host parsing, tags, YAML merge, placeholders, rendering, diffs, probes."""

import base64
import copy
import io
import re
import subprocess

import pytest
from invoke import Config
from invoke.exceptions import Exit
from rich.console import Console
from ruamel.yaml import YAML

from recipes import boundary, settings as schema
from recipes.defaults import CONFIG
from recipes.vm import agent, check, datadog_yaml, hostfiles, hostrun, hosts, mysql, plan, rendering, session

VAGRANT_SSH_CONFIG = """Host default
  HostName 127.0.0.1
  User vagrant
  Port 2222
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /home/me/.vagrant/machines/default/virtualbox/private_key
  IdentitiesOnly yes
  LogLevel FATAL
"""


def config(**overrides):
    cfg = Config(defaults=CONFIG)
    cfg.load_overrides(overrides)
    return cfg


# --- hosts ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, expected", [
    ("vagrant@10.200.0.2:22", ("vagrant", "10.200.0.2", 22)),
    ("ops@db.example.com", ("ops", "db.example.com", 22)),
    ("10.0.0.5:2200", ("vagrant", "10.0.0.5", 2200)),
    ("me@[::1]:2022", ("me", "::1", 2022)),
])
def test_host_values_parse_into_user_addr_port(spec, expected):
    assert hosts.parse_host(spec) == expected


@pytest.mark.parametrize("spec", ["", "me@", "me@host:99999", "me@ho st", "a@b@c", "me@host:port"])
def test_bad_host_values_are_refused_with_the_value_named(spec):
    with pytest.raises(hosts.HostError, match="--host"):
        hosts.parse_host(spec)


def test_vagrant_ssh_config_gives_address_key_and_its_own_trust_setting():
    target = hosts.vagrant_target(VAGRANT_SSH_CONFIG, "default", "vagrant ssh-config")
    assert (target.addr, target.user, target.port) == ("127.0.0.1", "vagrant", 2222)
    assert target.key_files == ["/home/me/.vagrant/machines/default/virtualbox/private_key"]
    assert target.trust_unknown is True  # Vagrant's own StrictHostKeyChecking no
    assert target.known_hosts == "/dev/null"


def test_vagrant_config_without_the_machine_names_it():
    with pytest.raises(hosts.HostError, match="no `Host web` entry"):
        hosts.vagrant_target(VAGRANT_SSH_CONFIG, "web", "saved.cfg")


def test_host_option_beats_config_hosts_and_refuses_unknown_keys_by_default(tmp_path):
    key = tmp_path / "k"  # the schema wants a key file that exists
    key.write_text("")
    cfg = config(hosts=["ops@10.0.0.9"], ssh={"key_file": str(key), "known_hosts": "/kh"})
    from_config = hosts.resolve_targets(Context(cfg), None)
    assert [t.label for t in from_config] == ["ops@10.0.0.9:22"]
    from_option = hosts.resolve_targets(Context(cfg), ["a@10.0.0.1:2201", "b@10.0.0.2"])
    assert [t.label for t in from_option] == ["a@10.0.0.1:2201", "b@10.0.0.2:22"]
    assert all(t.trust_unknown is False and t.key_files == [str(key)] and t.known_hosts == "/kh" for t in from_option)


def test_the_same_host_twice_is_refused():
    with pytest.raises(hosts.HostError, match="twice"):
        hosts.resolve_targets(Context(config()), ["a@h", "a@h:22"])


def test_saved_vagrant_ssh_config_is_used_when_no_host_is_given(tmp_path):
    saved = tmp_path / "ssh-config"
    saved.write_text(VAGRANT_SSH_CONFIG)
    [target] = hosts.resolve_targets(Context(config(vagrant={"ssh_config": str(saved)})), None)
    assert target.label == "default" and target.port == 2222


def test_unknown_host_key_is_refused_by_the_connection_policy():
    import paramiko

    target = hosts.Target("x", "10.0.0.1", "vagrant", known_hosts="/nonexistent")
    conn = hosts.connect(target, 5)
    assert isinstance(conn.client._policy, paramiko.RejectPolicy)
    trusted = hosts.connect(hosts.Target("x", "10.0.0.1", "vagrant", trust_unknown=True), 5)
    assert not isinstance(trusted.client._policy, (paramiko.RejectPolicy, paramiko.AutoAddPolicy))


class Context:
    """Just enough of invoke's Context for resolve_targets (config only)."""

    def __init__(self, cfg):
        self.config = cfg


# --- tags and datadog.yaml ------------------------------------------------------------------------
def test_tags_are_validated_and_deduplicated():
    assert datadog_yaml.parse_tags(["env:dev", "role:db", "env:dev"], "--tag") == ["env:dev", "role:db"]
    assert datadog_yaml.parse_tags("env:dev,team:a/b", "agent.tags") == ["env:dev", "team:a/b"]


@pytest.mark.parametrize("bad", ["env", "env dev:x", "1env:dev", "env:", "env:a,b", "env:d ev"])
def test_bad_tags_are_refused_naming_the_source(bad):
    with pytest.raises(datadog_yaml.ConfigError, match=r"--tag: bad tag"):
        datadog_yaml.parse_tags([bad], "--tag")


def test_tag_option_beats_config_tags():
    cfg = config(agent={"tags": ["env:prod"]})
    assert agent.resolve_tags(cfg, None) == ["env:prod"]
    assert agent.resolve_tags(cfg, ["env:dev"]) == ["env:dev"]
    with pytest.raises(Exit, match="bad tag"):
        boundary.checked(agent.resolve_tags)(cfg, ["no-colon"])


ORIGINAL = """# my comment
api_key: abc
site: datadoghq.com   # inline comment
logs_config:
  container_collect_all: false
"""


def test_merge_sets_tags_and_keeps_the_rest_of_the_file():
    merged = datadog_yaml.merge(ORIGINAL, "/etc/datadog-agent/datadog.yaml", {"tags": ["env:dev", "role:db"]})
    assert "# my comment" in merged and "# inline comment" in merged
    data = YAML(typ="safe").load(merged)
    assert data["tags"] == ["env:dev", "role:db"]
    assert data["logs_config"] == {"container_collect_all": False} and data["api_key"] == "abc"
    assert "  - env:dev\n" in merged  # block style, indented under tags:


def test_merge_returns_the_text_unchanged_when_values_are_already_there():
    once = datadog_yaml.merge(ORIGINAL, "f", {"tags": ["env:dev"], "logs_enabled": True})
    assert datadog_yaml.merge(once, "f", {"tags": ["env:dev"], "logs_enabled": True}) is once


def test_malformed_yaml_names_the_file_and_line():
    broken = "api_key: abc\ntags:\n  - env:dev\n - role:db\n"
    with pytest.raises(datadog_yaml.ConfigError, match=r"/etc/datadog-agent/datadog.yaml: line [34]"):
        datadog_yaml.merge(broken, "/etc/datadog-agent/datadog.yaml", {"tags": ["env:dev"]})


def test_tags_that_are_not_a_list_name_the_line():
    with pytest.raises(datadog_yaml.ConfigError, match=r"datadog.yaml: line 2: `tags:` must be a list"):
        datadog_yaml.merge("site: x\ntags: env:dev\n", "datadog.yaml", {"tags": ["env:dev"]})


# --- secrets and diffs ----------------------------------------------------------------------------
def test_diff_masks_api_keys_and_passwords_on_both_sides():
    diff = hostfiles.unified_diff("/f", "api_key: OLDSECRET\nsite: a\n", "api_key: NEWSECRET\nsite: b\n  password: \"pw123\"\n")
    assert "OLDSECRET" not in diff and "NEWSECRET" not in diff and "pw123" not in diff
    assert "-site: a" in diff and "+site: b" in diff and hostfiles.MASK in diff


def test_api_key_missing_from_environment_stops_before_anything(monkeypatch):
    monkeypatch.delenv("DD_API_KEY", raising=False)
    with pytest.raises(Exit, match="DD_API_KEY is not set"):
        boundary.checked(agent.api_key_from_env)()


def test_a_dry_run_goes_on_without_the_key_and_warns(monkeypatch, capsys):
    monkeypatch.delenv("DD_API_KEY", raising=False)
    assert agent.api_key_from_env(dry_run=True) == agent.MISSING_KEY
    assert "DD_API_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("DD_API_KEY", "from-the-environment")
    assert agent.api_key_from_env(dry_run=True) == "from-the-environment"


# --- the batched state read -----------------------------------------------------------------------
def test_probe_script_runs_every_check_in_one_shell_and_keeps_exact_output(tmp_path):
    exact = tmp_path / "f"
    exact.write_bytes(b"line 1\n\nline: 3 with 'quotes' and $dollar\n\n")
    script = session.probe_script({
        "file": hostfiles.file_probe(str(exact)),
        "missing": hostfiles.file_probe(str(tmp_path / "nope")),
        "fails": "echo out; exit 3",
        "stdin_is_closed": "cat",
    })
    out = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, check=True).stdout
    found = session.parse_sections(out)
    state = hostfiles.parse_file_probe(str(exact), found["file"])
    assert state.exists and state.content == exact.read_text() and state.mode == "0644"
    assert hostfiles.parse_file_probe("x", found["missing"]).exists is False
    assert found["fails"] == (3, "out\n")
    assert found["stdin_is_closed"] == (0, "")



def test_reads_of_one_session_run_at_once_and_come_back_in_order(tmp_path):
    """The first read waits for a file only the second one makes: one after the other it would give up."""
    flag = tmp_path / "second-ran"
    script = session.probe_script({
        "first": f"for _ in $(seq 500); do [ -e {flag} ] && {{ echo saw it; exit 0; }}; sleep 0.01; done; exit 7",
        "second": f"touch {flag}; echo made it",
        "third": "printf 'no newline'; exit 2",
    })
    out = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, check=True).stdout
    assert [line.split()[0] for line in out.split("\n") if line.startswith("@@")] == ["@@*first,second,third"]
    found = session.parse_sections(out)
    assert found == {"first": (0, "saw it\n"), "second": (0, "made it\n"), "third": (2, "no newline")}
    assert list(found) == ["first", "second", "third"]


def test_a_batch_cut_while_it_was_printed_gives_none_of_its_reads():
    """Sizes that do not add up to the output (the session ended mid-line) must not hand a read a wrong answer."""
    whole = session.parse_sections("@@*a,b 0,3 2,3 " + base64.b64encode(b"hiout").decode())
    assert whole == {"a": (0, "hi"), "b": (3, "out")}
    assert session.parse_sections("@@*a,b 0,3 2,3 " + base64.b64encode(b"hiou").decode()) == {}
    assert session.parse_sections("@@*a,b 0 2,3 " + base64.b64encode(b"hiout").decode()) == {}
    assert session.parse_sections("@@*a 0 0 ") == {"a": (0, "")}


def test_a_write_runs_alone_between_the_reads_around_it(tmp_path):
    """Reads after a write see what it wrote; a failed write ends the session before the reads after it."""
    target = tmp_path / "written"
    sections = [session.Section("before", f"cat {target}"), session.Section("write", f"echo new > {target}", stop=True),
                session.Section("after1", f"cat {target}"), session.Section("after2", f"cat {target}"),
                session.Section("fails", "exit 4", stop=True), session.Section("never", "echo ran")]
    out = subprocess.run(["bash", "-s"], input=session.session_script(sections), capture_output=True, text=True,
                         check=True).stdout
    found = session.parse_sections(out)
    assert found["before"][0] != 0 and found["write"] == (0, "")
    assert found["after1"] == found["after2"] == (0, "new\n")
    assert found["fails"] == (4, "") and "never" not in found

# --- rendering and placeholders -------------------------------------------------------------------
def test_mysql_conf_has_an_integer_port_one_instance_and_no_perf_option():
    settings = schema.of(config()).mysql
    text = mysql.render_conf(settings, "A" * 32)
    data = YAML(typ="safe").load(text)
    assert data["instances"][0]["port"] == 3306 and type(data["instances"][0]["port"]) is int
    assert len(data["instances"]) == 1
    set_lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in set_lines if "extra_performance_metrics" in line]  # named in a comment only
    assert [entry["path"] for entry in data["logs"]] == ["/var/log/mysql/mysql_error.log", "/var/log/mysql/mysql_slow.log"]
    assert text.startswith("# Managed by this runbook")


def test_placeholder_left_in_a_rendered_line_is_refused():
    with pytest.raises(hostrun.StepFailed, match="line 2: unfilled placeholder <YOUR_API_KEY>"):
        rendering.refuse_placeholders("# <COMMENTS_ARE_FINE>\napi_key: <YOUR_API_KEY>\n", "datadog.yaml")


def test_password_is_read_back_from_an_existing_conf():
    text = mysql.render_conf(schema.of(config()).mysql, "Zx9_" * 6)
    assert mysql.password_from_conf(text) == "Zx9_" * 6
    assert mysql.password_from_conf("instances:\n  - password: short\n") is None
    with pytest.raises(hostrun.StepFailed, match="conf.yaml: malformed YAML"):
        mysql.password_from_conf("instances: [\n")


# --- MySQL 8 and MariaDB --------------------------------------------------------------------------
MARIADB_GRANTS = """GRANT BINLOG MONITOR, PROCESS ON *.* TO `datadog`@`localhost` IDENTIFIED BY PASSWORD '*ABC'
GRANT SELECT ON `performance_schema`.* TO `datadog`@`localhost`"""
MYSQL_GRANTS = """GRANT PROCESS, REPLICATION CLIENT ON *.* TO `datadog`@`localhost`
GRANT SELECT ON `performance_schema`.* TO `datadog`@`localhost`"""


MARIADB = "10.11.6-MariaDB-0+deb12u1"
MYSQL8 = "8.0.41-0ubuntu0.24.04.1"


def test_grants_are_complete_on_both_servers_only_with_every_privilege_and_the_cap():
    maria = MARIADB_GRANTS.replace("BINLOG MONITOR", "BINLOG MONITOR, SLAVE MONITOR")
    assert mysql.grants_complete(maria, MARIADB, "5")
    assert not mysql.grants_complete(maria, MARIADB, "0")  # Datadog caps the user at 5 connections on MariaDB too
    assert not mysql.grants_complete(MARIADB_GRANTS, MARIADB, "5")  # 10.5.9+: replica status needs SLAVE MONITOR
    assert mysql.grants_complete(MARIADB_GRANTS, "10.5.2-MariaDB", "5")
    assert mysql.grants_complete(MYSQL_GRANTS, MYSQL8, "5")
    assert not mysql.grants_complete(MYSQL_GRANTS, MYSQL8, "0")
    assert not mysql.grants_complete(maria.replace("PROCESS", "USAGE"), MARIADB, "5")
    assert not mysql.grants_complete(maria.splitlines()[0], MARIADB, "5")


def test_grant_sql_suits_both_servers():
    settings = schema.of(config()).mysql
    maria = mysql.grant_sql(settings, "pw" * 10, MARIADB)
    mysql8 = mysql.grant_sql(settings, "pw" * 10, MYSQL8)
    assert "CREATE USER IF NOT EXISTS 'datadog'@'localhost'" in maria
    assert "MAX_USER_CONNECTIONS 5" in mysql8 and "MAX_USER_CONNECTIONS 5" in maria
    assert "SLAVE MONITOR" in maria and "SLAVE MONITOR" not in mysql8


@pytest.mark.parametrize("version, query", [
    ("10.11.6-MariaDB-0+deb12u1", "SHOW REPLICA STATUS"), ("10.3.39-MariaDB", "SHOW SLAVE STATUS"),
    ("8.0.41-0ubuntu0.24.04.1", "SHOW REPLICA STATUS"), ("8.0.21", "SHOW SLAVE STATUS"), ("5.7.44-log", "SHOW SLAVE STATUS"),
])
def test_replication_status_query_depends_on_the_server(version, query):
    assert mysql.replication_query(version) == query


def test_password_goes_to_the_client_as_an_option_file_not_argv():
    command = mysql.as_user(schema.of(config()).mysql, "s3cretPassw0rd_xyz", "SELECT 1")
    assert command.startswith("mysql --defaults-extra-file=<(printf ")
    assert "-p" not in command.split("<(")[0] and "--password" not in command


# --- the custom check's files ---------------------------------------------------------------------
def test_check_yaml_has_one_instance_with_the_interval_and_matching_names():
    files = check.check_files("custom_my_metric", 45)
    conf = files["/etc/datadog-agent/conf.d/custom_my_metric.yaml"]
    data = YAML(typ="safe").load(conf)
    assert data["instances"] == [{"min_collection_interval": 45, "tags": ["check:custom_my_metric"]}]
    assert "## @param min_collection_interval" in conf
    assert "class CustomMyMetricCheck(AgentCheck)" in files["/etc/datadog-agent/checks.d/custom_my_metric.py"]


# --- the step engine ------------------------------------------------------------------------------
class RecordingConnection:
    """Records the scripts the engine would run; answers probes as if every file were missing."""

    def __init__(self, monkeypatch):
        self.scripts = []
        monkeypatch.setattr(hostrun, "run_script", self.run_script)

    def run_script(self, conn, command, script, stop=None):
        assert conn is self and command == "sudo -n bash -s"
        self.scripts.append(script)
        names = re.findall(r"^printf '\\n@@%s ' '?([\w.-]+)'?$", script, re.MULTILINE)
        # Every state read finds nothing (exit 1); every write and command succeeds.
        return session.Outcome(0, "".join(f"@@{name}  {1 if name.startswith('r') else 0}\n" for name in names), "")

    def sftp(self):
        raise AssertionError("a dry run must not open SFTP")


def test_dry_run_shows_the_masked_diff_writes_nothing_and_runs_no_handler(monkeypatch):
    conn, out = RecordingConnection(monkeypatch), io.StringIO()
    run = hostrun.HostRun(conn, "h", Console(file=out, width=200), dry_run=True)
    with run.step("datadog.yaml") as step:
        states = run.files(["/etc/datadog-agent/datadog.yaml"])
        if run.put_file(step, states["/etc/datadog-agent/datadog.yaml"], "api_key: SECRET\nsite: x\n",
                        "dd-agent", "dd-agent", "640"):
            run.notify("restart datadog-agent", "svc datadog-agent restart\n")
            run.notify("restart datadog-agent", "svc datadog-agent restart\n")
    run.flush()
    text = out.getvalue()
    assert "+site: x" in text and "SECRET" not in text and "changed (dry run)" in text
    assert len(conn.scripts) == 1 and "restart" not in conn.scripts[0]
    assert [r.status for r in run.results] == ["changed", "changed"]  # the step, then the handler (would run)


def test_handler_runs_once_for_many_notifications_and_a_failure_stops_the_host(monkeypatch):
    conn = RecordingConnection(monkeypatch)
    run = hostrun.HostRun(conn, "h", Console(file=io.StringIO()), dry_run=False)
    for _ in range(3):
        run.notify("restart datadog-agent", "svc datadog-agent restart\n")
    run.flush()
    assert sum("svc datadog-agent restart" in s for s in conn.scripts) == 1
    with pytest.raises(hostrun.StepFailed, match="bad: broken"):
        with run.step("bad"):
            raise hostrun.StepFailed("broken")
    assert run.counts() == {"ok": 0, "changed": 1, "failed": 1}


# --- tasks end to end without a host --------------------------------------------------------------
def test_an_unreachable_host_fails_with_its_name_and_exit_1(capsys):
    out = io.StringIO()
    with pytest.raises(Exit) as stop:
        boundary.checked(hosts.run_on_hosts)(Context(config(ssh={"connect_timeout": 3})), ["vagrant@127.0.0.1:1"], False,
                                             "tag-host", plan.host_plan([]),
                                             console=Console(file=out, width=200))
    assert stop.value.code == 1 and "failed on 1 of 1 host(s)" in capsys.readouterr().err  # invoke prints it there
    assert "vagrant@127.0.0.1:1: cannot connect" in out.getvalue()
    assert out.getvalue().count("cannot connect") == 1 and "not reached" in out.getvalue()  # said once, then named


def test_vm_up_without_vagrant_says_what_to_do(monkeypatch):
    from recipes.vm import box

    monkeypatch.setattr(box.shutil, "which", lambda name: None)
    with pytest.raises(Exit, match="vagrant. is not installed.*--host"):
        boundary.checked(box.vm_up.body)(None)


def test_dd_site_reaches_the_agent_and_an_unknown_site_is_refused(monkeypatch):
    monkeypatch.setenv("DD_SITE", "datadoghq.eu")
    assert agent.site_from_env() == "datadoghq.eu"
    monkeypatch.setenv("DD_SITE", "datadoghq.con")
    with pytest.raises(Exit, match=r"DD_SITE='datadoghq.con' is not a Datadog site; use one of datadoghq.com"):
        boundary.checked(agent.site_from_env)()
    monkeypatch.delenv("DD_SITE")
    assert agent.site_from_env() == "datadoghq.com"


def test_the_old_agent_site_setting_is_refused_with_what_to_set_instead(monkeypatch):
    raw = copy.deepcopy(CONFIG)
    raw["agent"]["site"] = "datadoghq.eu"
    # The schema refuses it (settings.MOVED), before any VM task reads its settings.
    with pytest.raises(Exit, match="agent.site: not a setting: the Datadog site is DD_SITE in the environment"):
        boundary.checked(agent.install_plan)(Config(overrides=raw), "key")


def test_verify_fails_when_the_agent_reports_another_hostname_than_api_host():
    from recipes.vm.box import hostname_step

    run = hostrun.HostRun(None, "h", Console(file=io.StringIO()), dry_run=False)
    hostname_step(run, "datadog-exercise", "datadog-exercise")
    with pytest.raises(hostrun.StepFailed, match="reports 'vagrant'.*set api.host: vagrant"):
        hostname_step(run, "vagrant", "datadog-exercise")


# --- plans: the [n/N] total is the number of steps the plan runs ------------------------------------------
def quiet_run() -> hostrun.HostRun:
    return hostrun.HostRun(None, "h", Console(file=io.StringIO()), dry_run=True)


def one_step(name):
    def step(run):
        with run.step(name):
            pass
    return step


def no_step(run):
    pass


def test_a_plan_whose_declared_total_differs_from_the_steps_it_runs_fails():
    plan.host_plan([one_step("one"), one_step("two")])(quiet_run())
    with pytest.raises(hostrun.StepFailed, match="declares 3 steps but ran 2"):
        plan.host_plan([one_step("one"), one_step("two"), no_step])(quiet_run())


def test_combined_plans_run_every_check_before_any_body_and_add_their_totals():
    seen = []

    def check(name):
        def probe(run):
            with run.step(f"check {name}"):
                seen.append(f"check {name}")
        return probe

    def body(name):
        def work(run):
            with run.step(name):
                seen.append(name)
        return work

    both = plan.combined([plan.host_plan([body("a")], checks=[check("a")]),
                          plan.host_plan([body("b")], checks=[check("b")])])
    run = quiet_run()
    both(run)
    assert seen == ["check a", "check b", "a", "b"]
    assert (both.steps, run.total_steps, run.step_index) == (4, 4, 4)



def test_a_stopped_run_says_per_host_where_it_was_what_goes_on_there_and_how_to_resume():
    def run_at(step: str, in_flight: list[str]) -> hostrun.HostRun:
        run = hostrun.HostRun(None, "h", Console(file=io.StringIO()))
        run.total_steps, run.step_index, run.current, run.in_flight = 18, 3, step, in_flight
        return run

    runs = {"a": run_at("[3/18] apt prerequisites", ["the apt transaction installing gnupg acl"]),
            "b": run_at("[7/18] datadog.yaml", []), "c": run_at("[18/18] custom check", []), "d": None,
            "e": run_at("[5/18] apt source", [])}
    report = hosts.stopped_report("setup", ["vagrant@a", "vagrant@b"], False, runs, finished={"c"},
                                  errors={"e": "[5/18] apt source: refused"}).splitlines()
    assert report == [
        "a: stopped during [3/18] apt prerequisites; on the host, the apt transaction installing gnupg acl goes on "
        "to its end by itself, and the next run waits for it",
        "b: stopped during [7/18] datadog.yaml; nothing was running on the host",
        "c: had finished",
        "d: stopped before its first step; nothing was changed",
        "e: had failed: [5/18] apt source: refused",
        "stopped by the user; to resume: ./run setup --host vagrant@a --host vagrant@b",
    ]
    assert hosts.stopped_report("tag-host", [], True, {"box": None}, set(), {}).endswith(
        "to resume: ./run tag-host --dry-run")
