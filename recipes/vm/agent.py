"""The Datadog Agent on the VM: install it from Datadog's signed apt repository and set the host tags."""

from __future__ import annotations

import os
import re
import shlex
import sys
from functools import partial

from recipes.taskdef import task

from recipes.ddsite import datadog_site
from recipes.errors import Refused
from recipes.lazy import lazy
from recipes.vm import datadog_yaml
from recipes.vm.datadog_yaml import ConfigError
from recipes.vm.options import HOST_HELP
from recipes.vm.hostfiles import file_read
from recipes.vm.hostrun import HostRun, StepFailed
from recipes.vm.packages import PackageGroup, ensure_packages, work_of
from recipes.vm.plan import host_plan
from recipes.vm.reads import Answer, Read, succeeded
from recipes.vm.rendering import render

hosts = lazy("recipes.vm.hosts")  # the runner (Fabric, threads): imported when a task runs, not to list them
schema = lazy("recipes.settings")

KEYRING = "/usr/share/keyrings/datadog-archive-keyring.gpg"
SOURCE_LIST = "/etc/apt/sources.list.d/datadog.list"
DATADOG_YAML = "/etc/datadog-agent/datadog.yaml"
FINGERPRINT_RE = re.compile(r"\b[0-9A-F]{40}\b")
MISSING_KEY = "DD_API_KEY-not-set"  # stands for the key in a dry run only; never written
RESTART_AGENT = ("restart datadog-agent", "svc datadog-agent restart 2>&1\n")
AGENT_RUNNING = Read("running datadog-agent >/dev/null 2>&1", succeeded)
PREREQUISITES = PackageGroup(("gnupg", "curl", "ca-certificates"))


def api_key_from_env(dry_run: bool = False) -> str:
    """DD_API_KEY from the local environment; missing -> a clear error before anything is written.

    A dry run writes nothing, so it goes on without the key (with a warning) and the diff shows the
    api_key line masked, as always."""
    key = os.environ.get("DD_API_KEY", "").strip()
    if key:
        return key
    if dry_run:
        print("warning: DD_API_KEY is not set; the dry run goes on, but a real run needs it", file=sys.stderr)
        return MISSING_KEY
    raise Refused("DD_API_KEY is not set in this shell's environment; export it and re-run")


def site_from_env() -> str:
    """The Agent's site: DD_SITE, the same one the API tasks use; refused before anything happens if unknown."""
    return datadog_site()


def merge_datadog_yaml(run: HostRun, name: str, updates: dict) -> None:
    """A step that sets ``updates`` in datadog.yaml (dd-agent, 0640) and asks for one Agent restart if it changed."""
    with run.step(name) as step:
        current = run.file(DATADOG_YAML)
        base = current.content if current.exists else render("datadog.yaml")
        try:
            wanted = datadog_yaml.merge(base, DATADOG_YAML, updates)
        except ConfigError as error:
            raise StepFailed(str(error)) from error
        if run.put_file(step, current, wanted, "dd-agent", "dd-agent", "0640"):
            run.notify(*RESTART_AGENT)


def existing_yaml_step(run: HostRun) -> None:
    """Read the host's datadog.yaml first: a malformed one stops the run before any package is installed."""
    with run.step("datadog.yaml on the host is well-formed (read before any change)") as step:
        current = run.file(DATADOG_YAML)
        if not current.exists:
            step.note("not there yet")
            return
        try:
            datadog_yaml.load(current.content, DATADOG_YAML)
        except ConfigError as error:
            raise StepFailed(str(error)) from error


def fingerprints(answer: Answer) -> set[str]:
    return set(FINGERPRINT_RE.findall(answer.output))


def keyring_reads(key_urls: list[str]) -> tuple[Read, Read]:
    """What the keyring holds (its answer: fingerprints and mode) and what the key URLs serve (fingerprints)."""
    fetch = "\n".join(
        f"curl -fsSL --retry 2 {shlex.quote(url)} | GNUPGHOME=$g gpg --batch --show-keys --with-colons 2>/dev/null"
        for url in key_urls
    )
    # Listing a missing keyring would create it: look only when the file is there.
    have = Read(f"[ -f {KEYRING} ] || exit 0; g=$(mktemp -d); trap 'rm -rf $g' EXIT; GNUPGHOME=$g gpg"
                f" --no-default-keyring --keyring {KEYRING} --list-keys --with-colons 2>/dev/null"
                " | awk -F: '/^fpr/{print $10}'; stat -c 'mode %a' " + KEYRING)
    want = Read(f"g=$(mktemp -d); trap 'rm -rf $g' EXIT; set -o pipefail; {{ {fetch}; }} | awk -F: '/^fpr/{{print $10}}'")
    return have, want


def keyring_step(run: HostRun, key_urls: list[str]) -> None:
    """Import Datadog's current signing keys into the signed-by keyring, only the ones missing."""
    with run.step("Datadog apt signing keys in " + KEYRING) as step:
        reads = keyring_reads(key_urls)
        have, want = run.read_all(reads)
        run.done_with(reads)  # they fetch the keys: not again in later sessions
        mode_ok = "mode 644" in have.output
        if want.ok and fingerprints(want) and fingerprints(want) <= fingerprints(have) and mode_ok:
            return
        step.changed(("would import" if run.dry_run else "imported") + f" {len(key_urls)} key(s)")
        if run.dry_run:
            return
        imports = "\n".join(
            f"curl -fsSL --retry 2 {shlex.quote(url)} -o $t/key\n"
            f"gpg --no-default-keyring --keyring {KEYRING} --import --batch $t/key 2>/dev/null"
            for url in key_urls
        )
        # An existing (empty) file makes gpg keep the classic keyring format that apt reads. The import goes
        # with the next session, the Agent's install, which needs it.
        run.queue("import the signing keys", f"set -e\nt=$(mktemp -d); trap 'rm -rf $t' EXIT\nexport GNUPGHOME=$t\n"
                  f"touch {KEYRING}\n{imports}\nrm -f {KEYRING}~\nchmod 0644 {KEYRING}\n", changes=reads)


def running_step(run: HostRun) -> None:
    """Start the Agent if it is not running (a run cut before its restart converges on the next run)."""
    with run.step("datadog-agent running") as step:
        if RESTART_AGENT[0] in run.handlers:
            step.note("a restart is already due")
        elif not run.read(AGENT_RUNNING):
            step.changed("not running: it will be started once, at the end")
            run.notify(*RESTART_AGENT)


def install_plan(c, api_key: str):
    """The steps of install-agent."""
    agent = schema.of(c).agent
    site = site_from_env()
    source = render("datadog.list", "agent.repo_url", keyring=KEYRING, repo_url=agent.repo_url,
                    dist=agent.repo_dist, components=agent.repo_components)
    packages = PackageGroup(tuple(agent.packages), source=SOURCE_LIST)
    key_urls = list(agent.key_urls)

    def prerequisites(run: HostRun) -> None:
        with run.step("apt prerequisites (" + ", ".join(PREREQUISITES.packages) + ")") as step:
            ensure_packages(run, step, PREREQUISITES)

    def source_step(run: HostRun) -> None:
        with run.step("apt source " + SOURCE_LIST) as step:
            run.handed["agent source changed"] = run.put_file(step, run.file(SOURCE_LIST), source, "root", "root", "0644")
            work_of(run).sources_ready.add(SOURCE_LIST)

    def packages_step(run: HostRun) -> None:
        with run.step("packages " + " ".join(agent.packages)) as step:
            ensure_packages(run, step, packages)
            if run.handed.get("agent source changed"):
                step.note("source changed")

    return host_plan(
        [prerequisites, partial(keyring_step, key_urls=key_urls), source_step, packages_step,
         partial(merge_datadog_yaml, name="datadog.yaml: api_key and site", updates={"api_key": api_key, "site": site}),
         running_step],
        checks=[existing_yaml_step],
        reads=[*keyring_reads(key_urls), file_read(SOURCE_LIST), file_read(DATADOG_YAML), AGENT_RUNNING],
        packages=[PREREQUISITES, packages])


def tags_plan(tags: list[str]):
    """The one step of tag-host."""
    return host_plan([partial(merge_datadog_yaml, name=f"datadog.yaml: tags ({', '.join(tags)})", updates={"tags": tags})],
                     reads=[file_read(DATADOG_YAML)])


def resolve_tags(c, tag) -> list[str]:
    """--tag values, else agent.tags; a bad tag is refused naming where it came from."""
    return datadog_yaml.parse_tags(tag, "--tag") if tag else datadog_yaml.parse_tags(schema.of(c).agent.tags, "agent.tags")


@task(iterable=["host"], help=HOST_HELP)
def install_agent(c, host=None, dry_run=False):
    """Install Agent 7 from Datadog's apt repository and write api_key and site into datadog.yaml."""
    hosts.run_on_hosts(c, host, dry_run, "install-agent", install_plan(c, api_key_from_env(dry_run)))


@task(iterable=["host", "tag"], help={**HOST_HELP, "tag": "host tag as key:value; repeatable (default: agent.tags)"})
def tag_host(c, host=None, tag=None, dry_run=False):
    """Write host tags into datadog.yaml and restart the Agent once, only if they changed."""
    hosts.run_on_hosts(c, host, dry_run, "tag-host", tags_plan(resolve_tags(c, tag)))
