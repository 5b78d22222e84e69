"""The runbook's ``@task``: invoke's own, with one meaning for each short flag across every task.

invoke gives each option a short flag from its first free letter, so the same letter meant different options
from task to task (``-d`` was ``--dry-run`` on apply and ``--define`` on plan) and ``--host`` took ``-h``:
``./run setup -h`` ran a real setup instead of showing its help. Here only the options of ``SHORT`` have a short
flag, the same on every task, and ``-h`` is always help. A help text that names a setting as its default
(``(default: site.addr)``, ``<apm.port>``) shows the setting's shipped value beside its name.
"""

import functools
import re

import invoke

from recipes.defaults import CONFIG

SHORT = {  # option (as the task's parameter is named) -> its one short flag
    "dry_run": "d",
    "define": "D",
    "requests": "r",
    "concurrency": "c",
    "k": "k",
    "marker": "m",
}


SETTING_DEFAULT = re.compile(r"\(default: ([a-z_]+\.[a-z_]+)\)")
SETTING_VALUE = re.compile(r"<([a-z_]+\.[a-z_]+)>")


def shipped(dotted: str) -> str:
    section, key = dotted.split(".")
    value = CONFIG[section][key]
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def with_values(text: str) -> str:
    """A help text with each setting it names as a default shown with its value: ``(default: 127.0.0.1, setting
    site.addr)``; ``<apm.port>`` becomes ``5050``, naming the setting once after."""
    text = SETTING_DEFAULT.sub(lambda m: f"(default: {shipped(m[1])}, setting {m[1]})", text)
    named = SETTING_VALUE.findall(text)
    text = SETTING_VALUE.sub(lambda m: shipped(m[1]), text)
    return text + "".join(f" (setting {dotted})" for dotted in dict.fromkeys(named))


class RunbookTask(invoke.Task):
    """A task whose options take their short flag from ``SHORT`` only; ``-h`` is left to help; help texts show
    the shipped value of the settings they name."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.help = {name: with_values(text) for name, text in self.help.items()}

    def get_arguments(self, ignore_unknown_help=None):
        """The task's arguments, as often as asked: invoke's own pops each help text as it goes, so a second
        call (the site renders a task twice) had none."""
        kept = dict(self.help)
        try:
            return super().get_arguments(ignore_unknown_help)
        finally:
            self.help = kept

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, {*taken_names, "h"})
        long = opts["names"][0]
        opts["names"] = [long] + ([SHORT[name]] if name in SHORT and SHORT[name] != long else [])
        return opts


task = functools.partial(invoke.task, klass=RunbookTask)
