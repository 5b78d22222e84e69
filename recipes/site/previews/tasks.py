"""Offline previews: monitor messages, monitor behaviour, downtime windows and dashboard widgets as pictures."""

from __future__ import annotations

import json
from datetime import date, datetime

from recipes.taskdef import task

from recipes.errors import Failed, Refused
from recipes.lazy import lazy
from recipes.terminal import task_console

rich_table = lazy("rich.table")
schema = lazy("recipes.settings")

# The drawing modules load matplotlib, which takes seconds: they are imported inside the tasks that draw,
# so `invoke --list` and the other recipes do not pay for them.



def _run(c, pictures: list, out: str | None) -> None:
    from recipes.site.previews.inputs import ROOT
    from recipes.site.previews.plan import generate

    written = generate(c.config, pictures, out)
    table = rich_table.Table("figure", "picture", title="Pictures written")
    for picture, path in written:
        table.add_row(picture.key, str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path))
    task_console().print(table)


def _everything(c, out=None, no_captures=False):
    """Every picture of the site, from the payloads and simulated data."""
    from recipes.site.previews.plan import full_plan

    _run(c, full_plan(c.config, captures=not no_captures), out)


def _messages(c, out=None):
    """Render the monitor's alert, warning, no-data and recovery texts and lint the message."""
    from recipes.api import messages
    from recipes.site.previews import monitor as monitor_preview
    from recipes.site.previews.inputs import load_monitor, sample_ctx, sample_values
    from recipes.site.previews.plan import message_plan

    mon = load_monitor(sample_values(c.config))
    pictures = message_plan(c.config)
    table = rich_table.Table("state", "recipients", "text", title=f"Notifications of {mon['name']!r}")
    for state, text in monitor_preview.rendered_messages(mon, sample_ctx(schema.of(c))).items():
        table.add_row(state, ", ".join(messages.recipients(mon["message"], state)), text)
    task_console().print(table)
    _print_lint(messages.lint(mon["message"], mon["query"]), mon["query"])
    _run(c, pictures, out)


def _print_lint(findings, query: str) -> None:
    if not findings:
        task_console().print(f"[green]lint: no warning[/] for query {query}")
    for finding in findings:
        colour = "red" if finding.level == "error" else "yellow"
        task_console().print(f"[{colour}]lint {finding.level}:[/] {finding.message}")


def _monitor(c, out=None):
    """Simulate a day of my_metric and compare the monitor as written with the at-least-once variant."""
    from recipes.site.previews import monitor as monitor_preview, simulation as sim
    from recipes.site.previews.inputs import load_monitor, sample_values
    from recipes.site.previews.plan import monitor_plan

    simulation = schema.of(c).previews.simulation
    values = sample_values(c.config)
    mon, variant = load_monitor(values), load_monitor(values, at_least_once=True)
    _, evals = monitor_preview.evaluations(simulation, mon, variant["query"])
    thresholds = mon["options"]["thresholds"]
    table = rich_table.Table("query", "OK", "warning", "alert", "notifications", "alerts sent", "closed-form alert share",
                  title="One simulated day (uniform 0..1000 every 45 s, evaluated every minute)")
    for ev, query in zip(evals, (mon["query"], variant["query"])):
        expected = sim.expected_fraction_above(ev.aggregator, thresholds["critical"], simulation.window_s,
                                               simulation.interval_s)
        table.add_row(query, *(f"{ev.fraction(s):.1%}" for s in (sim.OK, sim.WARNING, sim.ALERT)),
                      str(ev.notifications()), str(ev.alert_notifications()), f"{expected:.2%}")
    task_console().print(table)
    _run(c, monitor_plan(c.config), out)


def _downtimes(c, out=None, start=None, days=14, wall_clock=False):
    """Expand the downtime schedules into concrete windows, check nights and weekends have no gap."""
    from recipes.site.previews import downtimes
    from recipes.site.previews.inputs import PreviewInputError
    from recipes.site.previews.plan import downtime_plan

    hours = schema.of(c).previews.business_hours
    zone = downtimes.zone_of(c.config)
    try:
        first = date.fromisoformat(start) if start else datetime.now(zone).date()
    except ValueError:
        raise PreviewInputError(f"--start {start!r} is not a date (YYYY-MM-DD)") from None
    windows, gaps, over = downtimes.expand_and_check(c.config, first, int(days), wall_clock)
    pictures = downtime_plan(c.config)
    table = rich_table.Table("schedule", "starts", "ends", "length", title=f"Downtime windows, {first} + {days} days ({zone.key})")
    for w in windows:
        table.add_row(w.name, f"{w.start:%a %Y-%m-%d %H:%M %Z}", f"{w.end:%a %Y-%m-%d %H:%M %Z}", str(w.end - w.start))
    task_console().print(table)
    for label, parts, colour in (("gap (monitor live outside business hours)", gaps, "red"),
                                 ("muted during business hours", over, "yellow")):
        for part in parts:
            task_console().print(f"[{colour}]{label}:[/] {part.start.astimezone(zone):%a %Y-%m-%d %H:%M %Z} -> "
                          f"{part.end.astimezone(zone):%a %Y-%m-%d %H:%M %Z}")
    if not gaps and not over:
        task_console().print(f"[green]no gap:[/] nights and weekends are covered and business hours "
                      f"({hours.opens}-{hours.closes}) stay live")
    _run(c, pictures, out)


def _dashboard(c, out=None):
    """Draw each timeboard widget, the Host Map card and the APM dashboard from simulated or measured data."""
    from recipes.site.previews.plan import dashboard_plan

    _run(c, dashboard_plan(c.config), out)


def _notebook(c, out=None):
    """Draw the Notebook's cells as a page from payloads/notebook.json."""
    from recipes.site.previews.plan import notebook_plan

    _run(c, notebook_plan(c.config), out)


def _captures(c, out=None, source=None):
    """Turn the end-to-end suite's captured outputs (artifacts/captures/*.txt) into terminal pictures."""
    from recipes.site.previews.plan import captures_plan

    pictures = captures_plan(c.config, source)
    if not pictures:
        task_console().print(f"no capture found in {source or schema.of(c).previews.captures_dir}; nothing to convert")
        return
    _run(c, pictures, out)


def _check(c):
    """Fail when a committed picture no longer matches its inputs (payloads, generator code, parameters)."""
    from recipes.site.previews.inputs import ROOT
    from recipes.site.previews.plan import check_stale

    problems = check_stale(c.config)
    for problem in problems:
        task_console().print(f"[red]stale:[/] {problem}")
    if problems:
        raise Failed("previews --check: run `./run previews` and commit docs/img/generated/ and docs/figures.yml")
    manifest = json.loads((ROOT / schema.of(c).previews.out_dir / "manifest.json").read_text())
    task_console().print(f"[green]{len(manifest)} pictures match their inputs[/]")


KINDS = {  # --only KIND -> what it draws (and prints)
    "messages": _messages, "monitor": _monitor, "downtimes": _downtimes, "dashboard": _dashboard,
    "notebook": _notebook, "captures": _captures,
}
OWN_OPTIONS = {"start": "downtimes", "days": "downtimes", "wall_clock": "downtimes", "source": "captures",
               "no_captures": None}  # an option -> the one kind it belongs to (None: the run of every kind)


@task(help={
    "only": "draw one kind of picture: " + ", ".join(KINDS) + " (default: every picture)",
    "out": "folder for the pictures (default: previews.out_dir)",
    "no_captures": "every picture but the terminal captures (artifacts/captures/*.txt)",
    "source": "--only captures: folder of FIGURE-KEY.txt captures (default: previews.captures_dir)",
    "start": "--only downtimes: first day to expand, YYYY-MM-DD (default: today in api.timezone)",
    "days": "--only downtimes: how many days to expand (default 14)",
    "wall_clock": "--only downtimes: count durations on the local clock instead of as elapsed time across a DST change",
    "check": "draw nothing: fail when a committed picture no longer matches its inputs (payloads, code, parameters)",
})
def previews(c, only=None, out=None, no_captures=False, source=None, start=None, days=14, wall_clock=False,
             check=False):
    """Draw the site's pictures from the payloads and simulated data: all of them, or --only one kind; --check
    tells a stale picture from a fresh one."""
    given = {"start": start is not None, "days": days != 14, "wall_clock": wall_clock, "source": source is not None,
             "no_captures": no_captures}
    for option, kind in OWN_OPTIONS.items():
        if given[option] and (check or only != kind):
            wanted = "without --only" if kind is None else f"with --only {kind}"
            raise Refused(f"option --{option.replace('_', '-')}: only {wanted}")
    if check:
        if only or out:
            raise Refused("option --check: draws nothing, so it takes no --only or --out")
        return _check(c)
    if only is None:
        return _everything(c, out, no_captures)
    if only not in KINDS:
        raise Refused(f"option --only: {only!r} is not a kind of picture; the kinds are {', '.join(KINDS)}")
    if only == "downtimes":
        return _downtimes(c, out, start, days, wall_clock)
    if only == "captures":
        return _captures(c, out, source)
    return KINDS[only](c, out)
