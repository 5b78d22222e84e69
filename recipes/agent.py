"""The Datadog Agent on the VM: install it from Datadog's signed apt repository and set the host tags."""

from invoke import task

from recipes.pending import not_implemented_yet

HOST_HELP = {
    "host": "SSH host as user@addr[:port]; repeat for several hosts in parallel (default: the Vagrant box)",
    "dry_run": "show each step and the diff of each file it would write; change nothing",
}


@task(iterable=["host"], help=HOST_HELP)
def install_agent(c, host=None, dry_run=False):
    """Install Agent 7 from Datadog's apt repository and write api_key and site into datadog.yaml."""
    not_implemented_yet("install-agent", 3)


@task(iterable=["host", "tag"], help={**HOST_HELP, "tag": "host tag as key:value; repeatable (default: agent.tags)"})
def tag_host(c, host=None, tag=None, dry_run=False):
    """Write host tags into datadog.yaml and restart the Agent once, only if they changed."""
    not_implemented_yet("tag-host", 3)
