"""The whole exercise in one walk (exercise), and what it needs checked first without changing anything (doctor).

The walk runs the same tasks a user can run one by one, in the exercise's order: doctor, setup (the Agent,
its tags, MySQL, the custom check), apm-app, traffic to the app, apply (timeboard, monitor, downtimes, APM
dashboard, and the Notebook that shows them all), snapshot, verify-account (its scorecard published into the
Notebook). It stops at the first stage that fails and prints the command that resumes from there; a walk that
ends prints one table of stages with their result, time and link, then the Notebook's link.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

from invoke.exceptions import Exit

from recipes.errors import Failed, Refused
from recipes.lazy import lazy
from recipes.taskdef import task
from recipes.terminal import task_console
from recipes.vm.options import DRY_RUN, HOST

schema = lazy("recipes.settings")
rich_table = lazy("rich.table")

STAGES = ("doctor", "setup", "apm-app", "traffic", "apply", "snapshot", "verify-account")
OK, MISSING, FAILED, SKIPPED, DRY = "ok", "missing", "failed", "skipped", "dry run"
STYLE = {OK: "green", MISSING: "red", FAILED: "bold red", SKIPPED: "dim", DRY: "cyan"}


# --- doctor ------------------------------------------------------------------------------------------------
@dataclass
class Finding:
    """One thing the exercise needs: whether it is there, what was seen, and how to fix it when it is not."""

    need: str
    status: str
    seen: str = ""
    fix: str = ""


def local_findings(c, hosts: list[str]) -> list[Finding]:
    """What this machine and the settings give: Python, uv, a host to reach, the keys, the site, the examples."""
    from recipes import ddsite, uvtool
    from recipes.api import client

    found = [Finding("Python 3.11 or newer", OK if sys.version_info >= (3, 11) else MISSING, sys.version.split()[0],
                     "install Python 3.11+ (./run then builds the project's environment with uv)")]
    try:
        found.append(Finding("uv", OK, uvtool.uv_path()))
    except uvtool.UvNotFound as error:
        found.append(Finding("uv", MISSING, str(error), "run the tasks through ./run, which installs it"))
    found.append(host_finding(c, hosts))
    for name, how in client.KEY_HELP.items():
        present = bool(os.environ.get(name, "").strip())
        found.append(Finding(f"{name} in the environment", OK if present else MISSING,
                             "set (value not shown)" if present else "not set", how))
    try:
        found.append(Finding("DD_SITE, the Datadog site of your account", OK, ddsite.datadog_site()))
    except ddsite.UnknownSite as error:
        found.append(Finding("DD_SITE, the Datadog site of your account", FAILED, str(error),
                             "export DD_SITE=<your site, as in the address of your Datadog pages>"))
    left = schema.examples_left(c)
    for dotted in schema.EXAMPLES:
        value = getattr(schema.of(c).api, dotted.split(".")[1])
        found.append(Finding(f"{dotted} is yours", FAILED if dotted in left else OK, str(value),
                             left.get(dotted, "").split("; ", 1)[-1]))
    return found


def host_finding(c, hosts: list[str]) -> Finding:
    """A host the VM tasks can reach: --host or `hosts`, else the Vagrant box (Vagrant and VirtualBox)."""
    import shutil

    chosen = list(hosts or []) or list(schema.of(c).hosts)
    if chosen:
        return Finding("a host for the VM steps", OK, ", ".join(chosen) + " (checked over SSH below)")
    if not shutil.which("vagrant"):
        return Finding("a host for the VM steps", MISSING, "no --host, no hosts setting, and vagrant is not installed",
                       "install Vagrant (https://developer.hashicorp.com/vagrant/install) and VirtualBox, then "
                       "./run vm-up; or pass --host user@addr[:port] for a host that answers SSH with sudo")
    if not shutil.which("VBoxManage"):
        return Finding("a host for the VM steps", MISSING, "vagrant is installed, VirtualBox (VBoxManage) is not",
                       "install VirtualBox (the shipped Vagrantfile's provider), then ./run vm-up")
    return Finding("a host for the VM steps", OK, "the Vagrant box (checked over SSH below)")


def api_findings(c) -> list[Finding]:
    """The keys, asked of the API: the API key by GET /api/v1/validate, the application key by one monitor search."""
    from recipes.api import client

    api = schema.of(c).api
    need = "the keys, accepted by Datadog"
    try:
        with client.connect(api) as apis:  # checks the API key
            with client.call("check the application key", apis.where):
                apis.monitors.search_monitors(query="tag:managed-by:dd-runbook", per_page=1)
    except (Refused, Failed) as error:
        return [Finding(need, FAILED, str(error), "create the key where the message says, then export it again")]
    return [Finding(need, OK, f"at {client.app_url(api)}")]


def host_plan_of_doctor(expected_host: str):
    """Over SSH, reading only: the connection and sudo (the run's lock proves both), and the name the Agent
    reports (or will report: before the Agent is installed, the OS hostname it falls back to) against api.host."""
    from recipes.vm import box
    from recipes.vm.plan import host_plan

    def ssh_and_sudo(run) -> None:
        with run.step("SSH and passwordless sudo") as step:
            step.note("connected; sudo -n works")

    def hostname(run) -> None:
        box.hostname_step(run, run.read(box.REPORTED_HOSTNAME).output.strip(), expected_host)

    return host_plan([ssh_and_sudo, hostname], reads=[box.REPORTED_HOSTNAME])


def findings_table(findings: list[Finding]):
    table = rich_table.Table("need", "status", "seen", "how to fix", title="What the exercise needs")
    for f in findings:
        table.add_row(f.need, f"[{STYLE[f.status]}]{f.status}[/]", f.seen, "" if f.status == OK else f.fix)
    return table


def diagnose(c, hosts: list[str], offline: bool) -> list[Finding]:
    """Every finding, printed as a table; the host is asked over SSH when there is one to reach."""
    from recipes.vm.hosts import run_on_hosts

    out = task_console()
    findings = local_findings(c, hosts)
    keys = all(f.status == OK for f in findings if f.need.startswith(("DD_API_KEY", "DD_APP_KEY", "DD_SITE")))
    if offline or not keys:
        findings.append(Finding("the keys, accepted by Datadog", SKIPPED,
                                "--offline" if offline else "a key or the site is missing (above)"))
    else:
        findings += api_findings(c)
    out.print(findings_table(findings))
    host = next(f for f in findings if f.need == "a host for the VM steps")
    if host.status == OK:
        try:
            run_on_hosts(c, hosts, False, "doctor", host_plan_of_doctor(schema.of(c).api.host), writes=False)
            findings.append(Finding("the host, over SSH", OK))
        except (Refused, Failed, Exit) as error:
            findings.append(Finding("the host, over SSH", FAILED, str(getattr(error, "message", error) or "see above")))
    return findings


@task(iterable=["host"], help={**HOST, "offline": "do not ask Datadog whether the keys are accepted"})
def doctor(c, host=None, offline=False):
    """Check, changing nothing, what the exercise needs (Python, uv, a host, the keys, the site, your settings)."""
    findings = diagnose(c, host, offline)
    wrong = [f for f in findings if f.status in (MISSING, FAILED)]
    if wrong:
        raise Failed(f"doctor: {len(wrong)} of {len(findings)} need(s) to fix: {', '.join(f.need for f in wrong)}")
    task_console().print(f"[green]doctor:[/] all {len(findings)} needs are met")


# --- exercise -----------------------------------------------------------------------------------------------
@dataclass
class Walk:
    """The stages walked so far: their result, seconds and the link to open."""

    rows: list[tuple[str, str, float, str]] = field(default_factory=list)

    def table(self):
        table = rich_table.Table("stage", "result", "seconds", "open", title="The exercise")
        for stage, result, seconds, link in self.rows:
            style = "green" if result in (OK, DRY) else "dim" if result == SKIPPED else "bold red"
            table.add_row(stage, f"[{style}]{result}[/]", f"{seconds:.1f}", link)
        return table


def traffic_url(c, hosts: list[str]) -> str:
    """The app's address from here: the forwarded port of the Vagrant box, or the first --host's address."""
    from recipes.vm.hosts import parse_host

    settings = schema.of(c)
    chosen = list(hosts or []) or list(settings.hosts)
    addr = parse_host(chosen[0])[1] if chosen else "127.0.0.1"
    return f"http://{addr}:{settings.apm.port}"


def stage_body(name: str, c, hosts: list[str], dry_run: bool, wait: int):
    """Run one stage; returns (result, link)."""
    from recipes import apm
    from recipes.api import client, tasks as api
    from recipes.vm import apm as vm_apm, box

    if name == "doctor":
        findings = diagnose(c, hosts, offline=False)
        wrong = [f for f in findings if f.status in (MISSING, FAILED)]
        if wrong and not dry_run:
            raise Failed(f"{len(wrong)} need(s) to fix: {', '.join(f.need for f in wrong)}")
        return (DRY if dry_run else OK), ""
    if name == "setup":
        box.setup(c, host=hosts, dry_run=dry_run)
        return (DRY if dry_run else OK), ""
    if name == "apm-app":
        vm_apm.apm_app(c, host=hosts, dry_run=dry_run)
        return (DRY if dry_run else OK), ""
    if name == "traffic":
        url = traffic_url(c, hosts)
        if dry_run:
            task_console().print(f"would send 300 requests to {url} (/, /api/apm, /api/trace)")
            return DRY, url
        apm.traffic(c, url=url)
        return OK, url
    if name == "apply":
        changes = api.apply(c, dry_run=dry_run)
        return (DRY if dry_run else OK), object_link(c, changes, "notebook")
    if name == "snapshot":
        sent = api.snapshot(c, dry_run=dry_run) or {}
        link = client.app_url(schema.of(c).api) + sent["url"] if sent.get("url") else ""
        return (DRY if dry_run else OK), link
    if name == "verify-account":
        if dry_run:
            task_console().print("would ask the account what it received (reads only), waiting up to "
                                 f"{wait} s for what has not arrived yet")
            return SKIPPED, ""
        api.verify_account(c, wait=wait, publish=True)
        return OK, notebook_link(c)
    raise Refused(f"--start {name!r}: no such stage; the stages are {', '.join(STAGES)}")


def object_link(c, changes, key: str) -> str:
    """Where an applied object opens in the web app (empty when it has no live copy, as in a dry run)."""
    from recipes.api import client

    for change in changes or []:
        if change.spec.key == key and change.live_id:
            return client.app_url(schema.of(c).api) + change.spec.kind.page(change.live)
    return ""


def notebook_link(c) -> str:
    """The Notebook's address in the web app, found by its mark (empty when there is none)."""
    from recipes.api import client, commands, sync

    chosen = commands.inputs(c, only=["notebook"])
    with client.connect(schema.of(c).api) as apis:
        spec = sync.P.spec("notebook")
        found = sync.mine(apis, spec, chosen.payloads.body(spec.key))
    return chosen.app + spec.kind.page(found[0]) if found else ""


def resume_command(stage: str, hosts: list[str], dry_run: bool, wait: int) -> str:
    words = ["./run", "exercise", "--start", stage] + (["--dry-run"] if dry_run else [])
    words += [f"--host {h}" for h in hosts or []] + ([f"--wait {wait}"] if wait != WAIT else [])
    return " ".join(words)


WAIT = 900  # seconds verify-account waits for what the account has not received yet


@task(iterable=["host"], help={**HOST, **DRY_RUN,
                               "start": f"the stage to start from: {', '.join(STAGES)} (default: doctor)",
                               "wait": f"seconds verify-account waits for data still on its way (default {WAIT})"})
def exercise(c, host=None, dry_run=False, start="doctor", wait=WAIT):
    """Walk the whole exercise in order: doctor, setup, apm-app, traffic, apply, snapshot, verify-account."""
    if start not in STAGES:
        raise Refused(f"--start {start!r}: no such stage; the stages are {', '.join(STAGES)}")
    wait = schema.option("--wait", wait, schema.WaitSeconds)
    out = task_console()
    walk = Walk()
    todo = STAGES[STAGES.index(start):]
    for number, name in enumerate(todo, 1):
        out.rule(f"[{number}/{len(todo)}] {name}" + (" (dry run)" if dry_run else ""))
        began = time.monotonic()
        try:
            result, link = stage_body(name, c, host, dry_run, wait)
        except (Exit, Refused, Failed) as stop:
            if isinstance(stop, Exit) and stop.code == 130:
                raise
            said = stop.message if isinstance(stop, Exit) else f"error: {stop}"
            if said:
                print(said, file=sys.stderr)
            walk.rows.append((name, FAILED, time.monotonic() - began, ""))
            out.print(walk.table())
            raise Failed(f"exercise stopped at {name}; fix what it says above, then resume with: "
                         f"{resume_command(name, host, dry_run, wait)}") from None
        walk.rows.append((name, result, time.monotonic() - began, link))
    out.print(walk.table())
    notebook = next((link for stage, _, _, link in reversed(walk.rows) if stage in ("apply", "verify-account") and link), "")
    if notebook:
        out.print(f"Your answers in the Datadog account, section by section with the scorecard: {notebook}", highlight=False,
                  soft_wrap=True)

