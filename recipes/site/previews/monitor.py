"""Monitor previews: each notification as an email-like card, the host-IP template with its lint verdict,
and the monitor's behaviour on a simulated day as a timeline."""

from __future__ import annotations

import html
import string
import textwrap
from pathlib import Path

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from recipes.api import messages
from recipes.site.previews import simulation as sim, style
from recipes.site.previews.capture import renderables_to_svg

CARD = Path(__file__).resolve().parent / "templates" / "card.svg"  # the notification card, filled per state
SUBJECT_PREFIX = {"alert": "Triggered", "warning": "Warn", "no_data": "No data", "recovery": "Recovered"}
LABEL = {"alert": "ALERT", "warning": "WARNING", "no_data": "NO DATA", "recovery": "RECOVERED"}
ACCENT = {"alert": style.ALERT, "warning": style.WARN, "no_data": style.NODATA, "recovery": style.OK}
CARD_WIDTH, WRAP = 760, 86


def state_values(monitor: dict, state: str, sample: dict) -> dict[str, str]:
    """Template variables as Datadog fills them for ``state`` (value from the sample settings)."""
    thresholds = monitor["options"]["thresholds"]
    value = sample["values"].get(state)
    return {
        "value": "" if value is None else f"{value:g}",
        "threshold": f"{thresholds['critical']:g}",
        "warn_threshold": f"{thresholds.get('warning', '')}",
        "host.name": sample["host_name"],
        "host.ip": sample["host_ip"],
        "comparator": ">",
    }


def rendered_messages(monitor: dict, sample: dict) -> dict[str, str]:
    """The text each state's notification carries."""
    return {state: messages.render(monitor["message"], state, state_values(monitor, state, sample))
            for state in messages.STATES}


def subject(monitor: dict, state: str, host: str) -> str:
    return f"[{SUBJECT_PREFIX[state]} on {{host:{host}}}] {monitor['name']}"


def card_svg(label: str, accent: str, subject: str, recipients: str, text: str, query: str, footer: str) -> str:
    """An email-like card (SVG, text stays selectable): a coloured label, subject, To:, the wrapped body, a
    monospace line and a footer that says how it was made."""
    lines = [wrapped for line in (text.splitlines() or ["(empty: this state sends no text)"])
             for wrapped in (textwrap.wrap(line, WRAP) or [""])]
    body = "\n".join(f'  <text class="body" x="24" y="{150 + 22 * i}">{html.escape(line)}</text>'
                     for i, line in enumerate(lines))
    end = 150 + 22 * len(lines)
    label_width = 16 + 9 * len(label)
    return string.Template(CARD.read_text(encoding="utf-8")).substitute(
        width=CARD_WIDTH, height=end + 64, inner_width=CARD_WIDTH - 1, inner_height=end + 63,
        accent=accent, label=label, label_width=label_width, label_x=24 + label_width / 2,
        subject=html.escape(subject), aria=html.escape(f"{label} notification preview"),
        recipients=html.escape(recipients.lstrip("@")), body=body, rule_end=CARD_WIDTH - 24,
        query_rule_y=end - 6, query_y=end + 14, query=html.escape(query), foot_y=end + 40, footer=html.escape(footer))


def draw_card(monitor: dict, state: str, text: str, sample: dict, path: Path) -> Path:
    """An email-like card of the notification ``state`` sends."""
    recipients = ", ".join(messages.recipients(monitor["message"], state)) or "(nobody: no @-handle in this state)"
    svg = card_svg(LABEL[state], ACCENT[state], subject(monitor, state, sample["host_name"]), recipients, text,
                   f"Query: {monitor['query']}",
                   f"Preview rendered offline from payloads/monitor.json with sample values "
                   f"(value {state_values(monitor, state, sample)['value'] or 'none'}) -- not a Datadog email.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg, encoding="utf-8")
    return path


def _findings_table(findings: list[messages.Finding], title: str) -> Table:
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("level", width=8)
    table.add_column("what the monitor editor would say")
    for finding in findings:
        table.add_row(Text(finding.level, style="red" if finding.level == "error" else "yellow"), finding.message)
    if not findings:
        table.add_row(Text("ok", style="green"), "No warning: every variable is known and filled, blocks balance, "
                                                 "and each handle also gets the recovery.")
    return table


def ungrouped(query: str) -> str:
    """The same query without its ``by {...}`` grouping (the mistake behind an empty {{host.ip}})."""
    return messages.GROUP_BY.sub("", query).replace("  ", " ").strip()


def draw_host_ip(monitor: dict, sample: dict, path: Path) -> Path:
    """The alert block of the template, what it renders to, and the lint's verdict grouped and ungrouped."""
    message = monitor["message"]
    alert_block = next((line for line in message.splitlines() if "{{#is_alert}}" in line), message)
    template = Text(alert_block)
    template.highlight_regex(r"\{\{host\.ip\}\}|\{\{host\.name\}\}", "bold magenta")
    template.highlight_regex(r"\{\{[#/]is_alert\}\}", "cyan")
    rendered = messages.render(alert_block, "alert", state_values(monitor, "alert", sample))
    flat = ungrouped(monitor["query"])
    renderables = [
        Panel(template, title="alert block of payloads/monitor.json (template)", title_align="left"),
        Panel(Text(rendered), title=f"rendered for an alert on {sample['host_name']}", title_align="left"),
        _findings_table(messages.lint(message, monitor["query"]), f"lint, query as written: {monitor['query']}"),
        _findings_table(messages.lint(message, flat), f"lint, same message without grouping: {flat}"),
    ]
    return renderables_to_svg(renderables, path, "./run previews --only messages: {{host.ip}} in the alert text")


def evaluations(simulation, monitor: dict, at_least_once_query: str) -> tuple[sim.Series, list[sim.Evaluation]]:
    """Simulate a day of my_metric (settings ``previews.simulation``) and evaluate the monitor as written and its
    at-least-once variant."""
    thresholds = monitor["options"]["thresholds"]
    series = sim.simulate(simulation.seed, simulation.duration_s, simulation.interval_s)
    out = []
    for query in (monitor["query"], at_least_once_query):
        aggregator = query.split("(", 1)[0].strip()
        out.append(sim.evaluate(series, aggregator, simulation.window_s, simulation.every_s,
                                thresholds["warning"], thresholds["critical"]))
    return series, out


def draw_timeline(series: sim.Series, evals: list[sim.Evaluation], thresholds: dict, path: Path,
                  zoom_s: int = 7200) -> Path:
    """Top: the first two hours of points with both reductions; below: the day's states of each variant."""
    fig, axes = style.figure(style.WIDTH_IN, 5.2, nrows=3, gridspec_kw={"height_ratios": [3, 0.6, 0.6]})
    top = axes[0]
    xs = [t / 60 for t in series.times if t <= zoom_s]
    top.scatter(xs, series.values[:len(xs)], s=8, color=style.PURPLE, label="my_metric (one point / 45 s)", zorder=3)
    for ev, colour in zip(evals, ("#222222", "#1a7fd4")):
        shown = [(t / 60, v) for t, v in zip(ev.times, ev.reduced) if t <= zoom_s]
        top.step([p[0] for p in shown], [p[1] for p in shown], where="post", color=colour, linewidth=1.4,
                 label=f"{ev.aggregator}(last_5m), evaluated every minute")
    top.axhline(thresholds["warning"], color=style.WARN, linestyle="--", linewidth=1, label="warning > 500")
    top.axhline(thresholds["critical"], color=style.ALERT, linestyle="--", linewidth=1, label="alert > 800")
    top.set_xlim(0, zoom_s / 60)
    top.set_ylim(0, 1050)
    top.set_xlabel("minutes (first two hours of the simulated day)")
    top.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=style.TEXT_PT, frameon=False)
    top.set_title("my_metric, uniform 0..1000 every 45 s:\nthe monitor as written (avg) vs at least once (max)",
                  loc="left", pad=62)
    for ax, ev in zip(axes[1:], evals):
        _state_strip(ax, ev)
    style.footnote(fig)
    fig.subplots_adjust(hspace=1.1)
    return style.save(fig, path)


def _state_strip(ax, ev: sim.Evaluation) -> None:
    hours = [t / 3600 for t in ev.times]
    step = (ev.times[1] - ev.times[0]) / 3600
    for state, colour in ((sim.OK, style.OK), (sim.WARNING, style.WARN), (sim.ALERT, style.ALERT)):
        ax.broken_barh(_runs(hours, ev.states, state, step), (0, 1), color=colour, linewidth=0)
    ax.set_xlim(hours[0], hours[-1] + step)
    ax.set_yticks([])
    ax.grid(False)
    ax.set_xlabel("hours of the day", fontsize=style.TEXT_PT)
    share = ", ".join(f"{s} {ev.fraction(s):.1%}" for s in (sim.OK, sim.WARNING, sim.ALERT))
    alerts = ev.alert_notifications()
    ax.set_title(f"{ev.aggregator}(last_5m): {share}; {ev.notifications()} notifications "
                 f"({alerts} alert{'s' * (alerts != 1)})", fontsize=style.TEXT_PT, loc="left")


def _runs(hours: list[float], states: list[str], state: str, step: float) -> list[tuple[float, float]]:
    """Consecutive evaluations in ``state`` merged into (start, width) spans: one rectangle per run."""
    runs: list[list[float]] = []
    for hour, each in zip(hours, states):
        if each != state:
            continue
        if runs and abs(runs[-1][0] + runs[-1][1] - hour) < 1e-9:
            runs[-1][1] += step
        else:
            runs.append([hour, step])
    return [(start, width) for start, width in runs]
