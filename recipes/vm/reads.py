"""A state of the host as an object: the shell command that reads it and the parser of its answer (what
pyinfra calls a fact).

A step asks the run for a read (``run.read(SYSTEMD)``) and gets the parsed value; the run answers from what
it already knows, or reads it in a session (see hostrun.py). A plan declares the reads its steps will make,
so the run reads them all in its first session; a change names the reads it voids (``changes=[read, ...]``),
so the run knows what to read again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, NamedTuple, TypeVar

T = TypeVar("T")

EVERYTHING = "everything"  # what a change voids when it does not say (a package install, a restart)


class Answer(NamedTuple):
    """A read's raw answer: the command's exit code and its output (stdout and stderr together)."""

    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def raw(answer: Answer) -> Answer:
    return answer


def succeeded(answer: Answer) -> bool:
    """The command exited 0 (a user exists, a service runs)."""
    return answer.code == 0


def text(answer: Answer) -> str:
    """The output without its surrounding white space, whatever the exit code."""
    return answer.output.strip()


@dataclass(frozen=True)
class Read(Generic[T]):
    """One state read: ``command`` (run as root, stdin empty) and ``parser``, from its Answer to the value a step
    wants. Two reads with the same command are the same read: the run reads it once."""

    command: str
    parser: Callable[[Answer], T] = raw

    def parse(self, answer: Answer) -> T:
        return self.parser(answer)
