"""Dashboard previews: each timeseries widget of the payloads drawn from simulated data, the host as a Host Map
card, and the APM + infrastructure dashboard from apm-demo's measured summary (or a labelled simulation)."""

from __future__ import annotations

import math
import random
import re
from datetime import datetime, timedelta

from matplotlib.patches import RegularPolygon

from recipes.site.previews import simulation as sim, style

ANOMALY_NOTE = ("Approximation of Datadog's 'basic' algorithm (a lagging rolling quantile): band = rolling median "
                "+/- bounds x half the 10-90 % spread of the previous hour. Simulated data, not a Datadog screenshot")


def _clock(t0: datetime, seconds: float) -> str:
    return (t0 + timedelta(seconds=seconds)).strftime("%H:%M:%S")


def draw_five_min(series: sim.Series, end_s: int, title: str, query: str, path):
    """The my_metric widget over the 5 minutes ending at ``end_s``: six or seven points joined by a line."""
    t0 = datetime(2026, 1, 1)
    points = [(t, v) for t, v in zip(series.times, series.values) if end_s - 300 < t <= end_s]
    fig, ax = style.figure(style.WIDTH_IN, 3.0)
    ax.plot([p[0] for p in points], [p[1] for p in points], color=style.PURPLE, marker="o", markersize=4)
    ticks = list(range(end_s - 300, end_s + 1, 60))
    ax.set_xticks(ticks)
    ax.set_xticklabels([_clock(t0, t)[:5] for t in ticks])
    ax.set_xlim(end_s - 300, end_s)
    ax.set_ylim(0, 1000)
    ax.set_title(f"{title} -- past 5 minutes ({len(points)} points, one every 45 s)\n{query}", fontsize=style.TEXT_PT, loc="left")
    style.footnote(fig)
    return style.save(fig, path)


def hourly_sums(series: sim.Series, now_s: int) -> list[tuple[int, float]]:
    """``.rollup(sum, 3600)`` up to ``now_s``: one bucket per clock hour, the current one partial."""
    buckets: dict[int, float] = {}
    for t, v in zip(series.times, series.values):
        if t <= now_s:
            buckets[int(t // 3600) * 3600] = buckets.get(int(t // 3600) * 3600, 0.0) + v
    return sorted(buckets.items())


def draw_rollup(series: sim.Series, now_s: int, windows_h: list[int], title: str, query: str, path):
    """The hourly-sum widget over each timeframe in ``windows_h``: a bucket shows only if it starts inside."""
    sums = hourly_sums(series, now_s)
    fig, axes = style.figure(style.WIDTH_IN, 3.2, ncols=len(windows_h), sharey=True)
    t0 = datetime(2026, 1, 1)
    for ax, hours in zip(axes, windows_h):
        start = now_s - hours * 3600
        shown = [(t, v) for t, v in sums if start <= t <= now_s]
        ax.bar([t + 1800 for t, _ in shown], [v for _, v in shown], width=3000, color=style.PURPLE)
        ax.set_xlim(start, now_s)
        ticks = list(range(math.ceil(start / 3600) * 3600, now_s + 1, 3600))
        ax.set_xticks(ticks)
        ax.set_xticklabels([_clock(t0, t)[:5] for t in ticks])
        partial = " (the current hour, partial)" if shown and shown[-1][0] + 3600 > now_s else ""
        ax.set_title(f"past {hours} h: {len(shown)} bucket{'s' * (len(shown) != 1)}{partial if len(shown) == 1 else ''}",
                     fontsize=style.TEXT_PT, loc="left")
    axes[0].set_ylabel("sum of my_metric per hour")
    fig.suptitle(f"{title}\n{query}", fontsize=style.TITLE_PT, x=0.01, ha="left")
    fig.subplots_adjust(top=0.78)
    style.footnote(fig, "Simulated data (80 points an hour, uniform 0..1000), drawn offline -- not a Datadog screenshot")
    return style.save(fig, path)


def database_metric(seed: int, minutes: int) -> list[float]:
    """A plausible mysql.performance.cpu_time: a slow wave, noise, one spike and one dip (simulated)."""
    rng = random.Random(seed)
    values = []
    for m in range(minutes):
        value = 40 + 12 * math.sin(2 * math.pi * m / 240) + rng.gauss(0, 2.5)
        if minutes * 0.55 < m < minutes * 0.55 + 6:
            value += 35
        if minutes * 0.8 < m < minutes * 0.8 + 10:
            value -= 25
        values.append(value)
    return values


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    low = int(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def rolling_band(values: list[float], lag: int, bounds: float) -> list[tuple[float, float] | None]:
    """Expected range from the previous ``lag`` points only (lagging), None until enough history."""
    band: list[tuple[float, float] | None] = []
    for i in range(len(values)):
        if i < lag:
            band.append(None)
            continue
        history = sorted(values[i - lag:i])
        middle = _quantile(history, 0.5)
        spread = (_quantile(history, 0.9) - _quantile(history, 0.1)) / 2
        band.append((middle - bounds * spread, middle + bounds * spread))
    return band


def draw_anomaly(values: list[float], lag: int, bounds: float, title: str, query: str, path):
    """The anomaly widget: the metric, the grey expected band, points outside it in red."""
    band = rolling_band(values, lag, bounds)
    xs = list(range(len(values)))
    known = [(x, b) for x, b in zip(xs, band) if b]
    fig, ax = style.figure(style.WIDTH_IN, 3.3)
    ax.fill_between([x for x, _ in known], [b[0] for _, b in known], [b[1] for _, b in known],
                    color="#cccccc", alpha=0.6, linewidth=0, label="expected range (approximation)")
    ax.plot(xs, values, color=style.PURPLE, linewidth=1, label="mysql.performance.cpu_time (simulated)")
    outside = [(x, v) for x, v, b in zip(xs, values, band) if b and not b[0] <= v <= b[1]]
    ax.scatter([x for x, _ in outside], [v for _, v in outside], color=style.ALERT, s=10, zorder=3,
               label=f"outside the band ({len(outside)} points)")
    ax.set_xlabel("minutes")
    ax.set_title(f"{title}\n{query}", fontsize=style.TEXT_PT, loc="left")
    ax.legend(fontsize=style.TEXT_PT, loc="upper left", frameon=False)
    style.footnote(fig, ANOMALY_NOTE)
    return style.save(fig, path)


def draw_host_map(host: str, tags: list[str], path):
    """A Host Map-like card: the host as a hexagon, its tags listed as Datadog groups them."""
    fig, ax = style.figure(7.0, 3.2)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 5)
    ax.axis("off")
    ax.add_patch(RegularPolygon((2.0, 2.5), numVertices=6, radius=1.6, orientation=0, facecolor="#3fa34d",
                                edgecolor="white", linewidth=2))
    label = host.replace("-", "-\n", 1) if len(host) > 10 and "-" in host else host  # a long name: two lines
    longest = max(len(line) for line in label.splitlines())
    ax.text(2.0, 2.5, label, ha="center", va="center", color="white", weight="bold", linespacing=1.1,
            fontsize=min(12.0, 12.0 * 10 / longest))  # ten bold characters fill the hexagon at 12 pt
    ax.text(4.2, 4.3, f"Host: {host}", fontsize=11, weight="bold")
    ax.text(4.2, 3.8, "Tags (from the Agent's datadog.yaml):", fontsize=style.TEXT_PT, color="#555555")
    for i, tag in enumerate(tags):
        ax.text(4.4, 3.2 - 0.5 * i, tag, fontsize=style.TEXT_PT, family="DejaVu Sans Mono",
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "#efe7fa", "edgecolor": "#c9b3ea"})
    ax.set_title("Host Map (preview): filter by any of these tags, e.g. " + (tags[0] if tags else "env:dev"),
                 fontsize=style.TEXT_PT, loc="left")
    style.footnote(fig, "Drawn offline from recipes/defaults.py agent.tags -- not a Datadog screenshot")
    return style.save(fig, path)


def simulated_apm_summary(seed: int, service: str) -> dict:
    """A clearly simulated stand-in for apm-demo's summary, used only when artifacts/apm-demo.json is absent."""
    rng = random.Random(seed)
    resources = {}
    for name, base in (("GET /", 2.0), ("GET /api/apm", 2.5), ("GET /api/trace", 3.0)):
        p50 = base + rng.random()
        resources[name] = {"hits": rng.randint(80, 120), "errors": 0,
                           "latency_ms": {"p50": p50, "p90": p50 * 1.8, "p95": p50 * 2.3, "p99": p50 * 3.1, "mean": p50 * 1.3,
                                          "max": p50 * 5}}
    return {"simulated": True, "services": {service: {"resources": resources}}}


def apm_resources(summary: dict, service: str, where: str) -> dict:
    """``{resource: {hits, errors, latency_ms}}`` of ``service`` in an apm-demo summary (clear error otherwise)."""
    services = summary.get("services")
    if not isinstance(services, dict) or not services:
        raise ValueError(f"{where}: no 'services' in the summary")
    info = services.get(service) or next(iter(services.values()))
    resources = info.get("resources") if isinstance(info, dict) else None
    if not resources:
        raise ValueError(f"{where}: services.{service}.resources is missing or empty")
    for name, row in resources.items():
        for field in ("hits", "errors", "latency_ms"):
            if field not in row:
                raise ValueError(f"{where}: services.{service}.resources[{name!r}] has no {field!r}")
    return resources


def _panel_kind(widget: dict) -> str:
    queries = " ".join(r.get("q", "") for r in widget.get("requests", []))
    for needle, kind in (("avg:trace.", "duration"), (".duration", "duration"), (".hits", "hits"), (".errors", "errors"),
                         ("p50:", "latency"), ("system.cpu", "cpu"), ("system.net", "network")):
        if needle in queries:
            return kind
    return "other"


def draw_apm_dashboard(widgets: list[dict], resources: dict, measured: bool, seed: int, title: str, path):
    """One panel per widget of the APM dashboard payload, in its order: APM panels from the summary's
    resources, host panels simulated."""
    names = list(resources)
    rows = math.ceil(len(widgets) / 2)
    fig, axes = style.figure(style.WIDTH_IN, 2.5 * rows, nrows=rows, ncols=2, squeeze=False)
    flat = [ax for row in axes for ax in row]
    source = "measured" if measured else "SIMULATED"
    for ax, widget in zip(flat, widgets):
        kind = _panel_kind(widget)
        quantiles = queried_quantiles(widget)
        note = _PANEL_NOTE.get(kind, "not previewed").format(source=source, quantiles=" / ".join(quantiles))
        ax.set_title(f"{widget['title']}\n({note})", fontsize=style.TEXT_PT, loc="left")
        if kind == "latency":
            _panel_latency(ax, names, resources, quantiles)
        else:
            _PANELS.get(kind, _panel_other)(ax, names, resources, seed)
        ax.tick_params(axis="x", labelsize=style.TEXT_PT)
    for ax in flat[len(widgets):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=style.TITLE_PT, x=0.01, ha="left")
    fig.tight_layout()
    style.footnote(fig, "APM panels from apm-demo's measured run (real ddtrace spans received by ddapm-test-agent); "
                        "host panels simulated -- not a Datadog screenshot"
                   if measured else "SIMULATED APM summary: artifacts/apm-demo.json was not available when this was "
                                    "drawn -- not measured, not a Datadog screenshot")
    return style.save(fig, path)


_PANEL_NOTE = {"hits": "{source}: requests per resource", "errors": "{source}: errors per resource",
               "latency": "{source}: {quantiles} per resource, ms", "duration": "{source}: mean per resource, ms",
               "cpu": "simulated", "network": "simulated"}


def _bars(ax, names, values, colour):
    ax.bar(names, values, color=colour)


def _panel_hits(ax, names, resources, seed):
    _bars(ax, names, [resources[n]["hits"] for n in names], style.PURPLE)


def _panel_errors(ax, names, resources, seed):
    errors = [resources[n]["errors"] for n in names]
    _bars(ax, names, errors, style.ALERT)
    ax.set_ylim(0, max(1, *errors) * 1.2)
    if not any(errors):
        total = sum(resources[n]["hits"] for n in names)
        ax.text(0.5, 0.5, f"0 errors in {total} requests", ha="center", va="center", transform=ax.transAxes,
                fontsize=style.TEXT_PT, color="#555555")


def queried_quantiles(widget: dict) -> list[str]:
    """The percentiles a widget's queries ask for (``p50:trace...`` -> p50), in their order."""
    found = [re.match(r"(p\d+):", request.get("q", "")) for request in widget.get("requests", [])]
    return [match[1] for match in found if match]


def _panel_latency(ax, names, resources, quantiles: list[str]):
    """The percentiles the widget queries, side by side per resource (a summary without one is refused)."""
    width = 0.8 / max(1, len(quantiles))
    colours = ["#c4b0e8", "#9b7fd1", style.PURPLE, "#5e35b1"]
    for offset, quantile in enumerate(quantiles):
        missing = [n for n in names if quantile not in resources[n]["latency_ms"]]
        if missing:
            raise ValueError(f"the summary has no {quantile} latency for {', '.join(missing)}: run ./run apm-demo --save")
        centre = offset - (len(quantiles) - 1) / 2
        ax.bar([p + centre * width for p in range(len(names))], [resources[n]["latency_ms"][quantile] for n in names],
               width, label=quantile, color=colours[offset % len(colours)])
    ax.set_xticks(list(range(len(names))))
    ax.set_xticklabels(names)
    ax.legend(fontsize=style.TEXT_PT, loc="upper left", framealpha=0.9, edgecolor="none")


def _panel_duration(ax, names, resources, seed):
    _bars(ax, names, [resources[n]["latency_ms"].get("mean", resources[n]["latency_ms"].get("p50", 0))
                      for n in names], "#9b7fd1")


def _panel_cpu(ax, names, resources, seed):
    user = host_cpu(seed, 60)
    system = [v * 0.35 for v in host_cpu(seed + 1, 60)]
    ax.stackplot(range(60), user, system, colors=["#9b7fd1", "#c4b0e8"], labels=["user %", "system %"])
    ax.legend(fontsize=style.TEXT_PT, frameon=False, loc="upper right")
    ax.set_xlabel("minutes", fontsize=style.TEXT_PT)


def _panel_network(ax, names, resources, seed):
    rng = random.Random(seed)
    ax.plot([1500 + rng.gauss(0, 200) for _ in range(60)], color=style.PURPLE, label="bytes_rcvd/s")
    ax.plot([4200 + rng.gauss(0, 500) for _ in range(60)], color="#26a69a", label="bytes_sent/s")
    ax.legend(fontsize=style.TEXT_PT, frameon=False, loc="center right")
    ax.set_xlabel("minutes", fontsize=style.TEXT_PT)


def _panel_other(ax, names, resources, seed):
    ax.text(0.5, 0.5, "no preview for this widget", ha="center", va="center", transform=ax.transAxes, fontsize=style.TEXT_PT)


_PANELS = {"hits": _panel_hits, "errors": _panel_errors, "duration": _panel_duration,
           "cpu": _panel_cpu, "network": _panel_network}


def host_cpu(seed: int, minutes: int) -> list[float]:
    rng = random.Random(seed)
    return [max(0.0, 6 + 3 * math.sin(m / 9) + rng.gauss(0, 1.2)) for m in range(minutes)]
