"""One writing run at a time per checkout and Datadog organization.

`./run apply`, the single-object tasks (timeboard, monitor, downtimes, apm-dashboard) and `./run destroy`
hold an exclusive lock while they run: the file `.runbook/locks/api-<hash>.lock` in the checkout, where
the hash is of the API's address and the API key (the key itself is in no file name and no file). The
holder writes its PID, start time and task into the file. A second run that finds the lock held says once
which run holds it, waits up to `api.lock_wait` seconds, then plans afresh: what the first run created,
it finds, and leaves alone.

The lock is `fcntl.flock`: the kernel releases it when its holder ends, however it ends, so a run killed
with SIGKILL leaves its file behind but never a lock that blocks. A run that ends normally removes the
file. A lock cannot span two machines: runs from two checkouts are kept apart by the look that follows
each create (recipes/api/sync.py, `settle`).

Dry runs and `plan` only read, and take no lock.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from recipes.errors import Failed

FOLDER = Path(__file__).resolve().parents[2] / ".runbook" / "locks"
POLL = 0.05  # seconds between two tries of a held lock


@dataclass(frozen=True)
class Holder:
    """The run holding a lock, as it wrote itself into the file."""

    pid: int
    started: str
    task: str

    def __str__(self) -> str:
        return f"PID {self.pid}, started {self.started}, {self.task}"


class StillHeld(Failed):
    """The lock was still held when the wait was over; `holder` is who held it (None: not yet known)."""

    def __init__(self, holder: Holder | None, waited: float):
        super().__init__(f"held by {holder or 'another run'} after {waited:g} s")
        self.holder = holder
        self.waited = waited


def path_for(where: str, api_key: str, folder: Path = FOLDER) -> Path:
    """The lock file of one organization: a hash of the API's address and the API key names it."""
    digest = hashlib.sha256(f"{where}\n{api_key}".encode()).hexdigest()[:16]
    return folder / f"api-{digest}.lock"


@contextmanager
def held(path: Path, task: str, wait: float, on_wait=None):
    """Hold the lock at `path` for the body. If another run holds it, `on_wait(holder, wait)` is called
    once, and the lock is tried again until `wait` seconds are up (then StillHeld). `task` is what the
    holder is doing, as a command line (`./run apply`)."""
    fd = acquire(path, wait, on_wait)
    try:
        os.ftruncate(fd, 0)
        record = {"pid": os.getpid(), "started": datetime.now().astimezone().isoformat(sep=" ", timespec="seconds"),
                  "task": task}
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        yield
    finally:
        release(path, fd)


def acquire(path: Path, wait: float, on_wait=None) -> int:
    """An open descriptor of the lock file at `path`, locked by this process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline, told, holder = time.monotonic() + wait, False, None
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            holder = running(read_holder(fd)) or holder
            os.close(fd)
            if holder and not told and on_wait:
                on_wait(holder, wait)
                told = True
            if time.monotonic() >= deadline:
                raise StillHeld(holder, wait) from None
            time.sleep(POLL)
            continue
        if same_file(fd, path):
            return fd
        os.close(fd)  # locked a file its holder removed as it ended: take the one now at `path`


def release(path: Path, fd: int) -> None:
    """Remove the file while still holding it, then let go (a run waiting on the removed file sees it is
    not the one at `path` any more, and opens the new one)."""
    try:
        if same_file(fd, path):
            path.unlink()
    finally:
        os.close(fd)


def same_file(fd: int, path: Path) -> bool:
    try:
        there = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def read_holder(fd: int) -> Holder | None:
    """Who holds the lock, from its file (None while the holder has not written itself in yet)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
        return Holder(int(data["pid"]), str(data["started"]), str(data["task"]))
    except (ValueError, TypeError, KeyError):
        return None


def running(holder: Holder | None) -> Holder | None:
    """The holder, if its process is still there (a file left by a killed run is about to be rewritten)."""
    if holder is None:
        return None
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # another user's process: it is there
    return holder


def holder_of(path: Path) -> Holder | None:
    """Who wrote itself into the lock file at `path` last (it may have ended since), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return read_holder(fd)
    finally:
        os.close(fd)
