"""Which hosts a VM task runs on, and running it there: the Vagrant box by default, or --host, in parallel.

One connection per host per run. Unknown SSH host keys are refused unless ``ssh.trust_unknown_hosts`` is set
or the Vagrant box's own ssh-config says ``StrictHostKeyChecking no``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from invoke.exceptions import Exit

from recipes.lazy import lazy

from recipes.vm.steps import CHANGED, FAILED, OK, HostPlan, HostRun, StepFailed
from recipes.terminal import task_console

if TYPE_CHECKING:
    from fabric import Connection, ThreadingGroup
    from rich.console import Console
    from rich.table import Table

paramiko = lazy("paramiko")
fabric = lazy("fabric")
rich_table = lazy("rich.table")

# paramiko's transport thread logs its own tracebacks (a banner timeout, a reset); with no handler Python would
# print them. Every failure reaches the user once, as the host's one-line result.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

HOST_RE = re.compile(r"^(?:(?P<user>[A-Za-z_][\w.-]*)@)?(?P<addr>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,5}))?$")


class HostError(Exception):
    """Bad host input or an unreachable host; the message names it."""


@dataclass
class Target:
    """Everything needed to open one SSH connection."""

    label: str
    addr: str
    user: str
    port: int = 22
    key_files: list[str] = field(default_factory=list)
    known_hosts: str | None = None
    trust_unknown: bool = False


def parse_host(spec: str, default_user: str = "vagrant") -> tuple[str, str, int]:
    """``user@addr[:port]`` -> (user, addr, port); a clear error names the bad value."""
    match = HOST_RE.match(spec.strip())
    if not match:
        raise HostError(f"--host {spec!r}: expected user@addr[:port]")
    port = int(match["port"] or 22)
    if not 0 < port < 65536:
        raise HostError(f"--host {spec!r}: port {port} is out of range")
    return match["user"] or default_user, match["addr"].strip("[]"), port


def vagrant_target(text: str, machine: str, source: str) -> Target:
    """A target from ``vagrant ssh-config`` output, parsed by paramiko's SSHConfig (what Fabric uses)."""
    parsed = paramiko.SSHConfig.from_text(text)
    if machine not in parsed.get_hostnames():
        raise HostError(f"{source}: no `Host {machine}` entry (vagrant.machine = {machine!r})")
    entry = parsed.lookup(machine)
    known_hosts = entry.get("userknownhostsfile")
    return Target(
        label=machine,
        addr=entry["hostname"],
        user=entry.get("user", "vagrant"),
        port=int(entry.get("port", 22)),
        key_files=[os.path.expanduser(p.strip('"')) for p in entry.get("identityfile", [])],
        known_hosts=known_hosts.split()[0].strip('"') if known_hosts else None,
        trust_unknown=entry.get("stricthostkeychecking", "ask").lower() == "no",
    )


def read_vagrant_config(c) -> tuple[str, str]:
    """The box's ssh-config text: from ``vagrant.ssh_config`` (a saved copy) or ``vagrant ssh-config``."""
    saved = c.config.vagrant.get("ssh_config") or ""
    if saved:
        try:
            with open(os.path.expanduser(saved), encoding="utf-8") as handle:
                return handle.read(), saved
        except OSError as error:
            raise HostError(f"vagrant.ssh_config: cannot read {saved}: {error.strerror}") from error
    machine = c.config.vagrant.machine
    result = c.run(f"vagrant ssh-config {machine}", hide=True, warn=True, in_stream=False)
    if result.exited != 0:
        raise HostError(
            f"`vagrant ssh-config {machine}` failed ({result.stderr.strip()[:200] or 'exit ' + str(result.exited)}); "
            "run `invoke vm-up` first, or pass --host user@addr[:port]"
        )
    return result.stdout, "vagrant ssh-config"


def resolve_targets(c, hosts: list[str] | None) -> list[Target]:
    """--host values, else config ``hosts``, else the Vagrant box."""
    ssh = c.config.ssh
    specs = list(hosts or []) or list(c.config.get("hosts") or [])
    if not specs:
        text, source = read_vagrant_config(c)
        return [vagrant_target(text, c.config.vagrant.machine, source)]
    key_file = ssh.get("key_file") or ""
    targets = []
    for spec in specs:
        user, addr, port = parse_host(spec, ssh.get("user", "vagrant"))
        targets.append(
            Target(
                label=f"{user}@{addr}:{port}",
                addr=addr,
                user=user,
                port=port,
                key_files=[os.path.expanduser(key_file)] if key_file else [],
                known_hosts=os.path.expanduser(ssh.get("known_hosts") or "~/.ssh/known_hosts"),
                trust_unknown=bool(ssh.trust_unknown_hosts),
            )
        )
    labels = [t.label for t in targets]
    if len(set(labels)) != len(labels):
        raise HostError(f"--host: the same host is given twice ({', '.join(labels)})")
    return targets


class _TrustForThisRun:
    """Accept an unknown key without saving it (only when explicitly allowed).

    paramiko only calls ``missing_host_key`` on a policy; not subclassing its base keeps paramiko unloaded
    until a connection is made.
    """

    def missing_host_key(self, client, hostname, key):
        return None


def connect(target: Target, timeout: int) -> Connection:
    """A Fabric connection (not yet opened) that refuses unknown host keys unless trusted."""
    kwargs = {"allow_agent": False, "look_for_keys": not target.key_files, "banner_timeout": timeout}
    if target.key_files:
        kwargs["key_filename"] = target.key_files
    conn = fabric.Connection(
        target.addr,
        user=target.user,
        port=target.port,
        connect_timeout=timeout,
        connect_kwargs=kwargs,
        config=fabric.Config(ssh_config=paramiko.SSHConfig()),  # everything comes from our config, not ~/.ssh/config
    )
    if target.known_hosts and os.path.isfile(target.known_hosts):
        conn.client.load_host_keys(target.known_hosts)
    conn.client.set_missing_host_key_policy(_TrustForThisRun() if target.trust_unknown else paramiko.RejectPolicy())
    conn.runbook_label = target.label
    return conn


def explain_connect_error(target: Target, error: BaseException) -> str:
    """Turn a connection or sudo failure into a message naming the host and what to do."""
    if isinstance(error, paramiko.BadHostKeyException):
        return f"{target.label}: host key CHANGED (does not match {target.known_hosts}); refusing to connect"
    if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in str(error):
        return (
            f"{target.label}: unknown host key, refused (add it to {target.known_hosts or 'known_hosts'} "
            "or set ssh.trust_unknown_hosts: true)"
        )
    if isinstance(error, paramiko.AuthenticationException):
        return f"{target.label}: SSH authentication failed for user {target.user}"
    if isinstance(error, paramiko.SSHException) and re.search(r"banner|No existing session", str(error)):
        return f"{target.label}: timed out: the port accepts connections but sends no SSH banner"
    if isinstance(error, (socket.timeout, TimeoutError, OSError)):
        return f"{target.label}: cannot connect ({error})"
    return f"{target.label}: {type(error).__name__}: {error}"


def preflight(group: ThreadingGroup, targets: list[Target]) -> dict[str, str]:
    """Open every connection in parallel through the Group and prove passwordless sudo. label -> error."""
    by_conn = dict(zip(group, targets))
    try:
        results = group.run("sudo -n true", hide=True, warn=True, in_stream=False)
    except fabric.exceptions.GroupException as failure:
        results = failure.result
    errors = {}
    for conn, outcome in results.items():
        target = by_conn[conn]
        if isinstance(outcome, BaseException):
            errors[target.label] = explain_connect_error(target, outcome)
        elif outcome.exited != 0:
            errors[target.label] = (
                f"{target.label}: user {target.user} cannot run sudo without a password "
                f"({outcome.stderr.strip()[:120]}); nothing was changed"
            )
    return errors


def summary_table(title: str, runs: dict[str, HostRun | None], errors: dict[str, str], seconds: dict[str, float]) -> Table:
    table = rich_table.Table(title=title)
    for column in ("host", OK, CHANGED, FAILED, "seconds", "result"):
        table.add_column(column, justify="right" if column in (OK, CHANGED, FAILED, "seconds") else "left")
    for label, run in runs.items():
        tally = run.counts() if run else {OK: 0, CHANGED: 0, FAILED: 1}
        verdict = errors.get(label) or ("dry run" if run and run.dry_run else "done")
        verdict = verdict if len(verdict) <= 90 else verdict[:87] + "..."
        style = "red" if label in errors else "green"
        table.add_row(label, str(tally[OK]), str(tally[CHANGED]), str(tally[FAILED]), f"{seconds.get(label, 0):.1f}",
                      f"[{style}]{verdict}[/]")
    return table


def run_on_hosts(c, hosts, dry_run: bool, title: str, plan: HostPlan, console: Console | None = None):
    """Run ``plan`` on every selected host in parallel (one connection each), print a summary, exit 1 on failure."""
    console = console or task_console(min_width=120)
    try:
        targets = resolve_targets(c, hosts)
    except HostError as error:
        raise Exit(f"error: {error}", code=2) from error
    timeout = int(c.config.ssh.connect_timeout)
    conns = [connect(t, timeout) for t in targets]
    group = fabric.ThreadingGroup.from_connections(conns)
    lock = threading.Lock()
    started = time.monotonic()
    runs: dict[str, HostRun | None] = {t.label: None for t in targets}
    seconds: dict[str, float] = {}
    try:
        errors = preflight(group, targets)
        for label, message in errors.items():
            console.print(f"[bold red]failed[/] {message}", highlight=False)

        def one(conn_target):
            conn, target = conn_target
            run = HostRun(conn, target.label, console, dry_run=dry_run, lock=lock)
            runs[target.label] = run
            begin = time.monotonic()
            try:
                plan(run)
                run.finish()
            except StepFailed as failure:
                errors[target.label] = str(failure)
            finally:
                seconds[target.label] = time.monotonic() - begin

        ready = [(conn, t) for conn, t in zip(conns, targets) if t.label not in errors]
        with ThreadPoolExecutor(max_workers=max(1, len(ready))) as pool:
            list(pool.map(one, ready))
    finally:
        group.close()
    console.print(summary_table(f"{title}{' (dry run)' if dry_run else ''}", runs, errors, seconds))
    console.print(f"{len(targets)} host(s) in {time.monotonic() - started:.1f} s", highlight=False)
    if errors:
        raise Exit(f"{title}: failed on {len(errors)} of {len(targets)} host(s)", code=1)
    return runs
