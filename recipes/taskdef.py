"""The runbook's ``@task``: invoke's own, with one meaning for each short flag across every task.

invoke gives each option a short flag from its first free letter, so the same letter meant different options
from task to task (``-d`` was ``--dry-run`` on apply and ``--define`` on plan) and ``--host`` took ``-h``:
``./run setup -h`` ran a real setup instead of showing its help. Here only the options of ``SHORT`` have a short
flag, the same on every task, and ``-h`` is always help.
"""

import functools

import invoke

SHORT = {  # option (as the task's parameter is named) -> its one short flag
    "dry_run": "d",
    "define": "D",
    "requests": "r",
    "concurrency": "c",
    "k": "k",
    "marker": "m",
}


class RunbookTask(invoke.Task):
    """A task whose options take their short flag from ``SHORT`` only; ``-h`` is left to help."""

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, {*taken_names, "h"})
        long = opts["names"][0]
        opts["names"] = [long] + ([SHORT[name]] if name in SHORT and SHORT[name] != long else [])
        return opts


task = functools.partial(invoke.task, klass=RunbookTask)
