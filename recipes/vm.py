"""The VM as a whole: bring the Vagrant box up, run every VM step in order, verify what the Agent reports."""

from invoke import task

from recipes.pending import not_implemented_yet

HOST_HELP = {
    "host": "SSH host as user@addr[:port]; repeat for several hosts in parallel (default: the Vagrant box)",
    "dry_run": "show each step and the diff of each file it would write; change nothing",
}


@task
def vm_up(c):
    """Start the Vagrant box from the shipped Vagrantfile (port 5050 forwarded)."""
    not_implemented_yet("vm-up", 3)


@task(iterable=["host"], help=HOST_HELP)
def setup(c, host=None, dry_run=False):
    """Run every VM step in order: install-agent, tag-host, setup-mysql, custom-check."""
    not_implemented_yet("setup", 3)


@task(iterable=["host"], help={"host": HOST_HELP["host"]})
def verify(c, host=None):
    """Summarise what the Agent reports: status, the MySQL check and the custom check."""
    not_implemented_yet("verify", 3)
