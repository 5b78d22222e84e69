"""A task run in this process as a user runs it: invoke's own Program over tasks.ns (same parser, config files and
exit codes), with exactly the environment given. It saves the seconds a new process spends importing."""

import io
import os
from contextlib import redirect_stderr, redirect_stdout

from invoke import Program


def run_task(argv: list[str], env: dict[str, str], merged: bool = False) -> tuple[int, str, str]:
    """`invoke ARGV` (argv without the leading "invoke") with `env`: exit code, stdout, stderr (with ``merged``,
    both in stdout, in the order written)."""
    import tasks

    out = io.StringIO()
    err = out if merged else io.StringIO()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                Program(namespace=tasks.ns, name="invoke", binary="invoke").run(["invoke", *argv])
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue(), "" if merged else err.getvalue()
