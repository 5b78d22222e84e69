"""One run at a time on a host: a lock on the guest, held by a session of the run's own SSH connection.

A run that changes the host holds ``/run/lock/dd-runbook.lock`` exclusively (``flock``) from its first
session to its end; a dry run or ``verify`` holds it shared, so it never reads a host another run is halfway
through changing. The lock's holder on the guest is a root shell that waits on the run's heartbeat: it lets
go when the run ends, when its connection closes (the runner killed, Ctrl-C, a dropped link) or when no
heartbeat came for ``STALE_AFTER`` seconds (a link that died without closing). A killed run's lock therefore
never blocks the next one for long, and a run that must wait says once which run holds the host.

Once it holds the lock, the holder also waits for a package run still going on the host (a stopped run's apt
transaction goes on to its end by itself): the run then reads a host no package work is changing. The same
session proves passwordless sudo: it replaces a separate ``sudo -n true``. And it runs the run's first session
(its state reads), sent on its stdin ahead of the heartbeats, as soon as it holds the lock: a run pays one
session and one sudo for the lock and its reads together.
"""

from __future__ import annotations

import getpass
import os
import select
import shlex
import socket
import threading
import time
from datetime import datetime

from recipes.errors import Failed
from recipes.vm.session import ConnectionLost, Interrupted, Outcome, SessionFailed

LOCK_FILE = "/run/lock/dd-runbook.lock"
HEARTBEAT_EVERY = 15  # seconds between two heartbeats the runner sends
STALE_AFTER = 45  # seconds without a heartbeat after which the guest lets go of a run's lock
FIRST_ENDED = "@@first-session-ended"  # then the first session's exit code; its sections come before it
FIRST_TIMEOUT = 1800  # seconds the first session may take (as any session: session.run_script)

# $1: what this run is (shown to a run that has to wait); $2: -x or -s; $3: seconds to wait at most.
HOLDER = f"""\
lock={LOCK_FILE}
{{ [ -d "${{lock%/*}}" ] || mkdir -p "${{lock%/*}}"; }} && exec 9<>"$lock" || exit 4
echo sudo-ok
if ! flock -n "$2" 9; then
  printf 'held %s\\n' "$(cat "$lock.owner" 2>/dev/null || echo 'another run')"
  flock -w "$3" "$2" 9 || {{ echo timeout; exit 3; }}
fi
printf '%s\\n' "$1" > "$lock.owner"
# A package run still going (a stopped run's apt transaction goes on by itself, or unattended-upgrades'):
# wait until nothing holds dpkg's locks (listed in /proc/locks by inode): one stat and one awk.
held() {{
  awk -v inodes="$(stat -c %i /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock 2>/dev/null)" '
    BEGIN {{ split(inodes, list); for (i in list) wanted[list[i]] = 1 }}
    {{ split($6, id, ":"); if (id[3] in wanted) {{ print $5; exit }} }}' /proc/locks
}}
pid=$(held)
if [ -n "$pid" ]; then
  printf 'packages %s\\n' "$(ps -o args= -p "$pid" 2>/dev/null | cut -c1-80 || echo "PID $pid")"
  waited=0
  while [ -n "$(held)" ]; do
    [ "$waited" -lt "$(( $3 * 5 ))" ] || {{ echo timeout-packages; exit 3; }}
    sleep 0.2; waited=$((waited + 1))
  done
fi
echo locked
# The run's first session: its script's length in bytes on a line, then the script (never on a command line).
# It runs in a subshell of this one (no new bash to start), its stdin empty (the heartbeats are this shell's).
IFS= read -r size || exit 0
if [ "$size" -gt 0 ]; then
  LC_ALL=C IFS= read -r -d '' -N "$size" first
  ( eval "$first" ) </dev/null
  printf '\n{FIRST_ENDED} %s\n' "$?"
fi
while read -r -t {STALE_AFTER} _; do :; done
"""


TIMEOUTS = {
    "timeout": "another run held the host for more than {wait:.0f} s (ssh.lock_wait); nothing was changed",
    "timeout-packages": "a package run on the host went on for more than {wait:.0f} s (ssh.lock_wait); nothing was changed",
}


class LockRefused(Failed):
    """The host could not be locked for this run: sudo refused, or another run held it too long."""


def describe_run(task: str, dry_run: bool) -> str:
    """What a run that must wait is told about this one."""
    started = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    kind = " --dry-run" if dry_run else ""
    return f"`./run {task}{kind}` (PID {os.getpid()} of {getpass.getuser()} on {socket.gethostname()}, started {started})"


class GuestLock:
    """The lock of one host for one run; ``acquire()`` once the connection is open, ``release()`` at the end."""

    def __init__(self, conn, about: str, exclusive: bool, wait: float, say, stop: threading.Event):
        self.conn = conn
        self.about = about
        self.exclusive = exclusive
        self.wait = wait
        self.say = say
        self.stop = stop
        self.channel = None
        self.waited = 0.0
        self._quiet = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self, first_session: str = "") -> Outcome:
        """Take the lock (waiting for another run if one holds it), keep it alive with heartbeats, and run
        ``first_session`` (a session script, see session.py) under it as root: its outcome."""
        command = "sudo -n bash -c " + " ".join(
            shlex.quote(arg) for arg in (HOLDER, "dd-runbook-lock", self.about, "-x" if self.exclusive else "-s",
                                         str(int(self.wait))))
        self.channel = self.conn.transport.open_session()
        self.channel.exec_command(command)
        script = first_session.encode()
        self.channel.sendall(f"{len(script)}\n".encode() + script)
        started = time.monotonic()
        lines = LineReader(self.channel, self.stop)
        first = lines.next(self.wait + 60)
        if first != "sudo-ok":
            raise LockRefused(self._refusal(first, lines))
        answer = lines.next(self.wait + 60)
        if answer.startswith("held "):
            self.say(f"waiting: another run holds this host, {answer[5:]}; waiting up to {self.wait:.0f} s")
            answer = lines.next(self.wait + 60)
        if answer.startswith("packages "):
            self.say(f"waiting: a package run is still going on this host ({answer[9:]}); waiting for its end")
            answer = lines.next(self.wait + 60)
        if answer != "locked":
            raise LockRefused(TIMEOUTS[answer].format(wait=self.wait) if answer in TIMEOUTS
                              else f"the host's lock session ended unexpectedly ({answer or 'no answer'})")
        self.waited = time.monotonic() - started
        self._beat = threading.Thread(target=self._heartbeat, name="guest-lock-heartbeat", daemon=True)
        self._beat.start()
        return self._first_outcome(lines) if script else Outcome(0, "", "")

    def _first_outcome(self, lines: LineReader) -> Outcome:
        """The first session's output, up to the holder's line that ends it with the session's exit code."""
        output = []
        deadline = time.monotonic() + FIRST_TIMEOUT
        while True:
            try:
                line = lines.next(max(0.0, deadline - time.monotonic()))
            except (EOFError, OSError) as error:
                raise ConnectionLost(f"the SSH connection was lost ({error or type(error).__name__})") from error
            if line.startswith(FIRST_ENDED + " "):
                return Outcome(int(line.split()[1]), "\n".join(output), lines.stderr_text())
            if not line and (self.channel.eof_received or self.channel.closed or time.monotonic() > deadline):
                raise SessionFailed(f"the host's lock session ended during its reads ({lines.stderr_text()[-200:]})")
            output.append(line)

    def _refusal(self, line: str, lines: LineReader) -> str:
        self.channel.status_event.wait(5)  # sudo's complaint may come after its end of output
        errors = lines.stderr_text().strip()
        if "password" in errors or "sudo" in errors:
            return f"user {self.conn.user} cannot run sudo without a password ({errors[:120]}); nothing was changed"
        return f"could not start a root session ({(errors or line or 'no answer')[:160]}); nothing was changed"

    def _heartbeat(self) -> None:
        while not self._quiet.wait(HEARTBEAT_EVERY):
            try:
                self.channel.sendall(b"\n")
            except Exception:  # noqa: BLE001 - the link is gone (OSError, EOFError, paramiko's): the guest lets go by itself
                return

    def release(self) -> None:
        """Let go of the lock: the guest's holder reads end-of-input and exits."""
        self._quiet.set()
        if self.channel is not None:
            try:
                self.channel.shutdown_write()
            except Exception:  # noqa: BLE001 - already closed with its connection
                pass
            self.channel.close()


class LineReader:
    """Lines of a channel's stdout as they come, checking between reads whether the user stopped the run."""

    def __init__(self, channel, stop: threading.Event):
        self.channel = channel
        self.stop = stop
        self.buffer = b""
        self.stderr = b""

    def next(self, timeout: float) -> str:
        """The next line ('' at end of output); raises Interrupted when the user stops the run."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if self.stop.is_set():
                raise Interrupted()
            while self.channel.recv_stderr_ready():
                self.stderr += self.channel.recv_stderr(4096)
            if self.channel.recv_ready():
                chunk = self.channel.recv(4096)
                if chunk:
                    self.buffer += chunk
                    continue
            if self.channel.eof_received or self.channel.closed:
                if not self.channel.recv_ready():
                    line, self.buffer = self.buffer.decode(errors="replace").strip(), b""
                    return line
                continue
            if time.monotonic() > deadline:
                return ""
            select.select([self.channel], [], [], 0.2)
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace").strip()

    def stderr_text(self) -> str:
        while self.channel.recv_stderr_ready():
            self.stderr += self.channel.recv_stderr(4096)
        return self.stderr.decode(errors="replace")
