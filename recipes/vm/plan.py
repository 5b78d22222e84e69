"""A task's plan for one host: the steps it runs, in order, and what they will read and install.

A plan lists its steps, so the ``[n/N]`` counter is counted from the list, never typed: each listed function
of a HostRun runs exactly one ``with run.step(...)`` block (handlers it asks for are not counted). The plan
declares the reads its steps make and the package groups they install: the run reads all of them in its
first session and plans the groups' installs together (packages.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from recipes.vm.hostrun import HostRun, StepFailed
from recipes.vm.packages import PackageGroup, work_of
from recipes.vm.reads import Read

StepFunction = Callable[[HostRun], object]  # runs one step on the host


@dataclass(frozen=True)
class HostPlan:
    """A task's work on one host: read-only ``checks`` of host state first, then the ``body`` steps, in order.

    A check finds state that would make a later step fail (a malformed file) before anything is written;
    ``setup`` runs every task's checks before the first task's body (``combined``). ``reads`` are the reads
    the steps make and ``packages`` the package groups they install.
    """

    body: tuple[StepFunction, ...]
    checks: tuple[StepFunction, ...] = ()
    reads: tuple[Read, ...] = ()
    packages: tuple[PackageGroup, ...] = ()

    @property
    def steps(self) -> int:
        """The [n/N] total: one per check and one per step."""
        return len(self.checks) + len(self.body)

    def read_first(self, run: HostRun) -> None:
        """The run's first session: every read the steps declare (and, on a real host, the host's lock)."""
        run.total_steps = self.steps
        work = work_of(run)
        work.declare(self.packages)
        run.expect([*self.reads, *work.reads()])
        run.read_ahead()

    def __call__(self, run: HostRun) -> None:
        """Run the checks, then the steps, after ``read_first`` (which reads nothing again if it has run)."""
        self.read_first(run)
        for each in (*self.checks, *self.body):
            before = run.step_index
            each(run)
            if run.step_index != before + 1:  # a step function that opened no step, or two
                raise StepFailed(f"the plan declares {self.steps} steps but ran {run.step_index}: "
                                 f"{function_name(each)} ran {run.step_index - before}, a listed step runs one")


def function_name(function) -> str:
    return getattr(function, "__qualname__", None) or getattr(getattr(function, "func", None), "__qualname__", "?")


def host_plan(body: list[StepFunction], checks=(), reads=(), packages=()) -> HostPlan:
    """A plan of the ``body`` steps, after the ``checks``; ``reads`` and ``packages`` as in HostPlan."""
    return HostPlan(tuple(body), tuple(checks), tuple(reads), tuple(packages))


def combined(plans: list[HostPlan]) -> HostPlan:
    """Several plans as one: every plan's checks first, then every plan's steps in order; the reads and the
    package groups add up."""
    return HostPlan(tuple(step for each in plans for step in each.body),
                    tuple(check for each in plans for check in each.checks),
                    tuple(read for each in plans for read in each.reads),
                    tuple(group for each in plans for group in each.packages))
