"""End to end: `setup` runs cut short as a user's are (Ctrl-C, the laptop or the VM's processes killed, the link
dropped, a second run started beside the first) on the Debian test host flavours, over real SSH; the next run
must converge and the one after it change nothing.

A cut is a moment of the package work (read from dpkg's own log and the guest's processes) and a way to cut:
- ``kill``: SIGKILL the runner and every process of the run on the guest (what hangs off its sshd sessions, and
  every process in their sessions: a server an init script started goes too);
- ``interrupt``: SIGINT to the runner, as Ctrl-C (``terminate``: SIGTERM); the guest's side goes on by itself;
- ``runner``: SIGKILL the runner alone (a laptop that dies); the guest's side goes on by itself.
After a cut the test waits until every process of the cut run's sessions on the guest has ended (the services
it started aside), then checks the host. ``./run stress-cuts`` runs many cuts at seeded random moments.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.testhost import start_hosts, stop_hosts
from tests.testhost.flavours import FLAVOURS
from tests.testhost_fixtures import requires_root
from tests.vm_run import (ROOT, STANDIN_API_KEY, assert_configured, changed_count, full_state, invoke, ok, restarts,
                          write_config)

pytestmark = [pytest.mark.e2e, requires_root]

DPKG_LOG = "/var/log/dpkg.log"
STAGED_GLOBS = "/etc/datadog-agent/*.runbook-new /etc/datadog-agent/conf.d/*/*.runbook-new /etc/mysql/*/*.runbook-new"
# Services a run starts on a host without systemd stay in its session: they are meant to keep running.
SERVICES = ("mariadbd", "mysqld", "mysqld_safe", "logger", "agent")


def dpkg_log_moment(pattern: str) -> str:
    """Guest shell that returns once dpkg's log has gained ``$NTH`` lines matching pattern since it started."""
    return (f"start=$(wc -l < {DPKG_LOG} 2>/dev/null || echo 0); "
            f"until [ \"$(tail -n +$((start + 1)) {DPKG_LOG} 2>/dev/null | grep -c -- '{pattern}')\" -ge \"$NTH\" ]; "
            "do sleep 0.01; done")


# Moment -> guest shell that returns when the run reaches it.
MOMENTS = {
    "unpack": dpkg_log_moment(" status half-installed "),  # a package's unpack begins
    "configure": dpkg_log_moment(" configure "),
    "maintainer-script": "until pgrep -f '/var/lib/dpkg/info/[^ ]+[.](preinst|postinst|prerm|postrm) ' >/dev/null; "
                         "do sleep 0.01; done",
    "triggers": dpkg_log_moment(" trigproc "),
    # perl-base's unpack (MariaDB's install upgrades it): cut there, dpkg flags it reinst-required, and apt's own
    # hooks need perl.
    "perl-base-unpack": dpkg_log_moment(" status half-installed perl-base"),
    "between-steps": "until [ -e /etc/datadog-agent/datadog.yaml ]; do sleep 0.01; done",
    # Shell globs only (no fork per look), so the short window between staging a file and renaming it is seen.
    "file-write": f"while :; do for f in {STAGED_GLOBS}; do [ -e \"$f\" ] && exit 0; done; done",
}
PACKAGE_MOMENTS = ("unpack", "configure", "maintainer-script", "triggers")
# How far into a first run's package work a random moment may be: the Oracle MySQL flavour has MySQL already
# and installs fewest packages (one trigger run).
NTH_AT_MOST = {"unpack": 6, "configure": 6, "maintainer-script": 1, "triggers": 2}
NTH_AT_MOST_MYSQL = {**NTH_AT_MOST, "triggers": 1}
HOWS = ("kill", "interrupt", "terminate", "runner")
SIGNALS = {"interrupt": signal.SIGINT, "terminate": signal.SIGTERM, "kill": signal.SIGKILL, "runner": signal.SIGKILL}

# Every live process that hangs off the guest's sshd sessions of the vagrant user: "pid sid comm" per line.
RUN_PROCESSES = r"""ps -eo pid=,ppid=,sid=,stat=,comm=,args= | awk '
  $4 !~ /^Z/ { n++; pid[n] = $1; ppid[n] = $2; sid[n] = $3; comm[n] = $5; $1 = $2 = $3 = $4 = $5 = ""; args[n] = $0 }
  END {
    for (i = 1; i <= n; i++) if (args[i] ~ /^ *sshd(-session)?: vagrant/) mark[pid[i]] = 1
    for (more = 1; more; ) { more = 0
      for (i = 1; i <= n; i++) if (!(pid[i] in mark) && (ppid[i] in mark)) { mark[pid[i]] = 1; more = 1 } }
    for (i = 1; i <= n; i++) if (pid[i] in mark) print pid[i], sid[i], comm[i] }'"""
GIVE_UP = "/run/runbook-test-cut-give-up"


@dataclass(frozen=True)
class Cut:
    moment: str
    how: str
    nth: int = 1  # the nth matching line of dpkg's log
    delay_ms: int = 0  # after the moment

    def __str__(self) -> str:
        nth = f" #{self.nth}" if self.moment in ("unpack", "configure", "triggers") else ""
        return f"{self.how} at {self.moment}{nth} +{self.delay_ms} ms"


@dataclass
class CutRun:
    """What a cut left: whether the moment came before the run ended, the runner's exit and output, and the
    guest sessions the run had at the cut."""

    reached: bool
    code: int
    output: str
    sessions: set[str]


def guest_shell(host, script: str) -> subprocess.Popen:
    return subprocess.Popen(["nsenter", "-t", str(host.pid1), "--all", "-r", "-w", "/bin/sh", "-c", script],
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def cut_setup(config: Path, host, cut: Cut, target: str | None = None, link: LinkCutter | None = None) -> CutRun:
    """Start `./run setup` as a child; at the cut's moment on the guest, cut it the cut's way (``link``: drop
    the link through that proxy, the runner going on)."""
    # Everything of the run: what hangs off its sshd sessions, and whatever shares their sessions (a server an init
    # script started and left to PID 1, a maintainer script whose dpkg is gone).
    kill_guest = ("sids=\" $(" + RUN_PROCESSES + " | awk '$2 != 0 { printf \"%s \", $2 }') \"; "
                  "while pids=$({ " + RUN_PROCESSES + " | cut -d' ' -f1; ps -eo pid=,sid=,stat= | "
                  "awk -v s=\"$sids\" 'index(s, \" \" $2 \" \") && $3 !~ /^Z/ { print $1 }'; } | sort -u); "
                  "[ -n \"$pids\" ]; do kill -9 $pids; done" if cut.how == "kill" else ":")
    # The moment, or the run's end (the test then creates GIVE_UP): whichever comes first.
    watcher = guest_shell(host, f"rm -f {GIVE_UP}; NTH={cut.nth}; ( {MOMENTS[cut.moment]} ) & moment=$!; "
                                f"( until [ -e {GIVE_UP} ]; do sleep 0.05; done; kill $moment ) & giver=$!; "
                                "wait $moment || exit 1; kill $giver; "
                                f"sleep {cut.delay_ms / 1000:.3f}; echo reached; {RUN_PROCESSES}; {kill_guest}")
    env = {k: v for k, v in os.environ.items() if k != "DD_API_KEY"} | {"DD_API_KEY": STANDIN_API_KEY, "COLUMNS": "160"}
    child = subprocess.Popen([sys.executable, "-m", "invoke", "-f", str(config), "setup", "--host", target or host.target],
                             cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(child.stdout.read()), daemon=True)
    reader.start()
    ended = threading.Thread(target=lambda: (child.wait(), host.root(f"touch {GIVE_UP}")), daemon=True)
    ended.start()
    seen = watcher.stdout.read()
    watcher.wait()
    reached = seen.startswith("reached")
    if reached and child.poll() is None:
        if cut.how == "link":
            link.cut()
        else:
            child.send_signal(SIGNALS[cut.how])
    code = child.wait(timeout=300)
    reader.join(timeout=60)
    ended.join(timeout=60)
    sessions = {line.split()[1] for line in seen.splitlines()[1:] if len(line.split()) == 3}
    return CutRun(reached and code != 0, code, "".join(output), sessions)


def wait_until_quiet(host, sessions: set[str], timeout: float = 300) -> None:
    """Until every process of the cut run's guest sessions has ended, but the services it started."""
    if not sessions:
        return
    script = f"""n=0
while ps -eo sid=,comm= | awk -v s=" {' '.join(sorted(sessions))} " \\
    'index(s, " " $1 " ") && $2 !~ /^({"|".join(SERVICES)})$/ {{ found = 1 }} END {{ exit !found }}'; do
  n=$((n + 1))
  [ $n -lt {int(timeout * 10)} ] || {{ echo "still running after {timeout:.0f} s:"; ps -eo pid,sid,args; exit 1; }}
  sleep 0.1
done
"""
    quiet = host.root(script)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr


@dataclass
class Outcome:
    """How the host fared after a cut: what `./run stress-cuts` tabulates."""

    cut: Cut
    flavour: str
    reached: bool
    converged: bool = False
    third_run_changes: int = -1
    detail: str = ""


def cut_and_converge(tmp_path, host, repo, cut: Cut) -> Outcome:
    """Cut a first `setup` on a fresh host, then check what the issue asks of the host: a dry run changes
    nothing, the next run converges (no dpkg state left half done, no staged file left), the run after it
    changes nothing and restarts nothing."""
    config = write_config(tmp_path, host, repo)
    done = cut_setup(config, host, cut)
    outcome = Outcome(cut, host.flavour, done.reached)
    if not done.reached:
        outcome.detail = f"the run ended (exit {done.code}) before the moment"
        return outcome
    if cut.how in ("interrupt", "terminate"):
        assert done.code == 130, done.output
        assert f"{host.target}: stopped during " in done.output, done.output
        assert "to resume: ./run setup --host" in done.output
        assert "Traceback" not in done.output
    wait_until_quiet(host, done.sessions)
    left_by_cut = host.root("dpkg --audit").stdout
    cut_state = full_state(host)
    ok(invoke(config, "setup", "--dry-run", "--host", host.target))
    assert full_state(host) == cut_state, "a dry run on the cut host changed it"
    converged = ok(invoke(config, "setup", "--host", host.target))
    assert "another run holds this host" not in converged, "a cut run's lock held the host"
    if left_by_cut:
        assert "dpkg had a package run left unfinished" in converged, f"dpkg said:\n{left_by_cut}\nthe run said:\n{converged}"
    assert_configured(host)
    assert host.root("dpkg --audit").stdout == "", "a package is left half installed"
    leftovers = host.root("find /etc /tmp /run -name '*.runbook-new' -o -name '.runbook-*' -o -name 'dd-runbook-apt.*'"
                          ).stdout
    assert leftovers == "", f"staged copies left behind: {leftovers}"
    outcome.converged = True
    agent_restarts = restarts(host)
    again = ok(invoke(config, "setup", "--host", host.target))
    outcome.third_run_changes = changed_count(again)
    assert outcome.third_run_changes == 0, again
    assert restarts(host) == agent_restarts, "the third run restarted the Agent"
    return outcome


# A few fixed cuts in the regular suite: each way, across the package phase and the flavours.
FIXED_CUTS = [
    ("systemd", Cut("maintainer-script", "kill", delay_ms=150)),
    ("bookworm", Cut("perl-base-unpack", "kill", delay_ms=50)),
    ("systemd", Cut("unpack", "interrupt", nth=3)),
    ("bookworm", Cut("triggers", "kill")),
    ("mysql", Cut("configure", "runner", nth=2)),
    ("mysql", Cut("between-steps", "kill")),
    ("bookworm", Cut("file-write", "terminate")),
]


@pytest.mark.parametrize("testhost_flavour, cut", FIXED_CUTS, indirect=["testhost_flavour"], ids=str)
def test_setup_cut_at_a_moment_converges_on_the_next_run(tmp_path, flavoured_host, standin_repo, cut):
    outcome = cut_and_converge(tmp_path, flavoured_host, standin_repo, cut)
    assert outcome.reached, outcome.detail
    assert outcome.converged and outcome.third_run_changes == 0


# --- many cuts at seeded random moments: ./run stress-cuts --------------------------------------------------
def random_cuts(count: int, seed: int) -> list[tuple[str, Cut]]:
    """count cuts spread over the flavours in turn, each at a moment of the package phase drawn from seed."""
    draw = random.Random(seed)
    flavours = list(FLAVOURS)
    cuts = []
    for i in range(count):
        flavour, moment = flavours[i % len(flavours)], draw.choice(PACKAGE_MOMENTS)
        most = (NTH_AT_MOST_MYSQL if flavour == "mysql" else NTH_AT_MOST)[moment]
        cuts.append((flavour, Cut(moment, draw.choice(HOWS), draw.randint(1, most), draw.randint(0, 800))))
    return cuts


STRESS = int(os.environ.get("RUNBOOK_CUT_STRESS", "0"))
STRESS_TABLE = ROOT / "docs" / "snippets" / "cut-stress.md"
STRESS_FAILURES = ROOT / "artifacts" / "cut-stress-failures.log"  # what a cut host looked like when it failed
DIAGNOSIS = ("dpkg --audit; tail -n 30 /var/log/dpkg.log; tail -n 60 /var/log/apt/term.log; "
             "ps -eo pid,sid,stat,args | tail -n 40")
if STRESS:
    def test_stress_many_cuts_at_seeded_random_moments(tmp_path_factory, standin_repo, testhost_images):
        """RUNBOOK_CUT_STRESS cuts (RUNBOOK_CUT_SEED): a table of each, saved for Reference > Interrupted runs."""
        seed = int(os.environ.get("RUNBOOK_CUT_SEED", "1"))
        STRESS_FAILURES.parent.mkdir(exist_ok=True)
        STRESS_FAILURES.unlink(missing_ok=True)
        outcomes = []
        for index, (flavour, cut) in enumerate(random_cuts(STRESS, seed)):
            testhost_images(flavour)
            (host,) = start_hosts(1, flavour)
            try:
                outcome = cut_and_converge(tmp_path_factory.mktemp(f"cut{index}"), host, standin_repo, cut)
            except AssertionError as failure:
                outcome = Outcome(cut, flavour, True, detail=why_not(str(failure)))
                with STRESS_FAILURES.open("a") as log:
                    log.write(f"--- cut {index + 1}: {flavour} {cut}\n{failure}\n{host.root(DIAGNOSIS).stdout}\n")
            finally:
                stop_hosts([host])
            outcomes.append(outcome)
            print(f"cut {index + 1}/{STRESS}: {flavour} {cut}: "
                  f"{'converged' if outcome.converged else outcome.detail}", flush=True)
        table = stress_table(outcomes, seed)
        STRESS_TABLE.write_text(table)
        print("\n" + table)
        cut_ones = [o for o in outcomes if o.reached]
        assert all(o.converged and o.third_run_changes == 0 for o in cut_ones), table


def why_not(failure: str) -> str:
    """The line of a failed check that says why: a task's failed step, else the assertion's first line."""
    failed = [line for line in failure.splitlines() if " failed " in line or "error" in line.lower()]
    return " ".join((failed[0] if failed else failure.splitlines()[0]).split())[:160].replace("|", "/")


def stress_table(outcomes: list[Outcome], seed: int) -> str:
    """The stress run as markdown: the seed once, then a row a cut (narrow enough for a phone)."""
    rows = [f"Seed {seed}, {len(outcomes)} cuts, in the order they ran:", "",
            "| flavour | cut | converged | third run: changes |", "|---|---|---|---|"]
    for o in outcomes:
        verdict = "yes" if o.converged else ("not reached" if not o.reached else f"NO: {o.detail}")
        changes = str(o.third_run_changes) if o.third_run_changes >= 0 else "-"
        rows.append(f"| {o.flavour} | {o.cut} | {verdict} | {changes} |")
    reached = [o for o in outcomes if o.reached]
    rows.append("")
    rows.append(f"{len(reached)} cuts made ({len(outcomes) - len(reached)} moments came after the run had ended); "
                f"{sum(o.converged for o in reached)} converged; "
                f"{sum(o.third_run_changes == 0 for o in reached)} third runs changed nothing.")
    return "\n".join(rows) + "\n"


# --- two runs at once, and the link dropped -------------------------------------------------------------------
def test_two_setups_at_once_on_one_host_the_second_waits_then_finds_nothing_to_do(tmp_path, flavoured_host,
                                                                                     standin_repo):
    host = flavoured_host
    config = write_config(tmp_path, host, standin_repo)
    env = {k: v for k, v in os.environ.items() if k != "DD_API_KEY"} | {"DD_API_KEY": STANDIN_API_KEY, "COLUMNS": "160"}

    def start():
        return subprocess.Popen([sys.executable, "-m", "invoke", "-f", str(config), "setup", "--host", host.target],
                                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    first = start()
    # The second starts once the first holds the host (its PID is in the lock's owner line).
    host.root(f"timeout 120 sh -c 'until grep -qs \"PID {first.pid} \" /run/lock/dd-runbook.lock.owner; "
              "do sleep 0.05; done'", check=True)
    second = start()
    out_first, _ = first.communicate(timeout=600)
    out_second, _ = second.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, out_first + out_second
    assert "another run holds this host" not in out_first
    waiting = [line for line in out_second.splitlines() if "another run holds this host" in line]
    assert len(waiting) == 1 and f"PID {first.pid} " in waiting[0] and "./run setup" in waiting[0], out_second
    assert changed_count(out_first) >= 10 and changed_count(out_second) == 0, out_second
    assert_configured(host)
    users = host.root("mysql -N -B -e \"SELECT COUNT(*) FROM mysql.user WHERE user='datadog'\"").stdout.strip()
    assert users == "1"
    datadog_yaml = host.root("cat /etc/datadog-agent/datadog.yaml").stdout
    assert datadog_yaml.count("tags:") == 1 and datadog_yaml.count("logs_enabled:") == 1


class LinkCutter:
    """A loopback TCP proxy between the runner and the guest's sshd; ``cut()`` drops the link (both sockets)."""

    def __init__(self, addr: str, port: int = 22):
        self.target = (addr, port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.connected = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            client, _ = self.server.accept()
        except OSError:
            return
        upstream = socket.create_connection(self.target)
        self.sockets = [client, upstream]
        self.connected.set()
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def cut(self) -> None:
        for each in self.sockets:
            try:
                each.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            each.close()
        self.server.close()


@pytest.mark.parametrize("testhost_flavour", ["systemd"], indirect=True)
def test_a_link_dropped_during_the_package_work_stops_the_run_with_one_line_and_the_next_run_converges(
        tmp_path, flavoured_host, standin_repo):
    host = flavoured_host
    proxy = LinkCutter(host.addr)
    known = tmp_path / "known_hosts_via_proxy"
    key_type, key = Path(host.known_hosts).read_text().split()[1:3]
    known.write_text(f"[127.0.0.1]:{proxy.port} {key_type} {key}\n")
    through_proxy = write_config(tmp_path, host, standin_repo, ssh={"known_hosts": str(known)})
    done = cut_setup(through_proxy, host, Cut("unpack", "link", nth=2), f"vagrant@127.0.0.1:{proxy.port}", proxy)
    assert done.reached, done.output
    out = done.output
    assert done.code == 1, out
    lost = [line for line in out.splitlines() if "the SSH connection was lost" in line]
    assert len(lost) == 1 and "failed" in lost[0], out
    assert f"127.0.0.1:{proxy.port}" in lost[0] and re.search(r"\[\d+/\d+\] \S", lost[0]), lost[0]
    assert "the apt transaction installing" in lost[0] and "may still finish" in lost[0]
    assert "Traceback" not in out
    # The next run goes straight to the host: it waits for the package work the dropped run left going.
    config = write_config(tmp_path, host, standin_repo)
    converged = ok(invoke(config, "setup", "--host", host.target))
    assert_configured(host)
    assert host.root("dpkg --audit").stdout == ""
    assert host.root("find /etc -name '*.runbook-new'").stdout == ""
    again = ok(invoke(config, "setup", "--host", host.target))
    assert changed_count(again) == 0, again
    assert converged


# --- a package dpkg cannot finish: one line that names it, and no loop ---------------------------------------
BROKEN_FLAG = "/etc/runbook-test-breaks-postinst"
BROKEN_COUNT = "/var/log/runbook-broken-postinst.count"


def broken_package(folder: Path) -> bytes:
    """A package whose postinst fails while BROKEN_FLAG exists, and counts every time it runs."""
    tree = folder / "runbook-broken"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text("Package: runbook-broken\nVersion: 1.0\nArchitecture: all\n"
                                             "Maintainer: runbook tests <tests@invalid>\n"
                                             "Description: a package whose postinst fails on purpose (tests)\n")
    postinst = tree / "DEBIAN" / "postinst"
    postinst.write_text(f"#!/bin/sh\necho run >> {BROKEN_COUNT}\nif [ -e {BROKEN_FLAG} ]; then\n"
                        "  echo 'runbook-broken: configuration failed on purpose' >&2\n  exit 1\nfi\nexit 0\n")
    postinst.chmod(0o755)
    deb = folder / "runbook-broken.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb.read_bytes()


def test_a_package_dpkg_cannot_configure_stops_setup_with_one_line_naming_it_and_no_loop(tmp_path, test_host,
                                                                                          standin_repo):
    host = test_host
    host.root("cat > /tmp/runbook-broken.deb", input=broken_package(tmp_path), check=True)
    host.root(f"touch {BROKEN_FLAG}; dpkg -i /tmp/runbook-broken.deb", check=False)
    assert "runbook-broken half-configured" in host.root(
        "dpkg-query -W -f='${Package} ${db:Status-Status}' runbook-broken").stdout
    config = write_config(tmp_path, host, standin_repo)
    failed = invoke(config, "setup", "--host", host.target)
    assert failed.returncode == 1, failed.stdout
    line = next(line for line in failed.stdout.splitlines() if " failed " in line)
    assert "apt prerequisites" in line and "runbook-broken (half-configured)" in line, line
    assert "post-installation script subprocess returned error exit status 1" in line, failed.stdout
    assert "sudo dpkg --configure -a" in line, line
    # Bounded: the first install (and the dpkg run before it), then one more finish and install: never a loop.
    tries = len(host.root(f"cat {BROKEN_COUNT}").stdout.split())
    assert 2 <= tries <= 8, f"the postinst ran {tries} times"
    # The run stopped at that step: no later step wrote anything.
    assert host.root("[ ! -e /etc/apt/sources.list.d/datadog.list ] && [ ! -e /etc/datadog-agent/datadog.yaml ]"
                     ).returncode == 0
    # Once the cause is gone, the next run finishes what dpkg left and converges.
    host.root(f"rm {BROKEN_FLAG}", check=True)
    converged = ok(invoke(config, "setup", "--host", host.target))
    assert "dpkg had a package run left unfinished (runbook-broken (half-configured))" in converged, converged
    assert host.root("dpkg --audit").stdout == ""
    assert_configured(host)
