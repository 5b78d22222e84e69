"""Every default of the runbook, in one place.

Precedence, highest first: a task's command-line option, then configuration
(``invoke.yaml`` beside ``tasks.py``, ``~/.invoke.yaml``, ``INVOKE_*`` environment
variables), then the values below. Secrets are never configuration: the Datadog keys
come only from ``DD_API_KEY`` and ``DD_APP_KEY`` in the environment.

Each concern owns one section; edit only your section's block.
"""

CONFIG = {
    # --- site (recipes/site.py) -------------------------------------------------
    "site": {
        "addr": "127.0.0.1",
        "port": 8000,
        "build_dir": "site",
    },
    # --- hosts (recipes/hosts.py): empty list means the Vagrant box -----------
    "hosts": [],
    "vagrant": {
        "machine": "default",
    },
    "ssh": {
        # Unknown host keys are refused unless this is set (or Vagrant's own config says so).
        "trust_unknown_hosts": False,
        "connect_timeout": 15,
    },
    # --- agent (recipes/agent.py) -----------------------------------------------
    "agent": {
        "site": "datadoghq.com",
        "tags": ["env:dev", "role:database", "owner:runbook"],
    },
    # --- mysql (recipes/mysql.py) -----------------------------------------------
    "mysql": {
        "port": 3306,
        "service_name": "mysql",
    },
    # --- custom check (recipes/check.py) ----------------------------------------
    "check": {
        "name": "custom_my_metric",
        "min_collection_interval": 45,
    },
    # --- Datadog API (recipes/api.py) -------------------------------------------
    "api": {
        "host": "vagrant",
        "notify": "@you@example.com",
        "timezone": "Europe/Paris",
    },
    # --- APM (recipes/apm.py) ---------------------------------------------------
    "apm": {
        "service": "flask",
        "env": "dev",
        "version": "1.0.0",
        "bind": "127.0.0.1",
        "port": 5050,
    },
    # --- previews (recipes/previews.py) -----------------------------------------
    "previews": {
        "out_dir": "docs/img/generated",
    },
}
