"""The VM as a whole: bring the Vagrant box up (vm-up), run every VM step in order (setup), verify what the
Agent reports (verify)."""

from __future__ import annotations

import re

from recipes.taskdef import task

from recipes.errors import Refused
from recipes.lazy import lazy
from recipes.vm import agent, check, mysql
from recipes.vm.options import HOST, HOST_HELP
from recipes.vm.hostrun import HostRun, StepFailed
from recipes.vm.plan import combined, host_plan
from recipes.vm.reads import Read

hosts = lazy("recipes.vm.hosts")  # the runner (Fabric, threads): imported when a task runs, not to list them
shutil = lazy("shutil")
schema = lazy("recipes.settings")

STAND_IN = "STAND-IN datadog-agent"  # what the test hosts' stand-in Agent prints first (tests/testhost/standin)
STATUS_LINES = re.compile(r"(Agent \(v|Status date|Hostname:|API Key|mysql|custom_my_metric|Total Runs|Errors|\[OK\]|\[ERROR\]|Instance ID)")


def setup_plan(c, dry_run=False):
    """Every VM step in order; all input is validated here, before the first connection."""
    settings = schema.of(c)
    return combined([
        agent.install_plan(c, agent.api_key_from_env(dry_run)),
        agent.tags_plan(agent.resolve_tags(c, None)),
        mysql.mysql_plan(settings.mysql),
        check.check_plan(check.check_files(settings.check.name, settings.check.min_collection_interval)),
    ])


def summarize(output: str, limit: int = 12) -> str:
    lines = [line.strip() for line in output.splitlines() if STATUS_LINES.search(line)]
    return " | ".join(dict.fromkeys(lines[:limit])) or output.strip()[:200]


# What the Agent calls this host: `datadog-agent hostname` where it answers, else what it falls back to
# (datadog.yaml's hostname:, then the OS hostname).
REPORTED_HOSTNAME = Read("{ h=$(datadog-agent hostname 2>/dev/null) && printf '%s\\n' \"$h\" | tail -n 1 | grep .; } || "
                         "sed -n 's/^hostname:[[:space:]]*//p' /etc/datadog-agent/datadog.yaml 2>/dev/null | grep . || "
                         "hostname")


def hostname_step(run: HostRun, reported: str, expected: str) -> None:
    with run.step(f"the Agent reports this host as api.host ({expected})") as step:
        if reported != expected:
            raise StepFailed(f"it reports {reported!r}, while the dashboards and the monitor query host:{expected}: "
                             f"set api.host: {reported} (or --define HOST={reported}) and re-apply them")
        step.note(f"hostname {reported}")


def agent_check(name: str) -> Read:
    return Read(f"sudo -u dd-agent -- datadog-agent check {name}")


AGENT_STATUS = Read("datadog-agent status")
# A log source the Agent cannot tail, as its status' Logs Agent section says it: "Status: Error: file PATH ..."
# (Datadog's log collection troubleshooting guide, "Permission issues tailing log files").
LOGS_ERROR = re.compile(r"^\s*Status: Error: file (\S+)", re.MULTILINE)


def verify_plan(check_name: str, expected_host: str):
    """The four steps of verify; what the Agent says is read in one session, before the first."""
    reads = [AGENT_STATUS, agent_check("mysql"), agent_check(check_name), REPORTED_HOSTNAME]

    def status(run: HostRun) -> None:
        code, output = run.read_all(reads)[0]
        with run.step("datadog-agent status") as step:
            if code != 0:
                raise StepFailed(f"exit {code}: {summarize(output)}")
            untailed = LOGS_ERROR.findall(output)
            if untailed:
                raise StepFailed(f"the Logs Agent cannot tail {', '.join(untailed)} (missing, or unreadable by "
                                 "dd-agent); ./run setup-mysql sets the log folder's ACLs again "
                                 "(Troubleshooting: MySQL logs unreadable)")
            step.note(summarize(output))

    def check(name: str, custom: bool):
        def step_of(run: HostRun) -> None:
            with run.step(f"datadog-agent check {name} (as dd-agent)") as step:
                code, output = run.read(agent_check(name))
                if code != 0:
                    raise StepFailed(f"exit {code}: {summarize(output)}")
                if custom:
                    if re.search(r"(?<![\w])my_metric\b", output):
                        step.note("my_metric reported")
                    elif STAND_IN in output:  # the test hosts' stand-in Agent reads the files but runs no check
                        step.note("the stand-in Agent runs no check, so no my_metric to show")
                    else:
                        raise StepFailed("the check ran but sent no my_metric: see checks.d/custom_my_metric.py "
                                         f"and its conf.d YAML ({summarize(output)})")
                step.note(summarize(output))
        return step_of

    def hostname(run: HostRun) -> None:
        hostname_step(run, run.read(REPORTED_HOSTNAME).output.strip(), expected_host)

    return host_plan([status, check("mysql", custom=False), check(check_name, custom=True), hostname])


@task
def vm_up(c):
    """Start the Vagrant box from the shipped Vagrantfile (port 5050 forwarded)."""
    if not shutil.which("vagrant"):
        raise Refused("`vagrant` is not installed (https://developer.hashicorp.com/vagrant/install); "
                      "or skip the box and pass --host user@addr[:port] to the VM tasks")
    c.run("vagrant up", pty=False)
    c.run(f"vagrant ssh-config {schema.of(c).vagrant.machine}", hide=True)


@task(iterable=["host"], help=HOST_HELP)
def setup(c, host=None, dry_run=False):
    """Run every VM step in order: install-agent, tag-host, setup-mysql, custom-check."""
    hosts.run_on_hosts(c, host, dry_run, "setup", setup_plan(c, dry_run))


@task(iterable=["host"], help=HOST)
def verify(c, host=None):
    """Summarise what the Agent reports: status, the MySQL check, the custom check and the host's name."""
    settings = schema.of(c)
    hosts.run_on_hosts(c, host, False, "verify", verify_plan(settings.check.name, settings.api.host), writes=False)
