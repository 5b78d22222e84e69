"""Benchmark (not a test): our generator vs the write-up's loop vs wrk, against the same gunicorn app.

For each server mode (plain gunicorn, gunicorn under ddtrace-run sending to ddapm-test-agent),
the three clients run one after the other for the same duration at the same concurrency; the
app is warmed up first. Prints a markdown table and saves it to docs/snippets/apm-benchmark.md.

    uv run python bench/apm_bench.py [--duration 10] [--concurrency 4] [--no-save]
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
    """Wrap a client: add the CPU seconds it used per request (this process, or its child for wrk)."""

    def measured(url: str, duration: float, concurrency: int) -> dict:
        before = cpu_seconds()
        result = fn(url, duration, concurrency)
        result["cpu_us"] = (cpu_seconds() - before) / max(1, result["requests"]) * 1e6
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


def bench(duration: float, concurrency: int, rounds: int, workdir: Path) -> list[tuple[str, str, dict]]:
    """Per server mode, `rounds` rounds of the three clients in rotating order; median of each figure."""
    results = []
    for traced in (False, True):
        server = "ddtrace-run gunicorn" if traced else "gunicorn"
        started: list = []
        try:
            url = start_server(workdir, traced, started)
            run(Plan(url=url, requests=300, concurrency=concurrency))  # warm-up: imports, first-request costs
            measured = {name: [] for name in CLIENTS}
            names = list(CLIENTS)
            for round_no in range(rounds):
                for name in names[round_no % 3:] + names[:round_no % 3]:  # rotate: no client always goes first
                    time.sleep(0.5)
                    measured[name].append(CLIENTS[name](url, duration, concurrency))
                    print(f"  {server:<21} {name:<30} {measured[name][-1]['rate']:8.0f} req/s", file=sys.stderr)
            results += [(server, name, median_row(rows)) for name, rows in measured.items()]
        finally:
            for proc in reversed(started):
                processes.stop(proc)
    return results


def median_row(rows: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rows) for key in rows[0]}


def markdown(results, duration: float, concurrency: int, rounds: int) -> str:
    wrk_rate = {server: r["rate"] for server, client, r in results if client == "wrk"}
    lines = [
        "| server | client | req/s | vs wrk | p50 ms | p90 ms | p99 ms | client CPU µs/req | connections opened | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for server, client, r in results:
        lines.append(
            f"| {server} | {client} | {r['rate']:.0f} | {r['rate'] / wrk_rate[server] * 100:.0f}% | "
            f"{r['p50']:.2f} | {r['p90']:.2f} | {r['p99']:.2f} | {r['cpu_us']:.0f} | {r['connections']:.0f} | "
            f"{r['errors']:.0f} |"
        )
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    method = (
        f"Measured {when} with `uv run python bench/apm_bench.py --duration {duration:g} --concurrency {concurrency} "
        f"--rounds {rounds}`: {os.cpu_count()} cores shared by client and server (load average "
        f"{os.getloadavg()[0]:.1f} at the end; other work shares this machine), gunicorn with 2 `gthread` workers x 4 "
        "threads and keep-alive (`app/gunicorn_conf.py`), the three routes in turn, a warm-up of 300 requests "
        f"per server, then {rounds} rounds of {duration:g} s per client at concurrency {concurrency} in rotating "
        "order; each figure is the median over the rounds. Latency percentiles are nearest-rank (wrk's come "
        "from its own histogram); for wrk, \"connections opened\" is its connection count. Client and server "
        "share the cores, so the client's CPU per request is what it takes away from the app: on a busy "
        "machine that figure is steadier than req/s."
    )
    return "\n".join([*lines, "", method]) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per client (default 10)")
    parser.add_argument("--concurrency", type=int, default=4, help="connections/threads per client (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per client, medians reported (default 3)")
    parser.add_argument("--no-save", action="store_true", help=f"do not write {SNIPPET.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="apm-bench-"))
    try:
        results = bench(args.duration, args.concurrency, args.rounds, workdir)
        table = markdown(results, args.duration, args.concurrency, args.rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(table)
    if not args.no_save:
        SNIPPET.parent.mkdir(parents=True, exist_ok=True)
        SNIPPET.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
