"""MySQL (MariaDB on Debian) and its Datadog integration on the VM."""

from invoke import task

from recipes.pending import not_implemented_yet

HOST_HELP = {
    "host": "SSH host as user@addr[:port]; repeat for several hosts in parallel (default: the Vagrant box)",
    "dry_run": "show each step and the diff of each file it would write; change nothing",
}


@task(iterable=["host"], help=HOST_HELP)
def setup_mysql(c, host=None, dry_run=False):
    """Install the database, create the datadog user and configure the MySQL integration with logs."""
    not_implemented_yet("setup-mysql", 3)
