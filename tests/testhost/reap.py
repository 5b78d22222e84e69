"""Clean up hosts whose owning process died without stopping them (SIGKILL, OOM killer).

Each started host records in its work dir which processes it started; a later start_hosts() ends
those processes by PID, and only if the PID still belongs to the same process (same start time).
The same release_resources() then frees what a stopped host holds, for stop() and the reaper alike.
"""

import json
import os
import shutil
from pathlib import Path

from . import boot, netns
from .rootfs import unmount_copy
from .locking import file_lock
from .processes import alive, kill_and_wait, start_time

STATE_FILE = "state.json"


def record(workdir: Path, index: int, pids: dict[str, int]) -> None:
    owned = {name: [pid, start_time(pid)] for name, pid in {"owner": os.getpid(), **pids}.items()}
    (workdir / STATE_FILE).write_text(json.dumps({"index": index, "pids": owned}))


def release_resources(index: int, workdir: Path) -> None:
    """Free what a host holds once its processes are gone: nspawn leftovers, cgroups, its overlay and work dir,
    and last its network namespace, which reserves the host's name for the next host."""
    boot.remove_nspawn_leftovers(netns.ns_name(index), workdir / "rootfs")  # names its lock by the overlay's inode
    unmount_copy(workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    netns.unwire(index)


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
            if alive(*pids.pop("owner")):
                continue
            kill_and_wait([tuple(pid_started) for pid_started in pids.values()])
            release_resources(state["index"], state_file.parent)
            reaped.append(state_file.parent.name)
    return reaped
