"""The consoles the tasks print on: the terminal's own size on a terminal, a fixed shape everywhere else.

rich sizes a console from ``COLUMNS``, ``LINES``, ``TERM`` and the terminal, and ``TERM=dumb`` alone makes it
80 columns wide. Output that is saved (captures, CI logs, pictures) must not depend on where it ran, so when
the stream is not a terminal the console is built from constants and ignores the environment.
"""

from __future__ import annotations

import sys

from recipes.lazy import lazy

rich_console = lazy("rich.console")

PIPE_WIDTH = 160  # columns of output that goes to a file or a pipe
PIPE_HEIGHT = 50


def task_console(stderr: bool = False, min_width: int = 0, **options) -> "rich_console.Console":
    """A console for a task's output on stdout (or stderr), sized by the terminal only when there is one."""
    stream = sys.stderr if stderr else sys.stdout
    options.setdefault("highlight", False)
    if _is_terminal(stream):
        console = rich_console.Console(stderr=stderr, **options)
        if min_width and console.width < min_width:
            console = rich_console.Console(stderr=stderr, width=min_width, **options)
        return console
    return rich_console.Console(stderr=stderr, width=max(PIPE_WIDTH, min_width), height=PIPE_HEIGHT, color_system=None,
                   force_terminal=False, legacy_windows=False, _environ={}, **options)


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
