"""The custom Agent check custom_my_metric: a gauge submitted every 45 seconds."""

from invoke import task

from recipes.pending import not_implemented_yet

HOST_HELP = {
    "host": "SSH host as user@addr[:port]; repeat for several hosts in parallel (default: the Vagrant box)",
    "dry_run": "show each step and the diff of each file it would write; change nothing",
}


@task(iterable=["host"], help=HOST_HELP)
def custom_check(c, host=None, dry_run=False):
    """Install the custom_my_metric check and its YAML (one instance, min_collection_interval: 45)."""
    not_implemented_yet("custom-check", 3)
