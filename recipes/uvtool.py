"""Find the uv that runs this project, for the places that start uv themselves (the check's project, uvx).

``./run`` may have installed uv into ``~/.local/bin``, which is often not on PATH, so a bare ``uv`` is not
enough. uv puts its own path in ``UV`` for every process it runs, and ``./run`` exports ``UV`` too: that
one comes first, then PATH, then the places ``./run`` installs to.
"""

from __future__ import annotations

import os
import shutil
import site
from pathlib import Path

from recipes.errors import Failed


class UvNotFound(Failed):
    """No uv executable could be found."""


def _candidates() -> list[str]:
    found = [os.environ.get("UV", ""), shutil.which("uv") or ""]
    found.append(str(Path.home() / ".local/bin/uv"))
    found.append(str(Path(site.getuserbase()) / "bin/uv"))
    return [each for each in found if each]


def uv_path() -> str:
    """The path of the uv executable: $UV, then PATH, then where ./run installs it."""
    for candidate in _candidates():
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise UvNotFound("uv not found ($UV, PATH, ~/.local/bin): run the task through ./run, which installs it")


def uv_command(*args: str) -> list[str]:
    """``uv ARGS...`` as an argument list, with the uv found by ``uv_path``."""
    return [uv_path(), *args]


def uvx_command(*args: str) -> list[str]:
    """``uvx ARGS...`` as an argument list (``uvx`` is ``uv tool run``), with the uv found by ``uv_path``."""
    return [uv_path(), "tool", "run", *args]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a uv child that uses its own project: without our VIRTUAL_ENV, with UV set."""
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["UV"] = uv_path()
    env.update(extra)
    return env
