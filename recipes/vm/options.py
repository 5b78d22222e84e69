"""The options every VM task shares, said once: ``--host`` (repeatable) and ``--dry-run``."""

HOST = {"host": "SSH host as user@addr[:port]; repeat for several hosts in parallel (default: the Vagrant box)"}
DRY_RUN = {"dry_run": "show each step and the diff of each file it would write; change nothing"}
HOST_HELP = {**HOST, **DRY_RUN}
