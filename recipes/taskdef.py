"""The runbook's ``@task``: invoke's own, with ``-h`` left to help on every task.

invoke gives each option a short flag from its first free letter, so ``--host`` took ``-h``, and
``./run setup -h`` ran a real setup instead of showing its help. Here no option takes ``h``, and the options in
``LONG_ONLY`` have no short form at all.
"""

import functools

import invoke

LONG_ONLY = {"host"}  # an option that reaches another machine is spelled out


class RunbookTask(invoke.Task):
    """A task whose options leave ``-h`` to help; ``LONG_ONLY`` options have only their long name."""

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, {*taken_names, "h"})
        if name in LONG_ONLY:
            opts["names"] = opts["names"][:1]
        return opts


task = functools.partial(invoke.task, klass=RunbookTask)
