"""Traffic generator for the exercise's app: concurrent, keep-alive, with per-route latency percentiles.

The write-up's loop opened a new connection for every request to a hard-coded NAT address.
This one takes the target and routes as options, runs N threads that each keep one HTTP
connection open (``app.http_client``: a lean keep-alive client for http, urllib3 for https),
stops after a number of requests or a duration, and reports per route: requests, status
codes, errors, p50/p90/p99 latency.

    python -m app.traffic http://127.0.0.1:5050 -n 300 -c 4 [--json] [--no-keepalive]

Exit codes: 0 all requests answered below 500, 1 some errors, 2 target unreachable or bad input.
"""

import argparse
import itertools
import json
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import urllib3
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.http_client import KeepAliveClient, ProtocolError, Urllib3Client
from app.stats import summarize

DEFAULT_URL = "http://127.0.0.1:5050"
DEFAULT_ROUTES = ("/", "/api/apm", "/api/trace")


class TargetUnreachable(Exception):
    """The target refused or dropped the connection before any request was sent."""


@dataclass(frozen=True)
class Plan:
    """What to send: base URL, routes taken in turn, bounds, concurrency and connection reuse."""

    url: str = DEFAULT_URL
    routes: tuple[str, ...] = DEFAULT_ROUTES
    requests: int = 300  # 0 = no count bound (then duration must be set)
    duration: float = 0.0  # seconds; 0 = no time bound
    concurrency: int = 4
    keepalive: bool = True
    timeout: float = 5.0

    def __post_init__(self):
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url: expected http(s)://host[:port], got {self.url!r}")
        if not self.routes or not all(r.startswith("/") for r in self.routes):
            raise ValueError(f"routes: each must start with '/', got {list(self.routes)}")
        if self.requests < 0 or self.duration < 0:
            raise ValueError("requests and duration must not be negative")
        if not self.requests and not self.duration:
            raise ValueError("bound the run: give requests > 0, or a duration > 0, or both")
        if self.concurrency < 1:
            raise ValueError(f"concurrency: must be at least 1, got {self.concurrency}")

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True, slots=True)
class Sample:
    route: str
    status: int | None
    error: str | None
    seconds: float


@dataclass
class Report:
    """The samples of one run and what they add up to."""

    plan: Plan
    elapsed: float
    samples: list[Sample] = field(default_factory=list)
    connections: int = 0

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if is_error(s))

    @property
    def rate(self) -> float:
        return len(self.samples) / self.elapsed if self.elapsed else 0.0

    def by_route(self) -> dict[str, dict]:
        rows = {}
        for route in self.plan.routes:
            mine = [s for s in self.samples if s.route == route]
            rows[route] = route_summary(mine)
        return rows

    def to_dict(self) -> dict:
        return {
            "plan": asdict(self.plan),
            "elapsed_s": round(self.elapsed, 4),
            "requests": len(self.samples),
            "errors": self.errors,
            "requests_per_s": round(self.rate, 1),
            "connections_opened": self.connections,
            "latency_ms": ms(summarize([s.seconds for s in self.samples])),
            "routes": self.by_route(),
        }


def is_error(sample: Sample) -> bool:
    return sample.error is not None or (sample.status or 0) >= 500


def ms(summary: dict[str, float]) -> dict[str, float]:
    return {k: round(v * 1000, 3) for k, v in summary.items()}


def route_summary(samples: list[Sample]) -> dict:
    return {
        "requests": len(samples),
        "statuses": dict(sorted(Counter(str(s.status) for s in samples if s.status).items())),
        "errors": sum(1 for s in samples if is_error(s)),
        "error_kinds": dict(Counter(s.error for s in samples if s.error)),
        "latency_ms": ms(summarize([s.seconds for s in samples])),
    }


def check_reachable(plan: Plan) -> None:
    """Open and close one TCP connection (no HTTP request, so the access log is untouched)."""
    host, port = plan.address
    try:
        socket.create_connection((host, port), timeout=plan.timeout).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise TargetUnreachable(f"cannot connect to {host}:{port} ({reason}); is the app running there?") from None


class Run:
    """Worker threads sharing one ticket counter; each keeps its own connection."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.tickets = itertools.count()
        self.stop = threading.Event()
        self.per_thread: list[list[Sample]] = [[] for _ in range(plan.concurrency)]
        self.opened: list[int] = []  # one item per TCP connection opened (list.append is atomic)
        self.finished: list[float] = []  # each worker's end time: elapsed does not include polling delays
        self.deadline = 0.0

    def done(self) -> int:
        return sum(len(samples) for samples in self.per_thread)

    def next_route(self) -> str | None:
        ticket = next(self.tickets)  # atomic under the GIL
        if self.stop.is_set() or (self.plan.requests and ticket >= self.plan.requests):
            return None
        if self.deadline and time.perf_counter() >= self.deadline:
            return None
        return self.plan.routes[ticket % len(self.plan.routes)]

    def client(self):
        def on_connect():
            self.opened.append(1)

        if urlsplit(self.plan.url).scheme == "https":
            return Urllib3Client(self.plan.url, self.plan.timeout, self.plan.keepalive, on_connect)
        host, port = self.plan.address
        return KeepAliveClient(host, port, self.plan.timeout, self.plan.keepalive, on_connect)

    def worker(self, out: list[Sample]) -> None:
        client = self.client()
        prefix = urlsplit(self.plan.url).path.rstrip("/")
        clock = time.perf_counter
        while (route := self.next_route()) is not None:
            start = clock()
            try:
                status, error = client.get(prefix + route), None
            except (OSError, ProtocolError, urllib3.exceptions.HTTPError) as exc:
                status, error = None, error_kind(exc)
                client.close()
            out.append(Sample(route, status, error, clock() - start))
        self.finished.append(clock())
        client.close()

    def start(self) -> list[threading.Thread]:
        if self.plan.duration:
            self.deadline = time.perf_counter() + self.plan.duration
        threads = [threading.Thread(target=self.worker, args=(out,), daemon=True) for out in self.per_thread]
        for thread in threads:
            thread.start()
        return threads


def error_kind(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return type(reason or exc).__name__


def run(plan: Plan, progress: Progress | None = None) -> Report:
    """Send the planned traffic and return the report (Ctrl-C stops early and keeps what was measured)."""
    job = Run(plan)
    task = progress.add_task("requests", total=plan.requests or None) if progress else None
    started = time.perf_counter()
    threads = job.start()
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.1)
            if progress:
                progress.update(task, completed=job.done())
    except KeyboardInterrupt:
        job.stop.set()
        for thread in threads:
            thread.join()
    elapsed = max(job.finished, default=time.perf_counter()) - started
    if progress:
        progress.update(task, completed=job.done())
    samples = [s for out in job.per_thread for s in out]
    return Report(plan, elapsed, samples, len(job.opened))


def make_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]traffic"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def render(report: Report) -> Table:
    """Per-route table: requests, statuses, errors, latency percentiles in milliseconds."""
    table = Table(title=f"Traffic to {report.plan.url}")
    for name in ("route", "reqs", "statuses", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"):
        left = name in ("route", "statuses")
        table.add_column(name, justify="left" if left else "right", no_wrap=name == "route")
    rows = list(report.by_route().items())
    rows.append(("all", route_summary(report.samples)))
    for route, row in rows:
        lat = row["latency_ms"]
        statuses = " ".join(f"{code}x{n}" for code, n in row["statuses"].items())
        kinds = " ".join(f"{kind}x{n}" for kind, n in row["error_kinds"].items())
        table.add_row(
            route, str(row["requests"]), " ".join(filter(None, [statuses, kinds])) or "-",
            str(row["errors"]), *(f"{lat[k]:.2f}" if lat else "-" for k in ("p50", "p90", "p99", "max")),
            end_section=route == rows[-2][0],
        )
    table.caption = (
        f"{len(report.samples)} requests in {report.elapsed:.2f} s = {report.rate:.0f} req/s, "
        f"concurrency {report.plan.concurrency}, {report.connections} connection(s) opened"
        f" (keep-alive {'on' if report.plan.keepalive else 'off'})"
    )
    return table


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.traffic", description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=DEFAULT_URL, help=f"base URL of the app (default {DEFAULT_URL})")
    parser.add_argument("-r", "--route", action="append", dest="routes", help="route to hit; repeat (default: the three)")
    parser.add_argument("-n", "--requests", type=int, default=300, help="total requests, 0 = unbounded (default 300)")
    parser.add_argument("-d", "--duration", type=float, default=0.0, help="stop after this many seconds (default: none)")
    parser.add_argument("-c", "--concurrency", type=int, default=4, help="threads, one connection each (default 4)")
    parser.add_argument("--no-keepalive", action="store_true", help="send Connection: close (new connection per request)")
    parser.add_argument("--timeout", type=float, default=5.0, help="connect/read timeout per request in seconds")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def plan_from_args(args: argparse.Namespace) -> Plan:
    return Plan(
        url=args.url, routes=tuple(args.routes or DEFAULT_ROUTES), requests=args.requests,
        duration=args.duration, concurrency=args.concurrency, keepalive=not args.no_keepalive, timeout=args.timeout,
    )


def execute(plan: Plan, as_json: bool = False, quiet: bool = False, console: Console | None = None,
            show: bool = True) -> Report:
    """Run the plan with a progress bar on stderr, print the table (or JSON on stdout) if show, return the report."""
    err = Console(stderr=True)
    out = console or Console()
    check_reachable(plan)
    if quiet:
        report = run(plan)
    else:
        with make_progress(err) as progress:
            report = run(plan, progress)
    if show and as_json:
        print(json.dumps(report.to_dict(), indent=2))
    elif show:
        out.print(render(report))
    return report


def main(argv=None) -> int:
    args = parse_args(argv)
    err = Console(stderr=True)
    try:
        report = execute(plan_from_args(args), args.json, args.quiet)
    except ValueError as exc:
        err.print(f"[red]bad option[/red]: {exc}")
        return 2
    except TargetUnreachable as exc:
        err.print(f"[red]target unreachable[/red]: {exc}")
        return 2
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
