"""Modules imported on first use, so that `invoke --list` and a task pay only for what they touch.

Listing the tasks needs invoke and the task definitions, nothing else; Fabric and paramiko, pydantic (the
settings schema), ruamel.yaml and rich cost about six times that to import. ``fabric = lazy("fabric")``
imports Fabric when one of its attributes is first read (``fabric.Connection(...)``). Read the attributes
inside functions: ``from fabric import Connection`` at the top of a module would import it at once.

Not the standard library's LazyLoader: on Python 3.11 two threads touching a module it defers can both run
it (host steps run in parallel threads), and any look at the module (``isinstance``, as invoke's
``Collection.from_module`` does on every name of a task module) runs it. Here the real import happens
through the import system, which is thread-safe, and the proxy itself is an ordinary object.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """Stands for a module until an attribute is read; then every read goes to the imported module."""

    def __init__(self, name: str):
        self._lazy_name = name

    def __getattr__(self, attribute: str):
        return getattr(importlib.import_module(self._lazy_name), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._lazy_name!r}>"


def lazy(name: str) -> ModuleType:
    """``name``, imported when one of its attributes is first read."""
    return LazyModule(name)  # type: ignore[return-value]  (it answers attribute reads like the module)
