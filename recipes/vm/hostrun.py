"""One task's run on one host: its steps and their results (ok/changed/failed), what it knows of the host, the
changes it has queued, its handlers.

A ``HostRun`` wraps one open Fabric connection and keeps the round trips few (see session.py):

- the state reads (reads.py) every step of the plan will make are declared with the plan and read in the run's
  first session; a step asks ``run.read(read)`` and is answered from there;
- file writes are queued (the run then knows the file as written) and travel with the next session;
- a command that changes the host (apt, a restart) runs at once, after the queued writes, followed in the
  same session by a fresh read of whatever declared state it may have changed.

A no-change re-run is thus one session for the reads (the one that locks the host), a first run one per package
transaction, restart and query that depends on a change before it. Handlers ("restart the Agent") run once
at the end, only if needed, and never in a dry run.
"""

from __future__ import annotations

import shlex
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from recipes.errors import Failed
from recipes.lazy import lazy
from recipes.vm.hostfiles import FileState, file_read, unified_diff, write_atomically
from recipes.vm.reads import EVERYTHING, Answer, Read
from recipes.vm.session import (FAILURE_PREFIX, ConnectionLost, Interrupted, Outcome, Section, SessionFailed,
                                parse_sections, run_script, session_script)

if TYPE_CHECKING:
    from rich.console import Console

rich_markup = lazy("rich.markup")

OK, CHANGED, FAILED, SKIPPED, STOPPED = "ok", "changed", "failed", "skipped", "stopped"
STYLES = {OK: "green", CHANGED: "yellow", FAILED: "bold red", SKIPPED: "dim", STOPPED: "bold yellow"}


class StepFailed(Failed):
    """A step could not do its job; the message names what is wrong (never a secret)."""


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


@dataclass
class Queued:
    """A change waiting for the next session: what it does, for a message, and the step that asked for it."""

    what: str
    script: str
    step: str


class HostRun:
    """The state of one host during one task run: its connection, what is known of the host, the changes
    queued for it, its step results and pending handlers."""

    def __init__(self, conn, label: str, console: Console, dry_run: bool = False, lock: threading.Lock | None = None,
                 stop: threading.Event | None = None):
        self.conn = conn
        # Runs the first session's script in the session that locks the host (guestlock.py), once; set by the
        # runner (hosts.py), None where nothing locks the host.
        self.first_session: Callable[[str], Outcome] | None = None
        self.label = label
        self.console = console
        self.dry_run = dry_run
        self.results: list[StepResult] = []
        self.handlers: dict[str, str] = {}  # name -> root script, in the order first notified
        self.handed: dict[str, object] = {}  # what a step hands to the steps after it (the MySQL user's password)
        self.staged: dict[str, FileState] = {}  # files as this run wrote them (or, in a dry run, would have)
        self.known: dict[str, Answer] = {}  # a read's command -> its answer, until a change voids it
        self.wanted: list[str] = []  # the commands of the reads the plan's steps will make
        self.queued: list[Queued] = []
        self.packages = None  # the plan's package work (packages.PackageWork), made by its first use
        self.sessions = 0  # SSH sessions this run opened on the host
        self.total_steps = 0  # planned steps, for the [n/N] progress counter (handlers are not counted)
        self.step_index = 0
        self.current = ""  # the step running now, with its [n/N] counter
        self.in_flight: list[str] = []  # what the session running now does on the host (it goes on if we stop)
        self.stop = stop or threading.Event()  # set when the user stops the run (Ctrl-C, SIGTERM)
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
    def expect(self, reads: Iterable[Read]) -> None:
        """Declare reads that steps will make, to be read ahead in as few sessions."""
        for read in reads:
            if read.command not in self.wanted:
                self.wanted.append(read.command)

    def read_ahead(self) -> None:
        """Read every declared state not known yet, in one session (with the queued writes first); the run's
        first session, even with nothing to read, is the one that locks the host."""
        self._session(reads=[c for c in self.wanted if c not in self.known], always=self.first_session is not None)

    def read(self, read: Read):
        """The value of one read: from what is known, else read in one session with every declared read not known."""
        return self.read_all([read])[0]

    def read_all(self, reads: Iterable[Read]) -> list:
        """The values of several reads, the unknown ones read in one session with every declared read not known.

        A read that depends on a file this run queued is not followed by the run: the change that writes the file
        is what such a read must come after (a root script)."""
        reads = list(reads)
        unknown = [read.command for read in reads if read.command not in self.known]
        if unknown:
            self._session(reads=list(dict.fromkeys(unknown + [c for c in self.wanted if c not in self.known])))
        return [read.parse(self.known[read.command]) for read in reads]

    def files(self, paths: list[str]) -> dict[str, FileState]:
        """Files (content, owner, group, mode) as this run left them, else read (in one session)."""
        unstaged = [path for path in paths if path not in self.staged]
        found = dict(zip(unstaged, self.read_all(file_read(path) for path in unstaged)))
        return {path: self.staged.get(path) or found[path] for path in paths}

    def file(self, path: str) -> FileState:
        """One file, as this run left it, else read."""
        return self.files([path])[path]

    def root(self, script: str, warn: bool = False, changes=EVERYTHING, reread: bool = True, what: str = "") -> Outcome:
        """Run a bash script as root now, after the queued writes, in one session (the script travels on stdin:
        nothing in it shows on a command line).

        ``changes``: the reads it voids (default: every one, but the files this run wrote). ``reread``:
        read every declared state it voided in the same session, for the steps still to come. ``what``: the
        command in words, for a run stopped while it runs ("the apt transaction installing acl")."""
        self._forget(changes)
        reads = [c for c in self.wanted if c not in self.known] if reread else []
        outcome = self._session(command=script, reads=reads, what=what or f"a root command of '{self.current}'")
        if outcome.exited != 0 and not warn:
            lines = outcome.stdout.strip().splitlines()
            named = [line.removeprefix(FAILURE_PREFIX) for line in lines if line.startswith(FAILURE_PREFIX)]
            if named:  # the script named the failure itself (the package script does)
                raise StepFailed(named[-1])
            raise StepFailed(f"remote command failed (exit {outcome.exited}): {' | '.join(lines[-3:])}")
        return outcome

    def queue(self, what: str, script: str, changes: Iterable[Read] = ()) -> None:
        """A change that nothing needs before the next session: it goes with that session, or at the end.
        ``changes``: the reads it voids."""
        self._forget(changes)
        self.queued.append(Queued(what, script, self.current))

    def _forget(self, changes) -> None:
        if changes == EVERYTHING:
            self.known.clear()
            return
        for read in changes:
            self.known.pop(read.command, None)

    def done_with(self, reads: Iterable[Read]) -> None:
        """These reads will not be asked for again: later sessions leave them out."""
        done = {read.command for read in reads}
        self.wanted = [command for command in self.wanted if command not in done]

    def _session(self, command: str | None = None, reads=(), what: str = "", always: bool = False) -> Outcome:
        """One SSH session: the queued changes, then ``command``, then ``reads``; their answers are kept.
        With nothing to do, no session, unless ``always``."""
        if self.dry_run and (command is not None or self.queued):
            raise StepFailed("a dry run tried to change the host")  # a step forgot to check run.dry_run
        sections = [Section(f"q{i}", queued.script, stop=True) for i, queued in enumerate(self.queued)]
        if command is not None:
            sections.append(Section("command", command, stop=True))
        sections += [Section(f"r{i}", read) for i, read in enumerate(reads)]
        if not sections and not always:
            return Outcome(0, "", "")
        self.sessions += 1
        self.in_flight = [queued.what for queued in self.queued] + ([what] if command is not None else [])
        first, self.first_session = self.first_session, None
        try:
            if first is not None:
                result = first(session_script(sections))
            else:
                result = run_script(self.conn, "sudo -n bash -s", session_script(sections), stop=self.stop)
        except ConnectionLost as error:
            going_on = (f"; on the host, {' and '.join(self.in_flight)} may still finish (the next run waits "
                        "for it)") if self.in_flight else ""
            raise StepFailed(f"{error}{going_on}") from error
        except SessionFailed as error:
            raise StepFailed(str(error)) from error
        self.in_flight = []
        found = parse_sections(result.stdout)
        queued, self.queued = self.queued, []
        for i, each in enumerate(queued):
            code, output = found.get(f"q{i}", (-1, result.stderr))
            if code != 0:
                tail = " | ".join(output.strip().splitlines()[-3:])
                raise StepFailed(f"{each.what} (for '{each.step}') failed (exit {code}): {tail}")
        outcome = Outcome(*found.get("command", (0, "")), "")
        if command is not None and "command" not in found:
            raise StepFailed(f"remote command did not run: {result.stderr.strip()[-200:]}")
        if outcome.exited == 0:
            missing = [read for i, read in enumerate(reads) if f"r{i}" not in found]
            if missing:
                raise StepFailed(f"state check did not complete ({len(missing)} of {len(reads)}): "
                                 f"{result.stderr.strip()[-200:]}")
            self.known.update({read: Answer(*found[f"r{i}"]) for i, read in enumerate(reads)})
        return outcome

    # --- writing ------------------------------------------------------------------------------
    def put_file(self, step: Step, current: FileState, content: str, owner: str, group: str, mode: str) -> bool:
        """Make the file hold ``content`` with owner/group/mode; show a diff in a dry run. True if it changed.

        The write is queued: it reaches the host with the next session, and the run knows the file as written."""
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
        self.staged[current.path] = FileState(current.path, True, content, owner, group, mode)
        if self.dry_run:
            return True
        q = shlex.quote(current.path)
        if same_content:
            self.queue(f"chown/chmod {current.path}", f"chown {owner}:{group} {q} && chmod {mode} {q}")
        else:
            self.queue(f"write {current.path}", write_atomically(current.path, content, owner, group, mode))
        return True

    def remove_file(self, step: Step, path: str, why: str) -> None:
        step.changed(f"{'would remove' if self.dry_run else 'removed'} {path} ({why})")
        self.staged[path] = FileState(path)
        if not self.dry_run:
            self.queue(f"remove {path}", f"rm -f {shlex.quote(path)}")

    # --- handlers -------------------------------------------------------------------------------
    def notify(self, name: str, script: str) -> None:
        """Ask for a handler (a service restart) to run once, later."""
        self.handlers.setdefault(name, script)

    def flush(self, name: str | None = None) -> None:
        """Run pending handlers now (all, or one by name); a dry run only says what it would do.

        Handlers flushed by name run in the middle of a run: the states they change are read again."""
        for each in [n for n in list(self.handlers) if name is None or n == name]:
            script = self.handlers.pop(each)
            with self.step(each, handler=True) as step:
                if self.dry_run:
                    step.changed("would run (dry run)")
                else:
                    self.root(script, reread=name is not None, what=each)
                    step.changed("ran once")

    def finish(self) -> None:
        """The end of the run: every handler, then whatever writes are still queued."""
        self.flush()
        if self.queued:
            self._session()

    # --- steps ----------------------------------------------------------------------------------
    @contextmanager
    def step(self, name: str, handler: bool = False):
        """Run a step's body; record and print ok/changed/failed. A failure stops this host's run."""
        if self.stop.is_set():
            raise Interrupted()
        step = Step(name)
        if not handler:
            self.step_index += 1
        counter = f"[{self.step_index}/{self.total_steps}] " if self.total_steps and not handler else ""
        self.current = f"{counter}{name}"
        started = time.monotonic()
        try:
            yield step
        except Interrupted:
            self._record(StepResult(name, STOPPED, "stopped by the user", time.monotonic() - started), counter)
            raise
        except Exception as error:  # noqa: BLE001 - every failure is reported per host, then re-raised
            message = str(error) if isinstance(error, StepFailed) else f"{type(error).__name__}: {error}"
            self._record(StepResult(name, FAILED, message, time.monotonic() - started), counter)
            raise StepFailed(f"{name}: {message}") from error
        self._record(StepResult(name, step.status, "; ".join(step.notes), time.monotonic() - started), counter)

    def _record(self, result: StepResult, counter: str = "") -> None:
        self.results.append(result)
        if result.status == STOPPED:
            return  # the task says once, for every host, where each stopped
        status = result.status
        if self.dry_run and status == CHANGED:
            status_text = "changed (dry run)"
        else:
            status_text = status
        detail = f" [dim]{rich_markup.escape(result.detail)}[/]" if result.detail else ""
        self.say(f"{counter}[{STYLES[result.status]}]{status_text:<8}[/] {rich_markup.escape(result.name)}{detail}")

    def counts(self) -> dict[str, int]:
        tally = {OK: 0, CHANGED: 0, FAILED: 0}  # and STOPPED, for a run the user stopped
        for result in self.results:
            tally[result.status] = tally.get(result.status, 0) + 1
        return tally
