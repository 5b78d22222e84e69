"""Benchmark (not a test): our generator vs the write-up's loop vs wrk, against the same gunicorn app.

For each server mode (plain gunicorn, gunicorn under ddtrace-run sending to ddapm-test-agent),
the three clients run one after the other for the same duration at the same concurrency; the
app is warmed up first. Prints a markdown table and saves it to docs/snippets/apm-benchmark.md.

By default (when the OS can pin and at least 2 CPUs are allowed) the server side (gunicorn
master + workers, and the test agent) runs on one CPU and every client (ours, the write-up loop,
wrk) on another, so each client has the same dedicated core and the server the same core:
the comparison then asks "is the generator the bottleneck", not "who takes more CPU from the
app". ``--no-pin`` keeps the old shared-cores mode.

    uv run python bench/apm_bench.py [--duration 10] [--concurrency 4] [--rounds 3] [--no-pin] [--no-save]
"""

import argparse
import datetime
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # the write-up's client

from app import processes
from app.demo import DemoSettings, agent_argv, app_env
from app.stats import summarize
from app.traffic import DEFAULT_ROUTES, Plan, run

SNIPPET = ROOT / "docs/snippets/apm-benchmark.md"
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Pinning:
    """One CPU for the server side, another for the client under test."""

    server_cpu: int
    client_cpu: int


def pinning_available() -> Pinning | None:
    """The first two CPUs this process may use, or None if the OS cannot pin or allows fewer than 2."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return Pinning(cpus[0], cpus[1]) if len(cpus) >= 2 else None


@contextmanager
def affinity(cpus: set[int] | None):
    """Run the block with this thread on `cpus` (children and new threads inherit it), then restore."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def allowed_cpus(pid: int) -> str:
    """The kernel's view of a process's CPU list, e.g. "0" or "0-1"."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (gunicorn's workers), from /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(current := todo.pop())
        todo += children.get(current, [])
    return tree


def check_server_pinned(started: list, cpu: int) -> None:
    """Fail loudly if any server-side process (master, workers, agent) is not on exactly `cpu`."""
    for proc in started:
        for pid in process_tree(proc.pid):
            try:
                cpus = allowed_cpus(pid)
            except OSError:
                continue  # exited meanwhile
            if cpus != str(cpu):
                raise RuntimeError(f"{proc.name} pid {pid} runs on CPUs {cpus}, expected only {cpu}")


def start_server(workdir: Path, traced: bool, started: list) -> str:
    """gunicorn (gthread, keep-alive) on a free port; under ddtrace-run with a test agent if traced."""
    port = processes.free_port()
    env = {"APM_BIND": HOST, "APM_PORT": str(port)}
    argv = [processes.venv_tool("gunicorn"), "-c", "gunicorn_conf.py", "my_app:app"]
    if traced:
        agent_port = processes.free_port()
        agent = processes.start("ddapm-test-agent", agent_argv(agent_port), workdir / "agent.log")
        started.append(agent)
        processes.wait_port(agent, HOST, agent_port)
        env = app_env(DemoSettings(), agent_port, port)
        argv = [processes.venv_tool("ddtrace-run"), *argv]
    server = processes.start("gunicorn", argv, workdir / f"server-{'traced' if traced else 'plain'}.log",
                             env=env, cwd=ROOT / "app")
    started.append(server)
    processes.wait_port(server, HOST, port, timeout=60)
    return f"http://{HOST}:{port}"


def client_cpu(fn):
    """Wrap a client: add its CPU per request and its CPU as % of one core (this process, or its child for wrk)."""

    def measured(url: str, duration: float, concurrency: int) -> dict:
        before, wall = cpu_seconds(), time.perf_counter()
        result = fn(url, duration, concurrency)
        used = cpu_seconds() - before
        result["cpu_us"] = used / max(1, result["requests"]) * 1e6
        result["cpu_busy"] = used / (time.perf_counter() - wall) * 100  # % of one core
        return result

    return measured


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ours(url: str, duration: float, concurrency: int) -> dict:
    report = run(Plan(url=url, requests=0, duration=duration, concurrency=concurrency))
    return row(len(report.samples), report.elapsed, [s.seconds for s in report.samples], report.connections,
               report.errors)


def writeup_loop(url: str, duration: float, concurrency: int) -> dict:
    """The write-up's client: requests.get per request (a new connection each time), in N threads."""
    deadline = time.perf_counter() + duration
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0]

    def loop(out):
        i = 0
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                requests.get(url + DEFAULT_ROUTES[i % 3], timeout=5)
            except requests.RequestException:
                errors[0] += 1
            out.append(time.perf_counter() - start)
            i += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(out,)) for out in latencies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples = [s for out in latencies for s in out]
    return row(len(samples), time.perf_counter() - started, samples, len(samples), errors[0])


WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, duration: float, concurrency: int) -> dict:
    out = subprocess.run(  # one thread per connection, like our generator
        ["wrk", "-t", str(concurrency), "-c", str(concurrency), "-d", f"{duration:g}s", "--latency",
         "-s", str(ROOT / "bench/wrk_routes.lua"), url],
        capture_output=True, text=True, check=True, timeout=duration + 30,
    ).stdout
    pct = {p: float(v) * WRK_UNITS[u] for p, v, u in re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)}
    total = int(re.search(r"(\d+) requests in", out)[1])
    errors = sum(map(int, re.findall(r"(?:connect|read|write|timeout) (\d+)", out)))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"requests": total, "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
            "p50": pct["50"], "p90": pct["90"], "p99": pct["99"], "connections": concurrency,
            "errors": errors + (int(non2xx[1]) if non2xx else 0)}


def row(total: int, elapsed: float, seconds: list[float], connections: int, errors: int) -> dict:
    lat = summarize(seconds)
    return {"requests": total, "rate": total / elapsed, "p50": lat["p50"] * 1e3, "p90": lat["p90"] * 1e3,
            "p99": lat["p99"] * 1e3, "connections": connections, "errors": errors}


CLIENTS = {name: client_cpu(fn) for name, fn in
           {"our generator (keep-alive)": ours, "write-up loop (requests.get)": writeup_loop, "wrk": wrk}.items()}


def bench(duration: float, concurrency: int, rounds: int, workdir: Path,
          pin: Pinning | None = None) -> list[tuple[str, str, dict]]:
    """Per server mode, `rounds` rounds of the three clients in rotating order; median of each figure.

    With `pin`, the server side is started on pin.server_cpu (gunicorn forks its workers later,
    they inherit it) and the clients run on pin.client_cpu: our generator and the write-up loop
    are threads of this process, wrk is its child, so all three inherit this thread's affinity.
    """
    results = []
    for traced in (False, True):
        server = "ddtrace-run gunicorn" if traced else "gunicorn"
        started: list = []
        try:
            with affinity({pin.server_cpu} if pin else None):
                url = start_server(workdir, traced, started)
            with affinity({pin.client_cpu} if pin else None):
                run(Plan(url=url, requests=300, concurrency=concurrency))  # warm-up: imports, first-request costs
                if pin:
                    check_server_pinned(started, pin.server_cpu)
                measured = measure(url, server, duration, concurrency, rounds)
            results += [(server, name, {**median_row(rows), **paired(rows, measured["wrk"])})
                        for name, rows in measured.items()]
        finally:
            for proc in reversed(started):
                processes.stop(proc)
    return results


def measure(url: str, server: str, duration: float, concurrency: int, rounds: int) -> dict[str, list[dict]]:
    measured = {name: [] for name in CLIENTS}
    names = list(CLIENTS)
    for round_no in range(rounds):
        for name in names[round_no % 3:] + names[:round_no % 3]:  # rotate: no client always goes first
            time.sleep(0.5)
            measured[name].append(CLIENTS[name](url, duration, concurrency))
            print(f"  {server:<21} {name:<30} {measured[name][-1]['rate']:8.0f} req/s", file=sys.stderr)
    return measured


def median_row(rows: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rows) for key in rows[0]}


def paired(rows: list[dict], wrk_rows: list[dict]) -> dict:
    """The client's rate over wrk's in the same round (seconds apart): the machine's noise shows as the spread."""
    ratios = [r["rate"] / w["rate"] * 100 for r, w in zip(rows, wrk_rows)]
    return {"paired": statistics.median(ratios), "paired_min": min(ratios), "paired_max": max(ratios)}


# The figures of one client run, in the order of the table's rows: label, format.
FIGURES = [("req/s", "{rate:.0f}"), ("vs wrk", "{vs_wrk:.0f}%"),
           ("vs wrk in the same round: median (min-max)", "{paired:.0f}% ({paired_min:.0f}-{paired_max:.0f}%)"),
           ("p50 ms", "{p50:.2f}"), ("p90 ms", "{p90:.2f}"), ("p99 ms", "{p99:.2f}"),
           ("client CPU µs/req", "{cpu_us:.0f}"), ("client CPU % of a core", "{cpu_busy:.0f}%"),
           ("connections opened", "{connections:.0f}"), ("errors", "{errors:.0f}")]


def tables(results) -> list[str]:
    """One table per server, a column per client, a row per figure: narrow enough for a phone screen."""
    wrk_rate = {server: r["rate"] for server, client, r in results if client == "wrk"}
    lines: list[str] = []
    for server in dict.fromkeys(server for server, _, _ in results):
        runs = [(client, {**r, "vs_wrk": r["rate"] / wrk_rate[server] * 100}) for s, client, r in results if s == server]
        lines += [f"| {server} | " + " | ".join(client for client, _ in runs) + " |",
                  "|---|" + "---:|" * len(runs)]
        lines += [f"| {label} | " + " | ".join(fmt.format(**r) for _, r in runs) + " |" for label, fmt in FIGURES]
        lines.append("")
    return lines


def markdown(results, duration: float, concurrency: int, rounds: int, pin: Pinning | None) -> str:
    return "\n".join([*tables(results), method(results, duration, concurrency, rounds, pin), "", verdict(results)]) + "\n"


def method(results, duration: float, concurrency: int, rounds: int, pin: Pinning | None) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    command = f"uv run python bench/apm_bench.py --duration {duration:g} --concurrency {concurrency} --rounds {rounds}"
    if pin:
        placement = (
            f"pinned with `sched_setaffinity` and checked in `/proc/PID/status`: the server side (gunicorn master "
            f"and workers; under ddtrace-run also ddapm-test-agent) only on CPU {pin.server_cpu}, each client "
            f"(ours, the write-up loop, wrk) in turn only on CPU {pin.client_cpu}. Every client thus gets the same "
            "dedicated core and the server the same single core; a client near 100% \"CPU % of a core\" would be "
            "the bottleneck itself"
        )
    else:
        command += " --no-pin"
        placement = (
            f"not pinned: client and server share {os.cpu_count()} cores, so the ratios partly measure how much "
            "CPU each client takes from the app"
        )
    return (
        f"Measured {when} with `{command}`; {placement}. The machine is shared with other work (load average "
        f"{os.getloadavg()[0]:.1f} at the end; pinning reserves nothing against it): read the ratios within one "
        "run, not req/s across runs. gunicorn: 2 `gthread` workers x 4 threads, keep-alive "
        "(`app/gunicorn_conf.py`); the three routes in turn; 300 warm-up requests per server, then "
        f"{rounds} rounds of {duration:g} s per client at concurrency {concurrency} in rotating order, medians "
        "shown. Percentiles are nearest-rank (wrk's from its own histogram); wrk's \"connections opened\" is its `-c`."
    )


def verdict(results) -> str:
    """Our generator against the issue's goal: within 10% of wrk at the same concurrency."""
    wrk_rate = {server: r["rate"] for server, client, r in results if client == "wrk"}
    parts = []
    for server, client, r in results:
        if client.startswith("our generator"):
            ratio = r["rate"] / wrk_rate[server]
            parts.append(f"{server} {ratio * 100:.0f}% of wrk, {r['paired']:.0f}% in the same round "
                         f"({'met' if min(ratio, r['paired'] / 100) >= 0.9 else 'NOT met'})")
    return "Goal \"our generator within 10% of wrk\" (at least 90% of wrk's req/s): " + "; ".join(parts) + "."


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per client (default 10)")
    parser.add_argument("--concurrency", type=int, default=4, help="connections/threads per client (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client, medians reported (default 3)")
    parser.add_argument("--pin", action=argparse.BooleanOptionalAction, default=None,
                        help="server on one CPU, each client on another (default: on if the OS can pin "
                             "and >= 2 CPUs are allowed); --no-pin shares all cores")
    parser.add_argument("--no-save", action="store_true", help=f"do not write {SNIPPET.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    if args.duration < 1 or args.duration != int(args.duration):
        print(f"--duration: wrk takes whole seconds >= 1, got {args.duration:g}", file=sys.stderr)
        return 2
    pin = pinning_available() if args.pin is not False else None
    if args.pin and pin is None:
        print("--pin: this OS cannot pin CPUs or fewer than 2 CPUs are allowed", file=sys.stderr)
        return 2
    print(f"pinning: server CPU {pin.server_cpu}, clients CPU {pin.client_cpu}" if pin else "pinning: off",
          file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="apm-bench-"))
    try:
        results = bench(args.duration, args.concurrency, args.rounds, workdir, pin)
        table = markdown(results, args.duration, args.concurrency, args.rounds, pin)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(table)
    if not args.no_save:
        SNIPPET.parent.mkdir(parents=True, exist_ok=True)
        SNIPPET.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
