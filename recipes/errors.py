"""The two ways a task ends early, each a family every concern raises (light: task modules import it at listing).

Only the boundary (``recipes/boundary.py``) turns them into exits and words: a ``Refused`` exits 2, one line
per reason, each ending ``(nothing was changed)``; a ``Failed`` exits 1 with its one line. Raise them with the
reason only: where (file, field, option, host), what, and why.
"""


class Refused(ValueError):
    """Input the runbook refuses before it changes anything: a setting, an option, a payload, the environment."""

    def __init__(self, *reasons: str):
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons) or ["refused"]


class Failed(RuntimeError):
    """Work that failed once it had begun; the message says what failed, where, and what to do next.

    ``Failed()`` with no message ends a task whose failure was already shown in full (a hosts' summary table).
    """
