"""The runbook's recipes, one folder per concern, assembled into flat task names by ``tasks.py``.

``vm/`` the VM's steps and tasks; ``api/`` the Datadog API; ``apm.py`` the local half of APM; ``site/`` the site
and its pictures (``site/previews/``); beside them the concerns every task shares: ``defaults`` (every default),
``settings`` (what each may be), ``boundary`` (refused input exits 2, by name), ``ddsite``, ``terminal``,
``uvtool``. CONTRIBUTING.md maps them.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository
