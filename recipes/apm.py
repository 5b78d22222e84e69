"""APM: the exercise's Flask app under ddtrace-run, a traffic generator and a local demo needing no account."""

from invoke import task

from recipes.pending import not_implemented_yet

HOST_HELP = {
    "host": "SSH host as user@addr[:port]; repeat for several hosts in parallel (default: the Vagrant box)",
    "dry_run": "show each step and the diff of each file it would write; change nothing",
}


@task(iterable=["host"], help=HOST_HELP)
def apm_app(c, host=None, dry_run=False):
    """Install the Flask app in a venv on the VM and run it under ddtrace-run as a service."""
    not_implemented_yet("apm-app", 5)


@task(iterable=["host"], help={"host": HOST_HELP["host"]})
def apm_stop(c, host=None):
    """Stop the Flask app service on the VM."""
    not_implemented_yet("apm-stop", 5)


@task(help={"url": "base URL of the app (default: the VM's forwarded port 5050)", "requests": "number of requests"})
def traffic(c, url=None, requests=300):
    """Send traffic to the app's three routes and report counts, errors and latency percentiles."""
    not_implemented_yet("traffic", 5)


@task
def apm_demo(c):
    """Run the whole APM section locally: test agent, traced app, traffic, and the service page it would show."""
    not_implemented_yet("apm-demo", 5)
