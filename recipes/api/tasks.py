"""Dashboards, the monitor, the downtimes and the notebook, as code: the JSON in payloads/ applied with
datadog-api-client.

The tasks that write (apply, timeboard, monitor, downtimes, apm-dashboard, notebook, destroy, and
verify-account --publish) run one at a time per
checkout and Datadog org (recipes/api/lock.py); Ctrl-C stops them with one message saying what was done
and the command that resumes.

Each task imports ``recipes.api.commands`` when it runs: datadog-api-client takes seconds to import, and
`invoke --list` or a VM task should not wait for it.
"""

from recipes.taskdef import task

DRY = {"dry_run": "validate and show what would be sent; send nothing"}
DEFINE = {"define": "fill a placeholder, NAME=VALUE (repeatable), e.g. --define HOST=web-1"}
ONCE = {"at_least_once": "alert when any point crosses the threshold (max) instead of the average"}


@task(help={**DRY, **DEFINE}, iterable=["define"])
def timeboard(c, dry_run=False, define=None):
    """Create or update the exercise's timeboard (my_metric, anomalies, hourly rollup)."""
    from recipes.api import commands

    return commands.apply(c, dry_run, define=define, only=["timeboard"], task="timeboard")


@task(help={**DRY, **ONCE, **DEFINE}, iterable=["define"])
def monitor(c, dry_run=False, at_least_once=False, define=None):
    """Create or update the my_metric monitor (warning 500, alert 800, no data after 10 min)."""
    from recipes.api import commands

    return commands.apply(c, dry_run, at_least_once, define, only=["monitor"], task="monitor")


@task(help={**DRY, **DEFINE}, iterable=["define"])
def downtimes(c, dry_run=False, define=None):
    """Schedule the monitor's downtimes: weeknights 19:00-09:00 and all weekend."""
    from recipes.api import commands

    return commands.apply(c, dry_run, define=define, only=["downtime-weeknights", "downtime-weekends"], task="downtimes")


@task(help={**DRY, **DEFINE}, iterable=["define"])
def apm_dashboard(c, dry_run=False, define=None):
    """Create or update the dashboard with the Flask service's APM and host metrics."""
    from recipes.api import commands

    return commands.apply(c, dry_run, define=define, only=["apm-dashboard"], task="apm-dashboard")


@task(help={**DRY, **DEFINE}, iterable=["define"])
def notebook(c, dry_run=False, define=None):
    """Create or update the exercise's Notebook: each section's answer, its live graphs and the scorecard."""
    from recipes.api import commands

    return commands.apply(c, dry_run, define=define, only=["notebook"], task="notebook")


@task(help={**DEFINE, "offline": "skip POST /api/v1/monitor/validate even when DD_API_KEY/DD_APP_KEY are set"}, iterable=["define"])
def validate(c, define=None, offline=False):
    """Check every payload (client models + our checks; the monitor also online when keys are set)."""
    from recipes.api import commands

    commands.validate(c, define, offline)


@task(help={**ONCE, **DEFINE}, iterable=["define"])
def plan(c, at_least_once=False, define=None):
    """Show what apply would create, update or leave alone, with a diff against the live objects."""
    from recipes.api import commands

    return commands.plan(c, at_least_once, define)


@task(help={**DRY, **ONCE, **DEFINE}, iterable=["define"])
def apply(c, dry_run=False, at_least_once=False, define=None):
    """Apply every payload in dependency order: dashboards, monitor, downtimes, then the notebook."""
    from recipes.api import commands

    return commands.apply(c, dry_run, at_least_once, define)


@task(help={**DEFINE, "out_dir": "where to write the JSON files (default: payloads/)"}, iterable=["define"])
def export(c, out_dir=None, define=None):
    """Write the live objects back into payloads/ form."""
    from recipes.api import commands

    return commands.export(c, out_dir, define)


@task(help={**DRY, **DEFINE}, iterable=["define"])
def destroy(c, dry_run=False, define=None):
    """Delete what this runbook created, and nothing else."""
    from recipes.api import commands

    return commands.destroy(c, dry_run, define)


@task(help={
    "json": "print the report as JSON on stdout (rows: requirement, status, evidence, todo, pitfall)",
    "wait": "poll for up to this many seconds until every row passes (default 0: look once)",
    "minutes": "how far back metrics and traces are read (default: api.verify_minutes)",
    "publish": "also write the scorecard into the Notebook's last cell (only when a status changed)",
})
def verify_account(c, json=False, wait=0, minutes=0, publish=False):
    """Read back from the Datadog account what the exercise sent, requirement by requirement (read-only)."""
    from recipes.api import commands

    return commands.verify_account(c, json, wait, minutes, publish)


@task(help={
    **DRY,
    "widget": "the timeboard widget to snapshot, by title (default: the my_metric graph)",
    "minutes": "the window: the past N minutes (default 5)",
    "again": "post the event even if this window's snapshot was already sent",
})
def snapshot(c, widget=None, minutes=5, again=False, dry_run=False):
    """Snapshot a timeboard graph over the past 5 minutes and send it to api.notify with the @ notation."""
    from recipes.api import commands

    return commands.snapshot(c, widget, minutes, again, dry_run)
