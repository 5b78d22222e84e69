"""One SSH session on a host: a bash script of named sections sent on stdin, each section's output and exit code
read back apart.

A section is a state read, a queued write, or a command. The run (hostrun.py) packs into one session the
writes it has queued, the command it must run now and the state reads that follow, so a run costs a handful
of round trips instead of one per check. A root script may end its output with one line of the one-line
failure protocol below: the run shows that line as the step's failure.
"""

from __future__ import annotations

import base64
import re
import select
import shlex
import time
from dataclasses import dataclass

from recipes.errors import Failed
from recipes.lazy import lazy

secrets = lazy("secrets")

# Shell helpers shared by every root script. `svc`: `service` exists with and without systemd; fall back to
# init.d. `running`: whether a service runs, asked the cheap way: `systemctl is-active` under systemd (where
# `service X status` is `systemctl status`, which also reads the journal), else the init script's own status.
SHELL_PRELUDE = """set -u
svc() { if command -v service >/dev/null 2>&1; then service "$@"; else "/etc/init.d/$1" "${@:2}"; fi; }
running() { if [ -d /run/systemd/system ]; then systemctl is-active --quiet "$1"; \
elif [ -x "/etc/init.d/$1" ]; then "/etc/init.d/$1" status; else return 4; fi; }
"""
SECTION_LINE_RE = re.compile(r"^@@(\S+) (\S*) (\d+)$")
BATCH_LINE_RE = re.compile(r"^@@\*(\S+) (\S+) (\S+) (\S*)$")  # reads run at once: names, exit codes, sizes, outputs
# What a root script says back: lines a step shows as notes, and the one line that is its final failure.
NOTE_PREFIX = "runbook-note: "
FAILURE_PREFIX = "runbook-error: "


class SessionFailed(Failed):
    """The remote side did not answer as a session should (a timeout, no exit status)."""


@dataclass(frozen=True)
class Section:
    """A named part of a session script; ``stop`` ends the session when it fails (a write, a command)."""

    name: str
    command: str
    stop: bool = False


@dataclass
class Outcome:
    exited: int
    stdout: str
    stderr: str


def session_script(sections: list[Section]) -> str:
    """One bash script that runs every section in order and prints ``@@name <base64 output> <exit code>`` for
    each section that runs alone, and one ``@@*`` line for each batch of reads (``_concurrent``). A failed
    ``stop`` section ends the script: what follows it does not run.

    State reads change nothing, so consecutive reads run at once, each in its own subshell with its output in
    a file of its own, and are printed together once all have ended: where the host has CPUs to spare, a session
    of reads lasts about as long as its slowest read (a server's status script). A write or a
    command (a ``stop`` section) runs alone, after what came before it and before what comes after it."""
    parts = [SHELL_PRELUDE]
    batch: list[Section] = []

    def flush() -> None:
        if len(batch) == 1:
            parts.append(_sequential(batch[0]))
        elif batch:
            parts.append(_concurrent(batch))
        batch.clear()

    for section in sections:
        if not re.fullmatch(r"[\w.-]+", section.name):
            raise SessionFailed(f"bad section name {section.name!r}")  # a name the engine made
        if section.stop:
            flush()
            parts.append(_sequential(section))
            parts.append('[ "$rc" = 0 ] || exit 0\n')
        else:
            batch.append(section)
    flush()
    return "".join(parts)


def _sequential(section: Section) -> str:
    return (f"printf '\\n@@%s ' {shlex.quote(section.name)}\n"
            f"( {section.command}\n) </dev/null 2>&1 | base64 -w0\n"
            "rc=${PIPESTATUS[0]}; printf ' %s\\n' \"$rc\"\n")


def _concurrent(sections: list[Section]) -> str:
    """Start every read at once, each with its output in a file of its own, and wait for them all. Then print
    one line for the batch: the reads' names, exit codes and output sizes, and their outputs one after the other
    in base64. One ``stat``, one ``cat`` and one ``base64`` serve the whole batch; a ``base64`` per read costs a
    process per read, which on a 2-CPU guest was a third of a 29-read session."""
    files = [f'"$_reads/{index}"' for index in range(len(sections))]
    all_files = " ".join(files)
    names = ",".join(section.name for section in sections)
    parts = ['_reads=$(mktemp -d) || exit 1\n']
    for index, section in enumerate(sections):
        parts.append(f"( {section.command}\n) </dev/null >{files[index]} 2>&1 &\n_pid{index}=$!\n")
    parts.append("_rcs=\n")
    parts.extend(f'wait "$_pid{index}"; _rcs="$_rcs,$?"\n' for index in range(len(sections)))
    parts.append(f"_sizes=$(stat -c %s {all_files}); _sizes=${{_sizes//$'\\n'/,}}\n"
                 f"printf '\\n@@*%s %s %s %s\\n' {shlex.quote(names)} \"${{_rcs#,}}\" \"$_sizes\" "
                 f"\"$(cat {all_files} | base64 -w0)\"\n")
    parts.append('rm -rf "$_reads"\n')
    return "".join(parts)


def probe_script(probes: dict[str, str]) -> str:
    """A session of state reads only: name -> shell command."""
    return session_script([Section(name, command) for name, command in probes.items()])


def parse_sections(stdout: str) -> dict[str, tuple[int, str]]:
    """Parse the output of ``session_script``: name -> (exit code, output), for the sections that ran. A batch
    whose parts do not add up (a session cut while printing it) gives none of its reads."""
    found = {}
    for line in stdout.splitlines():
        if match := BATCH_LINE_RE.match(line):
            found.update(_batch(*match.groups()))
        elif match := SECTION_LINE_RE.match(line):
            name, encoded, code = match.groups()
            found[name] = (int(code), base64.b64decode(encoded).decode("utf-8", "replace"))
    return found


def _batch(names: str, codes: str, sizes: str, encoded: str) -> dict[str, tuple[int, str]]:
    each_name = names.split(",")
    try:
        each_code = [int(code) for code in codes.split(",")]
        each_size = [int(size) for size in sizes.split(",")]
        data = base64.b64decode(encoded, validate=True)
    except ValueError:  # binascii.Error is one
        return {}
    if not len(each_name) == len(each_code) == len(each_size) or sum(each_size) != len(data):
        return {}
    found, offset = {}, 0
    for name, code, size in zip(each_name, each_code, each_size):
        found[name] = (code, data[offset:offset + size].decode("utf-8", "replace"))
        offset += size
    return found


def heredoc(text: str) -> str:
    """Quote text for a bash here-document with a delimiter that cannot occur in it."""
    delimiter = "RUNBOOK_" + secrets.token_hex(8).upper()
    return f"<<'{delimiter}'\n{text if text.endswith(chr(10)) else text + chr(10)}{delimiter}"


class ConnectionLost(SessionFailed):
    """The SSH connection ended while a session was running (a dropped link, the host gone)."""


class Interrupted(Exception):
    """The user stopped the run (Ctrl-C, SIGTERM) while a session was running; the guest's side goes on."""


def run_script(conn, command: str, stdin_text: str, timeout: float = 1800, stop=None) -> Outcome:
    """Run ``command`` on the connection's transport with ``stdin_text`` on its stdin, in one round trip.

    Fabric's ``run(in_stream=...)`` feeds stdin one byte per 10 ms (5 s for a 500-byte script), so the
    engine opens a session channel on the same connection itself. ``stop``: an Event set when the user stops
    the run; the channel is then left (what runs on the guest goes on) and Interrupted is raised.
    """
    if not conn.is_connected:
        conn.open()
    channel = conn.transport.open_session()
    try:
        channel.exec_command(command)
        channel.sendall(stdin_text.encode())
        channel.shutdown_write()
        deadline = time.monotonic() + timeout
        out, err = read_to_eof(channel, deadline, timeout, stop)
        if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
            raise SessionFailed(f"remote command gave no exit status within {timeout:.0f} s")
        if channel.exit_status == -1:  # paramiko's value until the server sends one: the channel died first
            raise ConnectionLost("the SSH connection was lost")
        return Outcome(channel.recv_exit_status(), out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    except (EOFError, OSError) as error:
        raise ConnectionLost(f"the SSH connection was lost ({error or type(error).__name__})") from error
    finally:
        channel.close()


def read_to_eof(channel, deadline: float, timeout: float, stop=None) -> tuple[bytearray, bytearray]:
    """Read stdout and stderr until the server's EOF (or close), not just until the exit status.

    OpenSSH sends ``exit-status`` when the command exits, which can be before the last output bytes
    (a child still holding stdout, or a busy machine): stopping there loses output.
    """
    out, err = bytearray(), bytearray()
    while True:
        if stop is not None and stop.is_set():
            raise Interrupted()
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
            raise SessionFailed(f"remote command timed out after {timeout:.0f} s")
        # The channel's pipe becomes readable on stdout, stderr or EOF.
        select.select([channel], [], [], min(left, 0.2))
