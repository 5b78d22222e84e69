"""The step engine: each step reads the host's state first, changes only what differs, reports ok/changed/failed.

A ``HostRun`` wraps one open Fabric connection. Steps batch their state reads into one SSH round trip
(``probe``), write files atomically (SFTP to a private temp file, then ``install`` + ``mv`` as root), and
mark handlers ("restart the Agent") that run once at the end, only if needed, and never in a dry run.
"""

from __future__ import annotations

import base64
import difflib
import io
import posixpath
import re
import secrets
import select
import shlex
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from typing import TYPE_CHECKING

from recipes.lazy import lazy

if TYPE_CHECKING:
    from rich.console import Console

rich_markup = lazy("rich.markup")

OK, CHANGED, FAILED, SKIPPED = "ok", "changed", "failed", "skipped"
STYLES = {OK: "green", CHANGED: "yellow", FAILED: "bold red", SKIPPED: "dim"}
MASK = "********"
# Keys whose values never appear in output or diffs.
SECRET_KEY_RE = re.compile(r"^(\s*-?\s*(?:api_key|app_key|password)\s*:\s*).*$", re.IGNORECASE)
PROBE_LINE_RE = re.compile(r"^@@(\S+) (\S*) (\d+)$")

# Shell helper shared by every root script: `service` exists with and without systemd; fall back to init.d.
APT_LOCK_WAIT = 300  # seconds apt waits for another package run to end
SHELL_PRELUDE = """set -u
svc() { if command -v service >/dev/null 2>&1; then service "$@"; else "/etc/init.d/$1" "${@:2}"; fi; }
"""


class StepFailed(Exception):
    """A step could not do its job; the message names what is wrong (never a secret)."""


@dataclass
class FileState:
    path: str
    exists: bool = False
    content: str = ""
    owner: str = ""
    group: str = ""
    mode: str = ""


@dataclass
class StepResult:
    name: str
    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Step:
    """Handed to the body of a step: it calls ``changed()`` when it did (or, in a dry run, would do) something."""

    name: str
    status: str = OK
    notes: list[str] = field(default_factory=list)

    def changed(self, note: str = "") -> None:
        self.status = CHANGED
        if note:
            self.notes.append(note)

    def note(self, text: str) -> None:
        self.notes.append(text)


def mask_secrets(text: str) -> str:
    """Replace the value of every api_key/password line with a mask."""
    return "\n".join(SECRET_KEY_RE.sub(lambda m: m.group(1) + MASK, line) for line in text.split("\n"))


def unified_diff(path: str, old: str, new: str) -> str:
    """A unified diff of a file's content, secrets masked on both sides."""
    lines = difflib.unified_diff(
        mask_secrets(old).splitlines(keepends=True),
        mask_secrets(new).splitlines(keepends=True),
        fromfile=f"{path} (on host)",
        tofile=f"{path} (to write)",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def probe_script(probes: dict[str, str]) -> str:
    """One bash script that runs every probe and prints ``@@name <base64 output> <exit code>`` for each."""
    parts = [SHELL_PRELUDE]
    for name, command in probes.items():
        if not re.fullmatch(r"[\w.-]+", name):
            raise ValueError(f"bad probe name {name!r}")
        parts.append(
            f"printf '\\n@@%s ' {shlex.quote(name)}\n"
            f"( {command}\n) </dev/null 2>&1 | base64 -w0\n"
            f"printf ' %s\\n' \"${{PIPESTATUS[0]}}\"\n"
        )
    return "".join(parts)


def parse_probes(stdout: str) -> dict[str, tuple[int, str]]:
    """Parse the output of ``probe_script``: name -> (exit code, output)."""
    found = {}
    for line in stdout.splitlines():
        match = PROBE_LINE_RE.match(line)
        if match:
            name, encoded, code = match.groups()
            found[name] = (int(code), base64.b64decode(encoded).decode("utf-8", "replace"))
    return found


def file_probe(path: str) -> str:
    """A probe printing ``owner group mode`` on the first line, then the file's content."""
    quoted = shlex.quote(path)
    return f"stat -c '%U %G %a' {quoted} && cat {quoted}"


def parse_file_probe(path: str, result: tuple[int, str]) -> FileState:
    code, output = result
    if code != 0:
        return FileState(path)
    meta, _, content = output.partition("\n")
    owner, group, mode = meta.split()
    return FileState(path, True, content, owner, group, mode.rjust(4, "0"))


def heredoc(text: str) -> str:
    """Quote text for a bash here-document with a delimiter that cannot occur in it."""
    delimiter = "RUNBOOK_" + secrets.token_hex(8).upper()
    return f"<<'{delimiter}'\n{text if text.endswith(chr(10)) else text + chr(10)}{delimiter}"


@dataclass
class Outcome:
    exited: int
    stdout: str
    stderr: str


def run_script(conn, command: str, stdin_text: str, timeout: float = 1800) -> Outcome:
    """Run ``command`` on the connection's transport with ``stdin_text`` on its stdin, in one round trip.

    Fabric's ``run(in_stream=...)`` feeds stdin one byte per 10 ms (5 s for a 500-byte script), so the
    engine opens a session channel on the same connection itself.
    """
    if not conn.is_connected:
        conn.open()
    channel = conn.transport.open_session()
    try:
        channel.exec_command(command)
        channel.sendall(stdin_text.encode())
        channel.shutdown_write()
        deadline = time.monotonic() + timeout
        out, err = read_to_eof(channel, deadline, timeout)
        if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
            raise StepFailed(f"remote command gave no exit status within {timeout:.0f} s")
        return Outcome(channel.recv_exit_status(), out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    finally:
        channel.close()


def read_to_eof(channel, deadline: float, timeout: float) -> tuple[bytearray, bytearray]:
    """Read stdout and stderr until the server's EOF (or close), not just until the exit status.

    OpenSSH sends ``exit-status`` when the command exits, which can be before the last output bytes
    (a child still holding stdout, or a busy machine): stopping there loses output.
    """
    out, err = bytearray(), bytearray()
    while True:
        while channel.recv_ready():
            out += channel.recv(65536)
        while channel.recv_stderr_ready():
            err += channel.recv_stderr(65536)
        if channel.eof_received or channel.closed:
            if not channel.recv_ready() and not channel.recv_stderr_ready():
                return out, err
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            raise StepFailed(f"remote command timed out after {timeout:.0f} s")
        # The channel's pipe becomes readable on stdout, stderr or EOF.
        select.select([channel], [], [], min(left, 0.5))


class HostRun:
    """The state of one host during one task run: its connection, its step results and pending handlers."""

    def __init__(self, conn, label: str, console: Console, dry_run: bool = False, lock: threading.Lock | None = None):
        self.conn = conn
        self.label = label
        self.console = console
        self.dry_run = dry_run
        self.results: list[StepResult] = []
        self.handlers: dict[str, str] = {}  # name -> root script, in the order first notified
        self.facts: dict[str, str] = {}
        self.staged: dict[str, FileState] = {}  # in a dry run: files as earlier steps would have left them
        self.total_steps = 0  # planned steps, for the [n/N] progress counter (handlers are not counted)
        self.step_index = 0
        self._lock = lock or threading.Lock()

    # --- output -------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        with self._lock:
            self.console.print(f"[bold cyan]{rich_markup.escape(self.label)}[/] {text}", highlight=False, soft_wrap=True)

    def show_diff(self, diff: str) -> None:
        with self._lock:
            self.console.print(f"[bold cyan]{rich_markup.escape(self.label)}[/] diff:", highlight=False)
            for line in diff.splitlines():
                style = "green" if line.startswith("+") else "red" if line.startswith("-") else "dim"
                self.console.print(f"    [{style}]{rich_markup.escape(line)}[/]", highlight=False, soft_wrap=True)

    # --- remote execution ---------------------------------------------------------------------
    def root(self, script: str, warn: bool = False) -> "Outcome":
        """Run a bash script as root. The script travels on stdin, so nothing in it shows on a command line."""
        outcome = run_script(self.conn, "sudo -n bash -s", SHELL_PRELUDE + script)
        if outcome.exited != 0 and not warn:
            detail = (outcome.stderr or outcome.stdout).strip().splitlines()[-3:]
            raise StepFailed(f"remote command failed (exit {outcome.exited}): {' | '.join(detail)}")
        return outcome

    def probe(self, probes: dict[str, str]) -> dict[str, tuple[int, str]]:
        """Run every state check in one round trip; name -> (exit code, output)."""
        result = self.root(probe_script(probes), warn=True)
        found = parse_probes(result.stdout)
        missing = set(probes) - set(found)
        if missing:
            raise StepFailed(f"state check did not complete ({', '.join(sorted(missing))}): {result.stderr.strip()[-200:]}")
        return found

    def files(self, paths: list[str], extra: dict[str, str] | None = None):
        """Read several files (content, owner, group, mode) plus extra probes, in one round trip."""
        probes = {f"file{i}": file_probe(path) for i, path in enumerate(paths)}
        found = self.probe({**probes, **(extra or {})})
        states = {path: self.staged.get(path) or parse_file_probe(path, found[f"file{i}"]) for i, path in enumerate(paths)}
        return states, {name: found[name] for name in (extra or {})}

    # --- writing ------------------------------------------------------------------------------
    def put_file(self, step: Step, current: FileState, content: str, owner: str, group: str, mode: str) -> bool:
        """Make the file hold ``content`` with owner/group/mode; show a diff in a dry run. True if it changed."""
        mode = mode.rjust(4, "0")
        same_content = current.exists and current.content == content
        same_meta = current.exists and (current.owner, current.group, current.mode) == (owner, group, mode)
        if same_content and same_meta:
            return False
        if not same_content:
            diff = unified_diff(current.path, current.content if current.exists else "", content)
            if self.dry_run:
                self.show_diff(diff or f"(only masked secret values differ in {current.path})\n")
            step.changed(f"{'would write' if self.dry_run else 'wrote'} {current.path}")
        else:
            step.changed(f"{'would set' if self.dry_run else 'set'} {owner}:{group} {mode} on {current.path}")
        if self.dry_run:
            self.staged[current.path] = FileState(current.path, True, content, owner, group, mode)
            return True
        if same_content:
            self.root(f"chown {owner}:{group} {shlex.quote(current.path)} && chmod {mode} {shlex.quote(current.path)}")
        else:
            self._write_atomically(current.path, content, owner, group, mode)
        return True

    def _write_atomically(self, path: str, content: str, owner: str, group: str, mode: str) -> None:
        """Stage the file beside its target as root (0600 until complete), then rename it into place.

        The bytes travel inside the root script (base64 in a here-document, on stdin): no copy is ever left
        where the SSH user could read it, and a run cut at any point leaves the old file or the new one.
        """
        q = shlex.quote
        staged = f"{path}.runbook-new"
        target_dir = posixpath.dirname(path)
        encoded = base64.encodebytes(content.encode()).decode()
        self.root(
            f"[ -d {q(target_dir)} ] || install -d -o {owner} -g {group} -m 0755 {q(target_dir)}\n"
            f"(umask 077 && base64 -d > {q(staged)}) {heredoc(encoded)}\n"
            f"chown {owner}:{group} {q(staged)} && chmod {mode} {q(staged)}\n"
            f"mv -f {q(staged)} {q(path)}\n"
        )

    # --- handlers -------------------------------------------------------------------------------
    def notify(self, name: str, script: str) -> None:
        """Ask for a handler (a service restart) to run once, later."""
        self.handlers.setdefault(name, script)

    def flush(self, name: str | None = None) -> None:
        """Run pending handlers now (all, or one by name); a dry run only says what it would do."""
        for each in [n for n in list(self.handlers) if name is None or n == name]:
            script = self.handlers.pop(each)
            with self.step(each, handler=True) as step:
                if self.dry_run:
                    step.changed("would run (dry run)")
                else:
                    self.root(script)
                    step.changed("ran once")

    # --- steps ----------------------------------------------------------------------------------
    @contextmanager
    def step(self, name: str, handler: bool = False):
        """Run a step's body; record and print ok/changed/failed. A failure stops this host's run."""
        step = Step(name)
        if not handler:
            self.step_index += 1
        counter = f"[{self.step_index}/{self.total_steps}] " if self.total_steps and not handler else ""
        started = time.monotonic()
        try:
            yield step
        except Exception as error:  # noqa: BLE001 - every failure is reported per host, then re-raised
            message = str(error) if isinstance(error, StepFailed) else f"{type(error).__name__}: {error}"
            self._record(StepResult(name, FAILED, message, time.monotonic() - started), counter)
            raise StepFailed(f"{name}: {message}") from error
        self._record(StepResult(name, step.status, "; ".join(step.notes), time.monotonic() - started), counter)

    def _record(self, result: StepResult, counter: str = "") -> None:
        self.results.append(result)
        status = result.status
        if self.dry_run and status == CHANGED:
            status_text = "changed (dry run)"
        else:
            status_text = status
        detail = f" [dim]{rich_markup.escape(result.detail)}[/]" if result.detail else ""
        self.say(f"{counter}[{STYLES[result.status]}]{status_text:<8}[/] {rich_markup.escape(result.name)}{detail}")

    def counts(self) -> dict[str, int]:
        tally = {OK: 0, CHANGED: 0, FAILED: 0}
        for result in self.results:
            tally[result.status] = tally.get(result.status, 0) + 1
        return tally


# --- rendering shipped templates ------------------------------------------------------------------
TEMPLATES = posixpath.join(posixpath.dirname(__file__), "templates")
PLACEHOLDER_RE = re.compile(r"<[A-Za-z0-9_ .:\-]+>")


@dataclass(frozen=True)
class HostPlan:
    """A task's work on one host: read-only checks of host state first (``preflight``, one step each), then
    ``body``, which runs ``body_steps`` steps.

    A check finds state that would make a later step fail (a malformed file) before anything is written;
    ``setup`` runs every task's checks before the first task's body. ``steps`` is the [n/N] total, and a
    successful run that ran another number of steps fails: a total that drifts from its body is caught.
    """

    body: Callable[[HostRun], None]
    body_steps: int
    preflight: tuple[Callable[[HostRun], None], ...] = ()

    @property
    def steps(self) -> int:
        return self.body_steps + len(self.preflight)

    def __call__(self, run: HostRun) -> None:
        run.total_steps = self.steps
        for check in self.preflight:
            check(run)
        self.body(run)
        if run.step_index != self.steps:
            raise StepFailed(f"the plan declares {self.steps} steps but ran {run.step_index}: "
                             "correct the count given to host_plan")


def host_plan(body: Callable[[HostRun], None], steps: int, preflight=()) -> HostPlan:
    """A plan of ``steps`` steps (handlers are not counted) run by ``body``, after the ``preflight`` checks."""
    return HostPlan(body, steps, tuple(preflight))


def combined(plans: list[HostPlan]) -> HostPlan:
    """Several plans as one: every plan's checks first, then every body in order; the totals add up."""
    def every_body(run: HostRun) -> None:
        for each in plans:
            each.body(run)

    return HostPlan(every_body, sum(each.body_steps for each in plans),
                    tuple(check for each in plans for check in each.preflight))


def render(template: str, source: str = "", **values) -> str:
    """Fill ``recipes/vm/templates/<template>`` ($name fields); refuse any value or line left as a <PLACEHOLDER>."""
    from string import Template

    for key, value in values.items():
        if PLACEHOLDER_RE.search(str(value)):
            raise StepFailed(f"{source or template}: {key} is a placeholder ({value!r}); set a real value")
    with open(posixpath.join(TEMPLATES, template), encoding="utf-8") as handle:
        text = Template(handle.read()).substitute(values)
    refuse_placeholders(text, template)
    return text


def refuse_placeholders(text: str, name: str) -> None:
    """Stop if a non-comment line still holds a <PLACEHOLDER> (the `port: <3306>` pitfall)."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        found = PLACEHOLDER_RE.search(line)
        if found:
            raise StepFailed(f"{name}: line {number}: unfilled placeholder {found.group(0)}; refusing to write")


def ensure_packages(run: HostRun, step: Step, packages: list[str], update: bool = False) -> bool:
    """apt-get install what is missing (one state read); True if something was installed."""
    found = run.probe({"dpkg": "dpkg-query -W -f='${Package} ${db:Status-Status}\\n' " + " ".join(packages)})
    installed = {line.split()[0] for line in found["dpkg"][1].splitlines() if line.endswith(" installed")}
    missing = [p for p in packages if p not in installed]
    if not missing:
        return False
    step.changed(f"{'would install' if run.dry_run else 'installed'} {' '.join(missing)}")
    if not run.dry_run:
        run.root(apt_install_script(missing, update))
    return True


APT_UPDATE_STAMP = "/var/lib/dd-runbook/apt-update-stamp"
# Lists fetched and verified stay valid when a keyring changes (a package such as datadog-signing-keys
# updates its own): only a new or changed source needs them fetched again.
APT_SOURCES = "/etc/apt/sources.list /etc/apt/sources.list.d"


def apt_install_script(packages: list[str], update: bool) -> str:
    """apt-get install, refreshing the package lists only when they are missing or older than an apt source
    (one the run just wrote, say), or when the install fails on lists gone stale.

    It waits for a package run still going (a cut run's, or unattended-upgrades') and finishes one a cut left
    half done (dpkg's journal in /var/lib/dpkg/updates) before trying again. ``update``: a failed refresh is
    an error (the run needs a repository it just added) rather than a reason to try the lists it has.
    """
    names = " ".join(shlex.quote(p) for p in packages)
    return (
        "export DEBIAN_FRONTEND=noninteractive\n"
        f"apt_get() {{ apt-get -q -o DPkg::Lock::Timeout={APT_LOCK_WAIT} \"$@\"; }}\n"
        # The reference is our stamp or the newest list: an update that only "Hit"s leaves the lists' dates.
        "lists_stale() {\n"
        f"  ref=$(ls -t {APT_UPDATE_STAMP} /var/lib/apt/lists/*_Packages* 2>/dev/null | head -n 1)\n"
        "  [ -z \"$ref\" ] && return 0\n"
        f"  [ -n \"$(find {APT_SOURCES} -newer \"$ref\" 2>/dev/null | head -n 1)\" ]\n"
        "}\n"
        f"refresh() {{ apt_get update >/dev/null && mkdir -p {posixpath.dirname(APT_UPDATE_STAMP)} "
        f"&& touch {APT_UPDATE_STAMP}; }}\n"
        "refreshed=no\n"
        "if lists_stale; then\n"
        + ("  refresh || exit 1\n" if update else "  refresh || true\n")
        + "  refreshed=yes\n"
        "fi\n"
        f"install_missing() {{ apt_get install -y -o Dpkg::Options::=--force-confold {names} >/dev/null; }}\n"
        "if ! install_missing; then\n"
        "  if [ -n \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ]; then\n"
        "    echo 'dpkg was interrupted (a cut run): dpkg --configure -a' >&2\n"
        "    dpkg --configure -a >/dev/null && install_missing\n"
        "  elif [ $refreshed = no ]; then\n"
        "    refresh && install_missing\n"
        "  else\n"
        "    exit 1\n"
        "  fi\n"
        "fi\n"
    )
