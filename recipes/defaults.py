"""Every default of the runbook, in one place.

Precedence, highest first: a task's command-line option, then configuration
(``invoke.yaml`` beside ``tasks.py``, ``~/.invoke.yaml``, ``INVOKE_*`` environment
variables), then the values below. Secrets are never configuration: the Datadog keys
come only from ``DD_API_KEY`` and ``DD_APP_KEY`` in the environment.

Each concern owns one section; edit only your section's block.
"""

CONFIG = {
    # --- site (recipes/site/tasks.py) -------------------------------------------
    "site": {
        "addr": "127.0.0.1",
        "port": 8000,
        "build_dir": "site",
        # What `build` builds with: mkdocs (Material for MkDocs) or zensical (its successor), same mkdocs.yml.
        "engine": "mkdocs",
        # Where the site is published (its sitemap, canonical links and 404 page use it, and the Notebook's links
        # to its pages); empty when built to read locally. The publishing workflow sets it (.github/workflows/site.yml).
        "url": "",
    },
    # --- hosts (recipes/vm/hosts.py): empty list means the Vagrant box --------
    "hosts": [],
    "vagrant": {
        "machine": "default",
        # A saved `vagrant ssh-config` output to use instead of running vagrant (empty: run it).
        "ssh_config": "",
    },
    "ssh": {
        # Unknown host keys are refused unless this is set (or Vagrant's own config says so).
        "trust_unknown_hosts": False,
        "connect_timeout": 15,
        # Seconds a run waits for another run that holds the same host (two `./run setup` at once).
        "lock_wait": 600,
        # For --host: the user when the value has none, the private key, the known_hosts file.
        "user": "vagrant",
        "key_file": "",
        "known_hosts": "~/.ssh/known_hosts",
    },
    # --- agent (recipes/vm/agent.py) --------------------------------------------
    # The Datadog site (datadoghq.com, datadoghq.eu, ...) is DD_SITE, for the Agent and the API alike.
    "agent": {
        "tags": ["env:dev", "role:database", "owner:runbook"],
        "repo_url": "https://apt.datadoghq.com/",
        "repo_dist": "stable",
        "repo_components": "7",
        "key_urls": [
            "https://keys.datadoghq.com/DATADOG_APT_KEY_CURRENT.public",
            "https://keys.datadoghq.com/DATADOG_APT_KEY_06462314.public",
            "https://keys.datadoghq.com/DATADOG_APT_KEY_C0962C7D.public",
            "https://keys.datadoghq.com/DATADOG_APT_KEY_F14F620E.public",
        ],
        "packages": ["datadog-agent", "datadog-signing-keys"],
    },
    # --- mysql (recipes/vm/mysql.py) --------------------------------------------
    "mysql": {
        "host": "127.0.0.1",
        "port": 3306,
        "username": "datadog",
        "service": "mysql",
        # Empty: detect (mariadb on Debian, mysql on Ubuntu).
        "service_name": "",
        # Installed only when the host has no MySQL or MariaDB server yet (an existing one is never replaced).
        "server_package": "default-mysql-server",
        "error_log": "/var/log/mysql/mysql_error.log",
        "slow_log": "/var/log/mysql/mysql_slow.log",
    },
    # --- custom check (recipes/vm/check.py) -------------------------------------
    "check": {
        "name": "custom_my_metric",
        "min_collection_interval": 45,
    },
    # --- Datadog API (recipes/api/) ---------------------------------------------
    "api": {
        # The host the dashboards and the monitor query: the name the Agent reports, which is the OS hostname
        # (datadog.yaml sets none). The shipped Vagrantfile names the box so; `./run verify` checks it.
        "host": "datadog-exercise",
        "notify": "@you@example.com",
        "timezone": "Europe/Paris",
        "at_least_once": False,  # monitor on max(last_5m) instead of avg(last_5m)
        "base_url": "",  # overrides DD_SITE, e.g. a local fake server in tests
        "payload_dir": "",  # empty: payloads/ beside tasks.py
        "timeout": 30,  # seconds per request
        "max_retries": 3,  # 429 waits for X-RateLimit-Reset; 5xx/timeouts back off
        "backoff": 2,  # seconds, doubled each retry
        "backoff_max": 30,
        "verify_minutes": 15,  # verify-account reads metrics and traces this far back
        "poll_interval": 15,  # seconds between two looks of verify-account --wait
        "snapshot_wait": 60,  # seconds `snapshot` waits for Datadog to render the graph's image
        "snapshot_poll": 2,  # seconds between two looks at the image
        "lock_wait": 300,  # seconds apply/destroy wait for another run on the same org (recipes/api/lock.py)
    },
    # --- APM (recipes/vm/apm.py on the VM, recipes/apm.py here) -----------------
    "apm": {
        "service": "flask",
        "env": "dev",
        "version": "1.0.0",
        "bind": "127.0.0.1",
        "port": 5050,
        # On the VM: Vagrant's forwarded port reaches the guest's NAT address, not its loopback.
        "vm_bind": "0.0.0.0",
        "app_dir": "/opt/flask-app",
        "user": "flaskapp",
        "unit": "flask-app",
        # pip's proxy on the VM: "auto" = the http proxy apt uses there (if any), "" = none, or a URL.
        "pip_proxy": "auto",
        # A local folder of wheels to upload and install from instead of PyPI ("" = PyPI, the normal case).
        "wheelhouse": "",
    },
    # --- previews (recipes/site/previews/) --------------------------------------
    "previews": {
        "out_dir": "docs/img/generated",          # pictures + manifest.json (input hashes)
        "captures_dir": "artifacts/captures",     # <figure-key>.txt written by the end-to-end suite
        "apm_summary": "artifacts/apm-demo.json",  # apm-demo --save; a labelled simulation when absent
        "sample": {                                # values a notification preview is filled with
            "monitor_id": 12345678,
            "host_ip": "10.0.2.15",                # what a NAT-only Vagrant box reports
            "values": {"alert": 873.4, "warning": 642.1, "recovery": 312.8},
        },
        "simulation": {"seed": 6, "duration_s": 86400, "interval_s": 45, "window_s": 300, "every_s": 60},
        "dashboard": {"now": "11:23", "rollup_windows_h": [1, 4], "anomaly_seed": 6, "anomaly_minutes": 360,
                      "anomaly_lag": 60},
        "business_hours": {"opens": "09:00", "closes": "19:00", "workdays": "MO,TU,WE,TH,FR"},
        "calendar_week": "2026-06-01",             # a Monday: the week the calendars show
        "dst_week": "2026-10-19",                  # the Monday of a week whose weekend crosses a DST change
        "check_run": {"runs": 3, "seed": 45},      # random-int: the check run under datadog_checks.base
    },
}
