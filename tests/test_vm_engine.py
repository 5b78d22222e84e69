"""The step engine's round trips, against a real local bash standing in for the host's `sudo bash -s`: which
reads and writes travel in which session, what a change voids, how a queued write's failure is named; and
the package planning (which groups share an apt transaction). The e2e tests count the same sessions from
a real sshd's log."""

import io
import re
import subprocess

import pytest
from rich.console import Console

from recipes.vm import hostrun, packages
from recipes.vm.hostfiles import file_read
from recipes.vm.packages import PackageGroup, ensure_packages, work_of
from recipes.vm.plan import host_plan
from recipes.vm.reads import EVERYTHING, Read
from recipes.vm.session import SHELL_PRELUDE, Outcome


class LocalShell:
    """A 'host' that is this machine's bash: every session's script runs for real, and is kept."""

    def __init__(self, monkeypatch, path_prefix: str = ""):
        self.scripts: list[str] = []
        self.path_prefix = path_prefix
        monkeypatch.setattr(hostrun, "run_script", self.run_script)

    def run_script(self, conn, command, script, stop=None):
        assert conn is self and command == "sudo -n bash -s"
        self.scripts.append(script)
        env = {"PATH": f"{self.path_prefix}:/usr/bin:/bin" if self.path_prefix else "/usr/bin:/bin", "LC_ALL": "C"}
        done = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, env=env, timeout=60)
        return Outcome(done.returncode, done.stdout, done.stderr)


def new_run(conn, dry_run=False) -> hostrun.HostRun:
    return hostrun.HostRun(conn, "h", Console(file=io.StringIO(), width=200), dry_run=dry_run)


def test_every_declared_read_comes_in_the_first_session_and_later_reads_are_answered_from_it(monkeypatch, tmp_path):
    (tmp_path / "a").write_text("A\n")
    shell = LocalShell(monkeypatch)
    seen = []

    a, b = Read(f"cat {tmp_path}/a"), Read("echo B; exit 4")

    def body(run):
        with run.step("reads"):
            seen.append(dict(zip("ab", run.read_all([a, b]))))
            seen.append(run.files([f"{tmp_path}/a"])[f"{tmp_path}/a"].content)

    host_plan([body], reads=[a, b, file_read(f"{tmp_path}/a")])(run := new_run(shell))
    assert run.sessions == len(shell.scripts) == 1
    assert seen == [{"a": (0, "A\n"), "b": (4, "B\n")}, "A\n"]


def test_a_write_is_queued_known_as_written_and_goes_ahead_of_the_next_command(monkeypatch, tmp_path):
    target = tmp_path / "conf" / "f.yaml"
    shell = LocalShell(monkeypatch)
    run = new_run(shell)
    me = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    group = subprocess.run(["id", "-gn"], capture_output=True, text=True).stdout.strip()
    with run.step("write") as step:
        current = run.files([str(target)])[str(target)]
        assert run.put_file(step, current, "key: value\n", me, group, "0640")
    sessions = run.sessions
    assert not target.exists(), "a write waits for the next session"
    assert run.files([str(target)])[str(target)].content == "key: value\n" and run.sessions == sessions
    outcome = run.root(f"cat {target}; stat -c %a {target}")
    assert run.sessions == sessions + 1 and outcome.stdout == "key: value\n640\n"
    assert list(tmp_path.glob("conf/*.runbook-new")) == []


def test_a_change_voids_the_reads_it_names_and_everything_by_default(monkeypatch, tmp_path):
    counter = tmp_path / "n"
    counter.write_text("1")
    shell = LocalShell(monkeypatch)
    run = new_run(shell)
    read = Read(f"cat {counter}")
    run.expect([read])
    run.read_ahead()
    run.root(f"echo 2 > {counter}", changes=[])  # says it changes nothing: the old answer stands
    assert run.read(read) == (0, "1")
    run.root(f"echo 3 > {counter}")  # may change everything: the declared read comes again in its session
    sessions = run.sessions
    assert run.read(read) == (0, "3\n") and run.sessions == sessions
    run.queue("bump", f"echo 4 > {counter}", changes=[read])  # voided, read again only when asked
    assert run.read(read) == (0, "4\n") and run.sessions == sessions + 1


def test_a_failed_queued_write_names_itself_and_its_step_and_nothing_after_it_runs(monkeypatch, tmp_path):
    shell = LocalShell(monkeypatch)
    run = new_run(shell)
    marker = tmp_path / "after"
    with run.step("datadog.yaml: tags"):
        run.queue("write /nonexistent/dir/f", "mkdir /proc/forbidden/x")
    with pytest.raises(hostrun.StepFailed, match=r"write /nonexistent/dir/f \(for 'datadog.yaml: tags'\) failed"):
        with run.step("next"):
            run.root(f"touch {marker}")
    assert not marker.exists()
    assert [r.status for r in run.results] == ["ok", "failed"]


def test_the_mysql_plan_declares_the_reads_its_steps_make():
    """A step asking for an undeclared read costs a session of its own (the e2e tests count them on a real host)."""
    from recipes.defaults import CONFIG
    from invoke import Config
    from recipes.vm import mysql

    from recipes import settings as schema

    settings = schema.of(Config(defaults=CONFIG)).mysql
    declared = set(mysql.mysql_reads(settings))
    assert {mysql.SERVICE, mysql.LIVE_OPTIONS, *mysql.user_reads(settings),
            *mysql.log_dir_reads(settings), file_read(mysql.CONF_YAML)} <= declared


# --- package planning ------------------------------------------------------------------------------------------
PREREQ = PackageGroup(("gnupg", "curl"))
AGENT = PackageGroup(("datadog-agent",), source="/etc/apt/sources.list.d/datadog.list")
SERVER = PackageGroup(("mariadb-server", "acl"), unless=(("mariadb-server", Read("command -v mariadbd-standin")),))


def planned_run(monkeypatch, tmp_path, installed: list[str], server_there: bool = False):
    """A run whose host has ``installed`` (a fake dpkg-query answers); apt itself is not run, its script kept."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "installed").write_text("".join(f"{p}\n" for p in installed))
    (bin_dir / "dpkg-query").write_text(
        "#!/bin/sh\nfor p in \"$@\"; do case $p in -*) ;; *) "
        f"if grep -qx \"$p\" {tmp_path}/installed; then echo \"$p installed\"; else echo \"$p not-installed\"; fi;; "
        "esac; done\n")
    (bin_dir / "dpkg-query").chmod(0o755)
    if server_there:
        (bin_dir / "mariadbd-standin").write_text("#!/bin/sh\n")
        (bin_dir / "mariadbd-standin").chmod(0o755)
    run = new_run(LocalShell(monkeypatch, str(bin_dir)))
    transactions = []

    def root(script, warn=False, changes=EVERYTHING, reread=True, what=""):
        transactions.append(re.search(r"install_missing\(\) \{ apt_get install -y (.*); \}", script).group(1))
        assert what == f"the apt transaction installing {transactions[-1]}"
        run._forget(changes)
        return Outcome(0, "", "")

    monkeypatch.setattr(run, "root", root)
    work_of(run).declare([PREREQ, AGENT, SERVER])
    return run, transactions


def walk(run) -> list[str]:
    """The three steps in setup's order; the notes each step reports."""
    notes = []
    for name, group in (("prerequisites", PREREQ), ("agent", AGENT), ("server", SERVER)):
        with run.step(name) as step:
            if group is AGENT:
                work_of(run).sources_ready.add(AGENT.source)
            ensure_packages(run, step, group)
        notes.append(run.results[-1].detail)
    return notes


def test_without_gpg_the_box_s_packages_go_in_one_transaction_and_the_agent_s_after_its_source(monkeypatch, tmp_path):
    run, transactions = planned_run(monkeypatch, tmp_path, installed=["curl"])
    notes = walk(run)
    assert transactions == ["gnupg mariadb-server acl", "datadog-agent"]
    assert notes[0] == "installed gnupg, with mariadb-server acl for later steps (one apt transaction)"
    assert notes[2] == "installed mariadb-server acl in the apt transaction of 'prerequisites'"


def test_with_gpg_there_the_whole_run_is_one_apt_transaction(monkeypatch, tmp_path):
    run, transactions = planned_run(monkeypatch, tmp_path, installed=["curl", "gnupg"])
    notes = walk(run)
    assert transactions == ["datadog-agent mariadb-server acl"]
    assert notes[0] == "" and [r.status for r in run.results] == ["ok", "changed", "changed"]


def test_a_server_already_there_is_kept_and_nothing_is_installed_twice(monkeypatch, tmp_path):
    run, transactions = planned_run(monkeypatch, tmp_path, installed=["curl", "gnupg", "acl", "datadog-agent"],
                                    server_there=True)
    walk(run)
    assert transactions == [] and [r.status for r in run.results] == ["ok", "ok", "ok"]


def test_a_dry_run_plans_the_same_transactions_and_runs_none(monkeypatch, tmp_path):
    run, transactions = planned_run(monkeypatch, tmp_path, installed=["curl"])
    run.dry_run = True
    notes = walk(run)
    assert transactions == []
    assert notes[0].startswith("would install gnupg, with mariadb-server acl") and notes[1] == "would install datadog-agent"


def test_the_apt_script_fetches_only_a_new_source_s_lists_when_it_is_the_one_newer_source():
    script = packages.apt_install_script(["datadog-agent"], update=True)
    assert "-o Dir::Etc::sourcelist=\"$1\" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0" in script
    assert "refresh_one \"$newer\" || give_up" in script and "refresh || give_up" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


@pytest.mark.parametrize("effective, code", [("/var/log/mysql/mysql_error.log", 0), ("/var/log/other.log", 3), ("", 0)])
def test_the_server_restart_refuses_when_a_later_option_file_overrides_log_error(tmp_path, effective, code):
    from recipes.vm import mysql

    name, script = mysql.restart_handler("mariadb", "/var/log/mysql/mysql_error.log")
    (tmp_path / "my_print_defaults").write_text("#!/bin/sh\necho --datadir=/x\n"
                                                + (f"echo --log-error={effective}\n" if effective else ""))
    (tmp_path / "service").write_text("#!/bin/sh\necho restarted \"$@\"\n")
    for tool in ("my_print_defaults", "service"):
        (tmp_path / tool).chmod(0o755)
    done = subprocess.run(["bash", "-c", SHELL_PRELUDE + script], capture_output=True, text=True,
                          env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert name == "restart mariadb" and done.returncode == code
    if code:
        assert "effective log_error is '/var/log/other.log', not '/var/log/mysql/mysql_error.log'" in done.stdout
        assert "restarted mariadb" not in done.stdout
    else:
        assert done.stdout == "restarted mariadb restart\n"


def test_the_benchmark_s_flavour_option_names_the_test_host_s_flavours():
    from recipes import settings
    from tests.testhost import FLAVOURS

    assert set(settings.TEST_HOST_FLAVOURS) == set(FLAVOURS)
