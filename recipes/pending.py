"""Stand-in for tasks whose recipe is not built yet: fail loudly, never succeed silently."""

from invoke.exceptions import Exit


def not_implemented_yet(task_name: str, issue: int) -> None:
    """Stop the run with a clear message and exit code 2."""
    raise Exit(
        f"`invoke {task_name}` is not implemented yet (tracked in issue #{issue}); nothing was changed.",
        code=2,
    )
