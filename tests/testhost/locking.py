"""One cross-process lock for allocating netns indexes and service addresses."""

import fcntl
from contextlib import contextmanager
from pathlib import Path

from .settings import LOCK_FILE


@contextmanager
def file_lock(path: Path = LOCK_FILE):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
