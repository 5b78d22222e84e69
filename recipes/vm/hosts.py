"""Which hosts a VM task runs on, and running it there: the Vagrant box by default, or --host, in parallel.

One connection per host per run. Unknown SSH host keys are refused unless ``ssh.trust_unknown_hosts`` is set
or the Vagrant box's own ssh-config says ``StrictHostKeyChecking no``.
"""

from __future__ import annotations

import logging
import os
import shutil
import re
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait as wait_all
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from invoke.exceptions import Exit

from recipes.errors import Failed, Refused
from recipes.lazy import lazy
from recipes.vm.guestlock import GuestLock, LockRefused, describe_run
from recipes.vm.session import Interrupted
from recipes.vm.hostrun import CHANGED, FAILED, OK, HostRun, StepFailed
from recipes.vm.plan import HostPlan
from recipes.terminal import task_console

if TYPE_CHECKING:
    from fabric import Connection
    from rich.console import Console
    from rich.table import Table

paramiko = lazy("paramiko")
fabric = lazy("fabric")
rich_table = lazy("rich.table")
rich_markup = lazy("rich.markup")
schema = lazy("recipes.settings")

# paramiko's transport thread logs its own tracebacks (a banner timeout, a reset); with no handler Python would
# print them. Every failure reaches the user once, as the host's one-line result.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

HOST_RE = re.compile(r"^(?:(?P<user>[A-Za-z_][\w.-]*)@)?(?P<addr>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,5}))?$")


class HostError(Refused):
    """Bad host input, or no way to find the Vagrant box; the message names it."""


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
    vagrant = schema.of(c).vagrant
    saved = vagrant.ssh_config
    if saved:
        try:
            with open(os.path.expanduser(saved), encoding="utf-8") as handle:
                return handle.read(), saved
        except OSError as error:
            raise HostError(f"vagrant.ssh_config: cannot read {saved}: {error.strerror}") from error
    machine = vagrant.machine
    if not shutil.which("vagrant"):
        raise HostError("no Vagrant box to reach: vagrant is not installed (https://developer.hashicorp.com/vagrant/"
                        "install, with VirtualBox, then `./run vm-up`); or pass --host user@addr[:port] for another "
                        "host that answers SSH with sudo")
    result = c.run(f"vagrant ssh-config {machine}", hide=True, warn=True, in_stream=False)
    if result.exited != 0:
        raise HostError(
            f"`vagrant ssh-config {machine}` failed ({result.stderr.strip()[:200] or 'exit ' + str(result.exited)}); "
            "run `./run vm-up` first, or pass --host user@addr[:port]"
        )
    return result.stdout, "vagrant ssh-config"


def resolve_targets(c, hosts: list[str] | None) -> list[Target]:
    """--host values, else config ``hosts``, else the Vagrant box."""
    settings = schema.of(c)
    ssh = settings.ssh
    specs = list(hosts or []) or settings.hosts
    if not specs:
        text, source = read_vagrant_config(c)
        return [vagrant_target(text, settings.vagrant.machine, source)]
    key_file = ssh.key_file
    targets = []
    for spec in specs:
        user, addr, port = parse_host(spec, ssh.user)
        targets.append(
            Target(
                label=f"{user}@{addr}:{port}",
                addr=addr,
                user=user,
                port=port,
                key_files=[os.path.expanduser(key_file)] if key_file else [],
                known_hosts=os.path.expanduser(ssh.known_hosts),
                trust_unknown=ssh.trust_unknown_hosts,
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


def connect(target: Target, timeout: float) -> Connection:
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
    return conn


def open_connection(conn: Connection, timeout: float) -> None:
    """Open ``conn`` over a socket of our own with TCP_NODELAY set, then let paramiko take it over.

    paramiko's own socket keeps Nagle's algorithm on, and SSH's short back-and-forth messages (the key
    exchange, authentication, each session's request) then wait for the server's delayed ACK, about 40 ms
    each on Linux: a no-change run spent more time in those waits than on the host."""
    sock = socket.create_connection((conn.host, conn.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.connect_kwargs["sock"] = sock
    try:
        conn.open()
    except BaseException:
        sock.close()
        raise
    finally:
        del conn.connect_kwargs["sock"]  # a later open() (after a close) makes its own


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


def summary_table(title: str, runs: dict[str, HostRun | None], errors: dict[str, str], seconds: dict[str, float]) -> Table:
    table = rich_table.Table(title=title)
    for column in ("host", OK, CHANGED, FAILED, "seconds", "result"):
        table.add_column(column, justify="right" if column in (OK, CHANGED, FAILED, "seconds") else "left")
    for label, run in runs.items():
        tally = run.counts() if run else {OK: 0, CHANGED: 0, FAILED: 1}
        verdict = errors.get(label) or ("dry run" if run and run.dry_run else "done")
        if run and tally[FAILED]:  # its step's line above says why
            verdict = f"failed at {run.current}"
        elif run is None and label in errors:  # its "failed" line above says why
            verdict = "not reached"
        verdict = verdict if len(verdict) <= 90 else verdict[:87] + "..."
        style = "red" if label in errors else "green"
        table.add_row(label, str(tally[OK]), str(tally[CHANGED]), str(tally[FAILED]), f"{seconds.get(label, 0):.1f}",
                      f"[{style}]{verdict}[/]")
    return table


def run_on_hosts(c, hosts, dry_run: bool, title: str, plan: HostPlan, console: Console | None = None,
                 writes: bool = True):
    """Run ``plan`` on every selected host in parallel (one connection each), print a summary, exit 1 on failure.

    Each host is locked for the run (see guestlock.py: exclusively, or shared for a dry run and for a task
    that only reads, ``writes=False``). Ctrl-C or SIGTERM stops every host's run where it is: each host then
    says which step it was in and what goes on on the guest, the command that resumes is printed, and the
    task exits 130."""
    targets = resolve_targets(c, hosts)
    ssh = schema.of(c).ssh
    lock, stop = threading.Lock(), threading.Event()
    started = time.monotonic()
    runs: dict[str, HostRun | None] = {t.label: None for t in targets}
    errors: dict[str, str] = {}
    seconds: dict[str, float] = {}
    finished: set[str] = set()
    built = threading.Event()  # the console and the run's description, which the hosts' threads wait for
    about = ""

    def refuse(target: Target, message: str) -> None:
        """A host the run could not start on: said on a line of its own now, named in the summary after."""
        errors[target.label] = message
        console.print(f"[bold red]failed[/] {rich_markup.escape(message)}", highlight=False)

    def one(target: Target) -> None:
        conn = connect(target, ssh.connect_timeout)
        begin = time.monotonic()
        guest_lock = None
        try:
            try:
                open_connection(conn, ssh.connect_timeout)  # while the main thread builds the console
            except Exception as error:  # noqa: BLE001 - paramiko, sockets: named per host by explain_connect_error
                built.wait()
                refuse(target, explain_connect_error(target, error))
                return
            built.wait()
            if stop.is_set():
                raise Interrupted()
            run = HostRun(conn, target.label, console, dry_run=dry_run, lock=lock, stop=stop)
            guest_lock = GuestLock(conn, about, exclusive=writes and not dry_run, wait=ssh.lock_wait,
                                   say=run.say, stop=stop)
            run.first_session = guest_lock.acquire  # the plan's first session locks the host (guestlock.py)
            try:
                plan.read_first(run)
            except Interrupted:
                raise
            except (LockRefused, StepFailed) as refusal:  # sudo refused, the host held too long, the reads failed
                refuse(target, f"{target.label}: {refusal}")
                return
            except Exception as error:  # noqa: BLE001 - paramiko, sockets: named per host by explain_connect_error
                refuse(target, explain_connect_error(target, error))
                return
            runs[target.label] = run
            plan(run)
            run.finish()
            finished.add(target.label)
        except StepFailed as failure:
            errors[target.label] = str(failure)
        except Interrupted:
            pass  # said once for every host, below
        finally:
            seconds[target.label] = time.monotonic() - begin
            if guest_lock is not None:
                guest_lock.release()
            conn.close()

    futures = []
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        try:
            for target in targets:
                futures.append(pool.submit(one, target))  # each host connects at once
            try:
                console = console or task_console(min_width=120)
                about = describe_run(title, dry_run)
            finally:
                built.set()
            for future in futures:
                future.result()
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (the boundary turns it into the same)
            stop.set()
            built.set()  # a thread still waiting for the console sees the stop
            wait_for(futures)
    if stop.is_set():
        raise Exit(stopped_report(title, hosts, dry_run, runs, finished, errors), code=130)
    console.print(summary_table(f"{title}{' (dry run)' if dry_run else ''}", runs, errors, seconds))
    console.print(f"{len(targets)} host(s) in {time.monotonic() - started:.1f} s", highlight=False)
    if errors:
        print(f"{title}: failed on {len(errors)} of {len(targets)} host(s)", file=sys.stderr)
        raise Failed()  # each host's failure is shown above
    return runs


def wait_for(futures) -> None:
    """Until every host's thread has seen the stop (within a fraction of a second); a second Ctrl-C is ignored."""
    while True:
        try:
            wait_all(futures)
            return
        except KeyboardInterrupt:
            continue


def stopped_report(title: str, hosts, dry_run: bool, runs: dict[str, HostRun | None], finished: set[str],
                   errors: dict[str, str]) -> str:
    """What a stopped run says: per host, the step it was in and what goes on there; then how to resume."""
    lines = []
    for label, run in runs.items():
        if label in finished:
            lines.append(f"{label}: had finished")
        elif label in errors:
            lines.append(f"{label}: had failed: {errors[label]}")
        elif run is None or not run.step_index:
            lines.append(f"{label}: stopped before its first step; nothing was changed")
        else:
            going_on = (f"on the host, {' and '.join(run.in_flight)} goes on to its end by itself, and the next "
                        "run waits for it" if run.in_flight else "nothing was running on the host")
            lines.append(f"{label}: stopped during {run.current}; {going_on}")
    again = " ".join(["./run", title, *(["--dry-run"] if dry_run else []),
                      *[arg for host in hosts or [] for arg in ("--host", host)]])
    lines.append(f"stopped by the user; to resume: {again}")
    return "\n".join(lines)
