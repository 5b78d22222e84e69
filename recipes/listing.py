"""How a user finds the tasks: by section of the exercise, then the maintainers', in ``./run`` alone (the
``tasks`` task) and in ``./run --list``.

tasks.py says the grouping once (``SECTIONS``, ``MAINTAINER_SECTIONS``). invoke's own ``--list`` sorts every
task in one alphabetical column and offers no hook, so ``install()`` wraps ``Program.list_flat`` for this
runbook's namespace, as ``recipes/boundary.py`` wraps invoke where it checks input. Plain text only: listing
imports nothing but invoke and the task modules (tests/test_startup.py).
"""

from __future__ import annotations

import functools
import shutil
import textwrap

from invoke.program import Program

from recipes.taskdef import task

HINT = "Run one with ./run TASK; ./run TASK -h shows its options (./run is uv run invoke)."


def grouped(namespace) -> str:
    """The tasks of a tasks.py module, by section, each with the first line of its help, fitted to the terminal."""
    width = max(60, shutil.get_terminal_size((100, 24)).columns)
    lines = []
    for heading, sections in (("The exercise", namespace.SECTIONS), ("For maintainers", namespace.MAINTAINER_SECTIONS)):
        lines.append(heading)
        for section, names in sections.items():
            lines.append(f"  {section}")
            for name in names:
                summary = textwrap.dedent(namespace.ns[name].__doc__ or "").strip().splitlines()[0]
                lines += textwrap.wrap(summary, width, initial_indent=f"    {name:<16} ", subsequent_indent=" " * 21)
    return "\n".join([*lines, "", HINT])


@task(name="tasks")
def list_tasks(c):
    """List the tasks by section of the exercise, then the maintainers' (what ./run alone prints)."""
    import tasks as namespace

    print(grouped(namespace))


def install(namespace) -> None:
    """``--list`` of this namespace prints the tasks as ``grouped`` does (once per process)."""
    if getattr(Program, "_runbook_listing", False):
        return
    original = Program.list_flat

    @functools.wraps(original)
    def list_flat(self):
        if set(self.scoped_collection.task_names) == set(namespace.ns.task_names):  # invoke lists a copy of ns
            print(grouped(namespace))
        else:
            original(self)

    Program.list_flat = list_flat
    Program._runbook_listing = True
