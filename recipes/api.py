"""Dashboards, the monitor and the downtimes, as code: the JSON in payloads/ applied with datadog-api-client."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from invoke import task
from invoke.exceptions import Exit
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from recipes.terminal import task_console

if TYPE_CHECKING:
    from recipes import ddsync

DRY = {"dry_run": "validate and show what would be sent; send nothing"}
DEFINE = {"define": "fill a placeholder, NAME=VALUE (repeatable), e.g. --define HOST=web-1"}
ONCE = {"at_least_once": "alert when any point crosses the threshold (max) instead of the average"}
STYLE = {"create": "green", "update": "yellow", "unchanged": "dim", "delete": "red"}


def engine():
    """The API engine, loaded on first use: datadog-api-client takes seconds to import,
    and `invoke --list` or a VM task should not wait for it."""
    from recipes import ddapi, ddsync, payloads  # noqa: PLC0415

    return ddapi, ddsync, payloads


def console() -> Console:
    return task_console()


def inputs(c, define=None, at_least_once=False, only=()) -> ddsync.Inputs:
    _, ddsync, P = engine()
    api = c.config.get("api", {})
    return ddsync.Inputs(
        values=P.config_values(c.config, P.parse_overrides(define)),
        payload_dir=Path(api.get("payload_dir") or P.PAYLOAD_DIR),
        at_least_once=at_least_once or bool(api.get("at_least_once")),
        only=tuple(only),
    )


@contextmanager
def clear_errors():
    """Bad payloads or keys end the task before any request (exit 2); a failed request ends it with exit 1."""
    ddapi, _, P = engine()
    try:
        yield
    except (P.PayloadError, ddapi.ApiSetupError) as err:
        raise Exit(f"error: {err} (nothing was changed)", code=2) from None
    except ddapi.ApiFailure as err:
        raise Exit(f"error: {err}", code=1) from None


def show(out: Console, change: ddsync.Change, dry_run: bool) -> None:
    ident = change.live_id or ""
    verb = f"would {change.action}" if dry_run and change.action != "unchanged" else change.action
    reason = f" ({change.reason})" if change.reason else ""
    out.print(f"[{STYLE[change.action]}]{verb:>16}[/] {change.spec.key} {ident}{reason}")
    if dry_run and change.action in ("create", "update"):
        out.print(Syntax(json.dumps(change.body, indent=2), "json", word_wrap=True))


def run_apply(c, dry_run=False, at_least_once=False, define=None, only=()) -> list[ddsync.Change]:
    ddapi, ddsync, P = engine()
    out = console()
    with clear_errors():
        chosen = inputs(c, define, at_least_once, only)
        ddsync.preflight(chosen)  # before the key check: a bad payload sends nothing at all
        if dry_run and not ddapi.keys_present():
            out.print("[yellow]no DD_API_KEY/DD_APP_KEY: showing the bodies without comparing them to live objects[/]")
            changes = ddsync.offline_changes(chosen)
            for change in changes:
                show(out, change, dry_run)
        else:
            with ddapi.connect(c.config.get("api", {})) as apis:
                changes = ddsync.apply(apis, chosen, on_change=lambda ch: show(out, ch, dry_run), dry_run=dry_run)
    counts = {a: sum(ch.action == a for ch in changes) for a in STYLE}
    out.print(", ".join(f"{n} {a}" for a, n in counts.items()) + (" (dry run: nothing sent)" if dry_run else ""))
    return changes


@task(help={**DRY, **DEFINE}, iterable=["define"])
def timeboard(c, dry_run=False, define=None):
    """Create or update the exercise's timeboard (my_metric, anomalies, hourly rollup)."""
    run_apply(c, dry_run, define=define, only=["timeboard"])


@task(help={**DRY, **ONCE, **DEFINE}, iterable=["define"])
def monitor(c, dry_run=False, at_least_once=False, define=None):
    """Create or update the my_metric monitor (warning 500, alert 800, no data after 10 min)."""
    run_apply(c, dry_run, at_least_once, define, only=["monitor"])


@task(help={**DRY, **DEFINE}, iterable=["define"])
def downtimes(c, dry_run=False, define=None):
    """Schedule the monitor's downtimes: weeknights 19:00-09:00 and all weekend."""
    run_apply(c, dry_run, define=define, only=["downtime-weeknights", "downtime-weekends"])


@task(help={**DRY, **DEFINE}, iterable=["define"])
def apm_dashboard(c, dry_run=False, define=None):
    """Create or update the dashboard with the Flask service's APM and host metrics."""
    run_apply(c, dry_run, define=define, only=["apm-dashboard"])


@task(help={**DEFINE, "offline": "skip POST /api/v1/monitor/validate even when DD_API_KEY/DD_APP_KEY are set"}, iterable=["define"])
def validate(c, define=None, offline=False):
    """Check every payload (client models + our checks; the monitor also online when keys are set)."""
    ddapi, ddsync, P = engine()
    out = console()
    values = P.config_values(c.config, P.parse_overrides(define))
    folder = inputs(c).payload_dir
    problems = []
    with clear_errors():
        for key, found in P.problems_by_file(values, folder).items():
            problems += found
            out.print(f"[{'red' if found else 'green'}]{'invalid' if found else 'ok':>8}[/] {P.source(P.spec(key), folder)}")
        if ddapi.keys_present() and not offline and not problems:
            body = ddsync.to_model(P.render(P.spec("monitor"), values, folder), ddsync.Monitor)
            with ddapi.connect(c.config.get("api", {})) as apis:
                ddapi.post(apis, "validate monitor", lambda: apis.monitors.validate_monitor(body))
            out.print(f"[green]      ok[/] {P.source(P.spec('monitor'), folder)} (POST /api/v1/monitor/validate)")
    if problems:
        raise Exit("\n".join(problems), code=1)


@task(help={**ONCE, **DEFINE}, iterable=["define"])
def plan(c, at_least_once=False, define=None):
    """Show what apply would create, update or leave alone, with a diff against the live objects."""
    ddapi, ddsync, P = engine()
    out = console()
    with clear_errors():
        chosen = inputs(c, define, at_least_once)
        ddsync.preflight(chosen)
        with ddapi.connect(c.config.get("api", {})) as apis:
            changes = ddsync.plan(apis, chosen)
    table = Table("object", "kind", "action", "live id", "note")
    for ch in changes:
        table.add_row(ch.spec.key, ch.spec.kind, f"[{STYLE[ch.action]}]{ch.action}[/]", str(ch.live_id or ""), ch.reason)
    out.print(table)
    for ch in changes:
        if ch.diff:
            out.print(f"[bold]{ch.spec.key}[/] ({ch.spec.file}): live -> payload")
            out.print(Syntax("\n".join(ch.diff), "diff", word_wrap=True))
    return changes


@task(help={**DRY, **ONCE, **DEFINE}, iterable=["define"])
def apply(c, dry_run=False, at_least_once=False, define=None):
    """Apply every payload in dependency order: dashboards, monitor, then downtimes."""
    return run_apply(c, dry_run, at_least_once, define)


@task(help={**DEFINE, "out_dir": "where to write the JSON files (default: payloads/)"}, iterable=["define"])
def export(c, out_dir=None, define=None):
    """Write the live objects back into payloads/ form."""
    ddapi, ddsync, P = engine()
    out = console()
    with clear_errors():
        chosen = inputs(c, define)
        target = Path(out_dir) if out_dir else chosen.payload_dir
        if target.exists() and not target.is_dir():
            raise Exit(f"error: option --out-dir {target}: is a file, not a folder (nothing was changed)", code=2)
        target.mkdir(parents=True, exist_ok=True)
        with ddapi.connect(c.config.get("api", {})) as apis:
            written = ddsync.export(apis, chosen, target)
    for path in written:
        out.print(f"[green]exported[/] {path}")
    out.print(f"{len(written)} file(s) written to {target}; the others already match the live objects")
    return written


@task(help={**DRY, **DEFINE}, iterable=["define"])
def destroy(c, dry_run=False, define=None):
    """Delete what this runbook created, and nothing else."""
    ddapi, ddsync, P = engine()
    out = console()
    with clear_errors():
        chosen = inputs(c, define)
        ddsync.preflight(chosen)
        with ddapi.connect(c.config.get("api", {})) as apis:
            changes = ddsync.destroy_plan(apis, chosen)
            for change in changes:
                if not dry_run:
                    ddsync.apply_change(apis, change)
                show(out, change, dry_run)
    out.print(f"{len(changes)} " + ("would be deleted (dry run: nothing sent)" if dry_run else "deleted"))
    return changes
