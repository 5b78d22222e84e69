"""Processes this package started, told apart from a later process that reused the PID by their start time."""

import os
import signal
import time
from pathlib import Path


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused PID apart), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int | None, started: str | None) -> bool:
    return pid is not None and started is not None and start_time(pid) == started


def wait_gone(pid: int, started: str | None, timeout: float = 10.0) -> None:
    """SIGKILL is asynchronous: a namespace's PID 1 takes its whole namespace down first. Wait until it is gone."""
    deadline = time.monotonic() + timeout
    while alive(pid, started) and time.monotonic() < deadline:
        time.sleep(0.05)


def kill_and_wait(processes: list[tuple[int | None, str | None]], timeout: float = 10.0) -> None:
    """SIGKILL each (pid, start time) that is still that process, then wait until all are gone (each at most
    ``timeout`` seconds)."""
    living = [(pid, started) for pid, started in processes if alive(pid, started)]
    for pid, _ in living:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid, started in living:
        wait_gone(pid, started, timeout)
