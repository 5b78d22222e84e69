"""The one error boundary of every task: input is checked before anything happens, and no traceback (nor a
key) ever reaches the user. The two families of ``recipes/errors.py`` become exits here and nowhere else:
``Refused`` input exits 2 with ``error: <where>: <what>: <why> (nothing was changed)``; ``Failed`` work exits 1
with its one line; anything else exits 1 with its kind and message.

invoke reads its config files and ``INVOKE_*`` variables before any task runs and offers tasks.py no hook in
between (``tasks.executor_class`` is read before the collection's own config), so ``install()`` wraps the
invoke methods where that happens: the file loaders (a malformed file is refused by name), the option parser
(`-c abc` where a number is due) and ``Config.load_shell_env``, the last merge before the first task, where
the environment, the Datadog keys' shape and every setting are checked against ``recipes/settings.py``.
``checked()`` wraps each task's body.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from contextlib import contextmanager

import functools

from invoke import Config, Exit
from invoke.exceptions import UnexpectedExit, UnknownFileType
from invoke.parser import Argument
from invoke.parser.parser import ParseMachine
from invoke.vendor import yaml as invoke_yaml

from recipes.errors import Failed, Refused
from recipes.lazy import lazy

schema = lazy("recipes.settings")

NOTHING_CHANGED = "(nothing was changed)"
SECRETS = ("DD_API_KEY", "DD_APP_KEY")


def refused(lines: list[str]) -> Exit:
    """The exit of refused input: one line per reason, each saying nothing was changed."""
    return Exit("\n".join(f"error: {mask(line)} {NOTHING_CHANGED}" for line in lines), code=2)


def failed(message: str) -> Exit:
    """The exit of failed work: its one line (none when the task already showed the failure in full)."""
    return Exit(mask(f"error: {message}") if message else None, code=1)


def mask(text: str) -> str:
    """The text with the value of every Datadog key replaced (keys never appear in a message)."""
    for name in SECRETS:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, f"<{name}>")
    return text


# --- config files and the last merge: invoke does both before any task runs ----------------------------------
def install() -> None:
    """Wrap invoke's config file loaders and its last merge with the checks below (once per process)."""
    if getattr(Config, "_runbook_checked", False):
        return
    for name in ("_load_yaml", "_load_yml", "_load_json"):
        setattr(Config, name, _guarded(getattr(Config, name)))
    Config.load_shell_env = _checked_load_shell_env(Config.load_shell_env)
    Argument.set_value = _typed_option(Argument.set_value)
    ParseMachine.complete_flag = _list_option_with_a_value(ParseMachine.complete_flag)
    Config._load_file = _known_file_type(Config._load_file)
    Config._runbook_checked = True


def _typed_option(set_value):
    """A task option of the wrong type (`-c abc` where a number is due) is refused by name."""
    @functools.wraps(set_value)
    def set_typed(self, value, cast=True):
        try:
            set_value(self, value, cast)
        except ValueError:
            kind = {int: "an integer", float: "a number"}.get(self.kind, self.kind.__name__)
            raise refused([f"option --{self.name.replace('_', '-')}: {value!r} is not {kind}"]) from None

    return set_typed


def _list_option_with_a_value(complete_flag):
    """A repeatable option given without a value (`--host` before an unset shell variable) is refused by name;
    invoke would read it as not given, and a VM task would go to the Vagrant box instead."""
    @functools.wraps(complete_flag)
    def complete(self):
        if self.flag is not None and self.flag.kind is list and not self.flag_got_value:
            raise refused([f"option --{self.flag.name.replace('_', '-')}: given without a value"])
        return complete_flag(self)

    return complete


def _checked_load_shell_env(load_shell_env):
    @functools.wraps(load_shell_env)
    def load(self):
        if "apm" not in self._collection:  # not the runbook's config (a bare invoke Config)
            return load_shell_env(self)
        problems = runtime_file_problems(self) + environment_problems(self) + key_problems()
        if problems:
            raise refused(problems)
        load_shell_env(self)
        problems = settings_problems(self)
        if problems:
            raise refused(problems)

    return load


def _known_file_type(load_file):
    """A config file named without .yaml, .yml or .json is refused by name."""
    @functools.wraps(load_file)
    def load(self, *args, **kwargs):
        try:
            return load_file(self, *args, **kwargs)
        except UnknownFileType:
            path = getattr(self, "_runtime_path", None) or "config file"
            raise refused([f"-f {path}: a config file must end in .yaml, .yml or .json"]) from None

    return load


def _guarded(loader):
    def load(self, path):
        try:
            data = loader(self, path)
        except (invoke_yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as error:
            detail = " ".join(str(error).split())[:300]
            raise refused([f"{path}: malformed config file: {detail}"]) from None
        if data is not None and not isinstance(data, dict):
            raise refused([f"{path}: the top level must be a mapping of sections, not {type(data).__name__}"])
        return data

    return load


# --- before the first task ---------------------------------------------------------------------------------
def environment_problems(config) -> list[str]:
    """INVOKE_* variables that invoke would ignore, crash on, or read the wrong way (any text but 0 is true)."""
    leaves = dict(_leaves(config._config))
    by_name = {"INVOKE_" + "_".join(path).upper(): (path, value) for path, value in leaves.items()}
    problems = []
    for name, text in sorted(os.environ.items()):
        if not name.startswith("INVOKE_") or name in ("INVOKE_RUNTIME_CONFIG",):
            continue
        if name not in by_name:
            problems.append(f"environment: {name}: no such setting{schema.nearest(name, set(by_name))}")
            continue
        path, default = by_name[name]
        problem = _env_value_problem(default, text)
        if problem:
            problems.append(f"environment: {name} ({'.'.join(path)}): {text!r} {problem}")
    return problems


def _env_value_problem(default, text: str) -> str:
    if isinstance(default, bool):
        return "" if text in ("0", "1") else "is not 1 or 0 (invoke would read it as true)"
    if isinstance(default, (int, float)):
        try:
            type(default)(text)
        except ValueError:
            return f"is not {'an integer' if isinstance(default, int) else 'a number'}"
    if isinstance(default, (list, tuple, dict)):
        return "cannot be set from the environment: a list or mapping belongs in invoke.yaml"
    return ""


def _leaves(data, path=()):
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


def key_problems() -> list[str]:
    """The Datadog keys' shape: no whitespace or control characters (their value is never shown)."""
    return [f"environment: {name}: contains whitespace or control characters (value not shown)"
            for name in SECRETS if any(ch.isspace() or not ch.isprintable() for ch in os.environ.get(name, ""))]


def settings_problems(config) -> list[str]:
    """Every refused setting, named with the layer that set it; none: the checked settings are kept for the task."""
    try:
        schema.keep(config, schema.check(schema.plain(config._config), set(type(config).global_defaults())))
    except schema.SettingsError as error:
        return [f"{schema.where(config, tuple(key.split('[')[0].split('.')))}: {key}: {message}"
                for key, message in error.problems]
    return []


def runtime_file_problems(config) -> list[str]:
    path = getattr(config, "_runtime_path", None)
    if path and not os.path.isfile(os.path.expanduser(path)):
        return [f"-f {path}: no such file"]
    return []


# --- while tasks run -----------------------------------------------------------------------------------------
def checked(body):
    """A task body inside the boundary."""
    @functools.wraps(body)
    def run(*args, **kwargs):
        with terminate_as_interrupt(), failures_as_messages():
            return body(*args, **kwargs)

    return run


@contextmanager
def terminate_as_interrupt():
    """While a task runs, SIGTERM stops it as Ctrl-C does (a task that knows where it is says so, then exit 130)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (a task run from a test's worker thread)
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def failures_as_messages():
    """Whatever a task raises becomes one masked line; Exit and invoke's own failures pass through."""
    try:
        yield
    except (Exit, UnexpectedExit):
        raise
    except KeyboardInterrupt:
        raise Exit("stopped by the user", code=130) from None
    except Refused as error:
        raise refused(error.reasons) from None
    except Failed as error:
        raise failed(str(error)) from None
    except (TimeoutError, socket.timeout) as error:
        raise failed(f"timed out: {error or 'no answer'}") from None
    except Exception as error:  # noqa: BLE001 - the boundary: no traceback reaches the user
        if os.environ.get("RUNBOOK_TRACEBACK"):
            raise
        kind = type(error).__name__
        print(mask(f"error: {kind}: {' '.join(str(error).split())[:500]}"), file=sys.stderr)
        raise Exit(code=1) from None
