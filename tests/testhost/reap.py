"""Clean up hosts whose owning process died without stopping them (SIGKILL, OOM killer).

Each started host records in its work dir which processes it started; a later start_hosts() ends
those processes by PID, and only if the PID still belongs to the same process (same start time).
"""

import json
import os
import shutil
import signal
import time
from pathlib import Path

from . import netns
from .locking import file_lock

STATE_FILE = "state.json"


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused PID apart), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def record(workdir: Path, index: int, pids: dict[str, int]) -> None:
    owned = {name: [pid, start_time(pid)] for name, pid in {"owner": os.getpid(), **pids}.items()}
    (workdir / STATE_FILE).write_text(json.dumps({"index": index, "pids": owned}))


def _alive(pid: int, started: str | None) -> bool:
    return started is not None and start_time(pid) == started


def wait_gone(pid: int, started: str | None, timeout: float = 10.0) -> None:
    """SIGKILL is asynchronous: a namespace's PID 1 takes its whole namespace down first. Wait until it is gone."""
    deadline = time.monotonic() + timeout
    while _alive(pid, started) and time.monotonic() < deadline:
        time.sleep(0.05)


def reap_orphans(roots: list[Path]) -> list[str]:
    """Stop hosts (under these work roots) whose owner process is gone; returns their names."""
    reaped = []
    with file_lock():
        for state_file in sorted(p for root in roots for p in root.glob(f"rbhost*/{STATE_FILE}")):
            try:
                state = json.loads(state_file.read_text())
            except (OSError, ValueError):
                continue  # stopped meanwhile, or still being written
            pids = state["pids"]
            if _alive(*pids.pop("owner")):
                continue
            killed = [(pid, started) for pid, started in pids.values() if _alive(pid, started)]
            for pid, _ in killed:
                os.kill(pid, signal.SIGKILL)
            for pid, started in killed:
                wait_gone(pid, started)
            netns.unwire(state["index"])
            shutil.rmtree(state_file.parent, ignore_errors=True)
            reaped.append(state_file.parent.name)
    return reaped
