"""Local helper processes (the test agent, the traced app): start, wait for the port, stop by PID."""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


class ProcessFailed(RuntimeError):
    """A helper process exited or never opened its port; the message ends with its log's tail."""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just reported free on host (another process could still take it; rare)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def venv_tool(name: str) -> str:
    """The console script installed beside this interpreter (the project's venv)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise ProcessFailed(f"{name} not found beside {sys.executable}; run `uv sync` first")
    return str(path)


def start(name: str, argv: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> Proc:
    """Start argv in its own session (so Ctrl-C reaches us, and we stop it), output to log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
    return Proc(name, popen, log)


def wait_port(proc: Proc, host: str, port: int, timeout: float = 30.0) -> None:
    """Block until host:port accepts a connection; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise ProcessFailed(f"{proc.name} exited with code {proc.popen.returncode}:\n{proc.tail()}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise ProcessFailed(f"{proc.name} did not listen on {host}:{port} within {timeout:.0f} s:\n{proc.tail()}")


def stop(proc: Proc, timeout: float = 10.0) -> None:
    """SIGTERM the process we started (gunicorn stops its own workers), SIGKILL its group if it lingers."""
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        # The group id is our child's PID (start_new_session): only processes it spawned are in it.
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.popen.poll() is None:
        proc.popen.wait(timeout)
