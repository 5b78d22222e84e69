"""Offline previews: monitor messages, monitor behaviour, downtime windows and dashboard widgets as pictures."""

from invoke import task

from recipes.pending import not_implemented_yet


@task
def previews(c):
    """Regenerate every picture of the site from the payloads and simulated data."""
    not_implemented_yet("previews", 6)
