"""What Datadog's APM service page would show, computed from the traces the agent received.

A *service* is one program seen from outside: here the Flask app, named by ``DD_SERVICE``.
A *resource* is one action of that service: for a web service, one route with its method
(``GET /api/apm``). The page lists a service's resources with hits, errors and latency; those
figures come from each trace's root span (``flask.request`` here).
"""

import re
from collections import defaultdict

from rich.console import Group
from rich.table import Table
from rich.text import Text

from app.stats import summarize

ROOT_SPAN = "flask.request"
LOG_IDS = re.compile(r"dd\.trace_id=(\w+) dd\.span_id=(\d+)")


def root_spans(traces: list[list[dict]]) -> list[dict]:
    """The root span of each trace (no parent)."""
    return [span for trace in traces for span in trace if not span.get("parent_id")]


def full_trace_id(trace: list[dict]) -> str:
    """The trace id as ddtrace writes it in logs: 128-bit as 32 hex digits, 64-bit as decimal.

    Spans carry the low 64 bits; the high 64 bits travel once per trace, in the root's ``_dd.p.tid``.
    """
    low = int(trace[0]["trace_id"])
    high = next((s["meta"]["_dd.p.tid"] for s in trace if "_dd.p.tid" in s.get("meta", {})), "0")
    return f"{(int(high, 16) << 64) | low:032x}" if int(high, 16) else str(low)


def summarize_resource(spans: list[dict]) -> dict:
    durations_ms = [span["duration"] / 1e6 for span in spans]
    return {
        "hits": len(spans),
        "errors": sum(1 for span in spans if span.get("error")),
        "latency_ms": {k: round(v, 3) for k, v in summarize(durations_ms).items()},
    }


def service_page(traces: list[list[dict]]) -> dict:
    """{service: {env, version, root_span, resources: {resource: {hits, errors, latency_ms}}}}."""
    grouped: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for span in root_spans(traces):
        grouped[span["service"]][span["resource"]].append(span)
    page = {}
    for service, resources in sorted(grouped.items()):
        sample = next(iter(resources.values()))[0]
        page[service] = {
            "env": sample.get("meta", {}).get("env", ""),
            "version": sample.get("meta", {}).get("version", ""),
            "root_span": sample["name"],
            "resources": {name: summarize_resource(spans) for name, spans in sorted(resources.items())},
        }
    return page


def timeline(traces: list[list[dict]], bucket_s: float = 1.0) -> list[dict]:
    """Hits per resource and p50/p90 latency per time bucket, from the root spans (for dashboard pictures)."""
    roots = [span for span in root_spans(traces) if span.get("name") == ROOT_SPAN]
    if not roots:
        return []
    start = min(span["start"] for span in roots)
    buckets: dict[int, list[dict]] = defaultdict(list)
    for span in roots:
        buckets[int((span["start"] - start) / 1e9 / bucket_s)].append(span)
    rows = []
    for index in range(max(buckets) + 1):
        spans = buckets.get(index, [])
        latency = summarize([span["duration"] / 1e6 for span in spans])
        hits: dict[str, int] = defaultdict(int)
        for span in spans:
            hits[span["resource"]] += 1
        rows.append({"t_s": round(index * bucket_s, 3), "hits": dict(sorted(hits.items())),
                     "errors": sum(1 for span in spans if span.get("error")),
                     "p50_ms": round(latency.get("p50", 0.0), 3), "p90_ms": round(latency.get("p90", 0.0), 3)})
    return rows


def log_correlation(log_text: str, traces: list[list[dict]]) -> dict:
    """How many app log lines carry ids, and how many of those match a span the agent received."""
    known = {(full_trace_id(trace), str(span["span_id"])) for trace in traces for span in trace}
    pairs = LOG_IDS.findall(log_text)
    return {"lines_with_ids": len(pairs), "matching_received_spans": sum(1 for pair in pairs if pair in known)}


def render(page: dict) -> Group:
    """One table per service, then the service-vs-resource answer drawn from the same numbers."""
    parts = []
    for service, info in page.items():
        table = Table(title=f"APM service page: service [bold]{service}[/] (env {info['env']}, version {info['version']})")
        for name in ("resource", "hits", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"):
            table.add_column(name, justify="left" if name == "resource" else "right", no_wrap=name == "resource")
        for resource, row in info["resources"].items():
            lat = row["latency_ms"]
            table.add_row(resource, str(row["hits"]), str(row["errors"]),
                          *(f"{lat[k]:.2f}" for k in ("p50", "p90", "p99", "max")))
        parts += [table, Text(explain(service, info)), Text("")]
    return Group(*parts)


def explain(service: str, info: dict) -> str:
    resources = info["resources"]
    hits = sum(r["hits"] for r in resources.values())
    names = ", ".join(resources)
    return (
        f"Service vs resource: `{service}` is the service, the whole Flask program ({hits} requests, "
        f"each a trace whose root span is `{info['root_span']}`). Its {len(resources)} resources ({names}) "
        "are the individual actions it performs: the page ranks them by hits, errors and latency so you "
        "see which endpoint is slow or failing, while the service aggregates them all."
    )
