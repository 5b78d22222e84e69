"""Dashboards, the monitor and the downtimes, as code: the JSON in payloads/ applied with datadog-api-client."""

from invoke import task

from recipes.pending import not_implemented_yet

DRY = {"dry_run": "validate and show what would be sent; send nothing"}


@task(help=DRY)
def timeboard(c, dry_run=False):
    """Create or update the exercise's timeboard (my_metric, anomalies, hourly rollup)."""
    not_implemented_yet("timeboard", 4)


@task(help={**DRY, "at_least_once": "alert when any point crosses the threshold (max) instead of the average"})
def monitor(c, dry_run=False, at_least_once=False):
    """Create or update the my_metric monitor (warning 500, alert 800, no data after 10 min)."""
    not_implemented_yet("monitor", 4)


@task(help=DRY)
def downtimes(c, dry_run=False):
    """Schedule the monitor's downtimes: weeknights 19:00-09:00 and all weekend."""
    not_implemented_yet("downtimes", 4)


@task(help=DRY)
def apm_dashboard(c, dry_run=False):
    """Create or update the dashboard with the Flask service's APM and host metrics."""
    not_implemented_yet("apm-dashboard", 4)


@task
def plan(c):
    """Show what apply would create, update or leave alone, with a diff against the live objects."""
    not_implemented_yet("plan", 4)


@task(help=DRY)
def apply(c, dry_run=False):
    """Apply every payload in dependency order: dashboards, monitor, then downtimes."""
    not_implemented_yet("apply", 4)


@task
def export(c):
    """Write the live objects back into payloads/ form."""
    not_implemented_yet("export", 4)


@task(help=DRY)
def destroy(c, dry_run=False):
    """Delete what this runbook created, and nothing else."""
    not_implemented_yet("destroy", 4)
