"""Benchmark (not a test): `./run setup` against its floor, on fresh Debian test hosts (needs root).

The floor is the same package work done directly on a fresh guest, as root, without SSH and without the
runbook: install what the box lacks from Debian in one transaction, import the signing key, write the
Agent's source, fetch that source's lists, install the Agent, restart the database server once (for the
drop-in), write a datadog.yaml and restart the Agent once. Everything else `setup` does (state reads, file writes,
the user and grants, ACLs, the queries) and everything it costs (Python, SSH round trips) is the distance to the
floor. Both install the STAND-IN Agent package of the real one's size, file count and maintainer-script work
(tests/testhost/realsize.py), served by the local stand-in of Datadog's apt repository.

In each round, on fresh hosts and in alternating order, for 1, 4 and 16 hosts at once: the floor, then `setup`
(its first run, then 5 no-change re-runs, and on 1 host 5 dry runs: the median of the five counts). SSH
connections and sessions are counted from each guest's sshd log (LogLevel VERBOSE); the runner's CPU is the `invoke` process's user + system time.
Prints markdown tables and saves them to docs/snippets/vm-benchmark.md.

    sudo uv run python bench/vm_bench.py [--rounds 1] [--flavour bookworm] [--hosts 1,4,16] [--no-save]
    ./run bench-vm                       # the same, through invoke
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recipes.defaults import CONFIG  # noqa: E402  the same package names as setup's
from tests.testhost import realsize, standin_apt_repo, start_hosts, stop_hosts  # noqa: E402

SNIPPET = ROOT / "docs/snippets/vm-benchmark.md"
STANDIN_API_KEY = "standin0123456789abcdef01234567"  # a stand-in key: nothing here talks to Datadog
# The targets of issue 30, as ratios and figures from one run.
TARGETS = {"first": 1.15, "rerun_s": 0.6, "dry_s": 0.6, "rerun_16_vs_1": 2.0, "listing": 1.3}
RERUN_BEFORE_S = 1.06  # the no-change re-run when issue 30 was filed
HOST_COUNTS = (1, 4, 16)
RERUNS = 5  # no-change re-runs and dry runs per round and host count; their median counts
# What a host fills once it has installed the real-size package: the image's copy, the package installed, its
# .deb in apt's cache, and dpkg's unpacking room. 16 hosts of it do not fit in this machine's RAM (they go to disk).
ROOM_PER_HOST = 1.5e9 + 2 * (realsize.INSTALLED_BYTES + realsize.DEB_BYTES)

FLOOR_SCRIPT = r"""set -e
export DEBIAN_FRONTEND=noninteractive
need=""
for p in gnupg curl ca-certificates acl; do
  dpkg-query -W -f='${db:Status-Status}' $p 2>/dev/null | grep -qx installed || need="$need $p"
done
server=mariadb
if command -v mysqld >/dev/null; then server=mysql; elif ! command -v mariadbd >/dev/null; then need="$need SERVER_PACKAGE"; fi
[ -z "$need" ] || apt-get install -q -y $need >/dev/null
curl -fsSL KEY_URL | gpg --dearmor > /usr/share/keyrings/datadog-archive-keyring.gpg
echo "deb [signed-by=/usr/share/keyrings/datadog-archive-keyring.gpg] REPO_URL stable 7" > /etc/apt/sources.list.d/datadog.list
apt-get update -q -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/datadog.list -o Dir::Etc::sourceparts=- \
  -o APT::Get::List-Cleanup=0 >/dev/null
apt-get install -q -y AGENT_PACKAGES >/dev/null
service $server restart >/dev/null
printf 'api_key: STANDIN\nsite: datadoghq.com\n' > /etc/datadog-agent/datadog.yaml
service datadog-agent restart >/dev/null
"""


@dataclass
class Run:
    seconds: float
    cpu: float = 0.0
    engine: float = 0.0  # the run's own figure ("N host(s) in X s"): from the first connection to the summary
    sessions: list[int] = field(default_factory=list)  # per host
    connections: list[int] = field(default_factory=list)
    machine: float = 0.0  # CPU seconds the whole machine spent meanwhile (runner, guests, sshd, everything)
    steal: float = 0.0  # seconds the hypervisor gave the machine's CPUs to other guests meanwhile


def machine_cpu() -> tuple[float, float]:
    """The machine's busy and stolen CPU seconds so far (/proc/stat's first line)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


@dataclass
class Failure:
    """A host count whose run failed: why, and the machine's load and free memory when it did."""
    reason: str
    load: float
    memory_gib: float


def _memory_available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def floor(hosts, repo) -> Run:
    """The floor script on every host at once; the time until the last one ends."""
    replacements = {"KEY_URL": repo.key_url, "REPO_URL": repo.url, "STANDIN": STANDIN_API_KEY,
                    "SERVER_PACKAGE": CONFIG["mysql"]["server_package"],
                    "AGENT_PACKAGES": " ".join(CONFIG["agent"]["packages"])}
    script = FLOOR_SCRIPT
    for placeholder, value in replacements.items():
        script = script.replace(placeholder, value)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        done = list(pool.map(lambda h: h.root(script, timeout=900), hosts))
    seconds = time.monotonic() - started
    for host, result in zip(hosts, done):
        if result.returncode != 0:
            raise RuntimeError(f"floor failed on {host.name}: {result.stderr[-500:]}")
    return Run(seconds)


def config_for(hosts, repo, workdir: Path) -> Path:
    known = workdir / "known_hosts"
    known.write_text("".join(Path(h.known_hosts).read_text() for h in hosts))
    path = workdir / "invoke.json"
    path.write_text(json.dumps({
        "ssh": {"key_file": hosts[0].key_file, "known_hosts": str(known)},
        "agent": {"repo_url": repo.url, "key_urls": [repo.key_url]},
        "api": {"host": hosts[0].name},
    }))
    return path


def invoke_setup(hosts, config: Path, *extra: str) -> Run:
    """`./run setup` as a user runs it (a new process, no terminal): wall time, CPU, sessions per host."""
    before = [h.ssh_counts() for h in hosts]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_before = machine_cpu()
    env = {k: v for k, v in os.environ.items() if k != "DD_API_KEY"} | {"DD_API_KEY": STANDIN_API_KEY}
    argv = [sys.executable, "-m", "invoke", "-f", str(config), "setup", *extra]
    argv += [arg for h in hosts for arg in ("--host", h.target)]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=900)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        log = Path(tempfile.gettempdir()) / f"vm-bench-setup-{len(hosts)}-hosts.log"
        log.write_text(f"{' '.join(argv)}\n{done.stdout}\n{done.stderr}")
        raise RuntimeError(f"setup {' '.join(extra)} failed (its output: {log}):\n{done.stdout[-3000:]}\n"
                           f"{done.stderr[-1000:]}")
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    machine_after = machine_cpu()
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    time.sleep(0.2)  # sshd's last lines
    after = [h.ssh_counts() for h in hosts]
    engine = float(re.search(r"host\(s\) in ([\d.]+) s", done.stdout).group(1))
    return Run(seconds, cpu, engine, [a[1] - b[1] for a, b in zip(after, before)],
               [a[0] - b[0] for a, b in zip(after, before)],
               machine_after[0] - machine_before[0], machine_after[1] - machine_before[1])


def median_run(runs: list[Run]) -> Run:
    """The run of median wall time (of an odd number): a second is cheap, one slow moment of the machine is not."""
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def one_round(repo, flavour: str, reverse: bool, workdir: Path, counts) -> dict[str, Run | Failure | bool]:
    """Each host count in turn; a count that fails is recorded as a Failure and the next one runs."""
    results: dict[str, Run | Failure | bool] = {}  # memoryN: whether N hosts' files were in RAM

    def stop(hosts):
        """Tear the hosts down; a failure here is said, and does not undo what was measured on them."""
        try:
            stop_hosts(hosts)
        except Exception as exc:  # noqa: BLE001 - the figures stand; the leftovers are stopped at exit
            print(f"{len(hosts)} host(s): stopping them failed ({type(exc).__name__}: {exc})", file=sys.stderr,
                  flush=True)
        os.sync()  # the next figures start once what the hosts left is on disk, not while it is written back

    def floor_on(n):
        hosts = start_hosts(n, flavour, room_per_host=ROOM_PER_HOST)
        try:
            results[f"floor{n}"] = floor(hosts, repo)
        finally:
            stop(hosts)

    def setup_on(n):
        hosts = start_hosts(n, flavour, room_per_host=ROOM_PER_HOST)
        results[f"memory{n}"] = str(hosts[0].workdir).startswith("/dev/shm")
        try:
            config = config_for(hosts, repo, workdir)
            results[f"first{n}"] = invoke_setup(hosts, config)
            results[f"rerun{n}"] = median_run([invoke_setup(hosts, config) for _ in range(RERUNS)])
            if n == 1:
                results["dry"] = median_run([invoke_setup(hosts, config, "--dry-run") for _ in range(RERUNS)])
        finally:
            stop(hosts)

    for n in counts:
        pair = [lambda n=n: floor_on(n), lambda n=n: setup_on(n)]
        try:
            for step in (reversed(pair) if reverse else pair):
                step()
        except Exception as exc:  # noqa: BLE001 - a failed count is a result: recorded, and the next one runs
            results[f"failed{n}"] = Failure(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}",
                                            os.getloadavg()[0], _memory_available_gib())
            for key in (f"floor{n}", f"first{n}", f"rerun{n}", *(["dry"] if n == counts[0] else [])):
                results.pop(key, None)
            print(f"{n} host(s): failed ({results[f'failed{n}'].reason})", file=sys.stderr, flush=True)
    return results


def startup() -> tuple[float, float]:
    """Best of 5, interleaved: `import invoke` and `invoke --list`."""
    bare, listing = [], []
    for _ in range(5):
        for argv, into in (([sys.executable, "-c", "import invoke"], bare),
                           ([sys.executable, "-m", "invoke", "--list"], listing)):
            started = time.perf_counter()
            subprocess.run(argv, cwd=ROOT, capture_output=True, check=True, timeout=120)
            into.append(time.perf_counter() - started)
    return min(bare), min(listing)


def med(values) -> float:
    return statistics.median(values)


def table(rounds: list[dict[str, Run]], bare: float, listing: float, counts) -> tuple[str, dict]:
    def m(key, attr="seconds"):
        return med([getattr(r[key], attr) for r in rounds])

    def sessions(key):
        return f"{max(s for r in rounds for s in r[key].sessions)}"

    one = counts[0]
    figures = {f"{kind}{n}": m(f"{kind}{n}") for n in counts for kind in ("floor", "first", "rerun")}
    figures |= {f"cpu_{kind}{n}": m(f"{kind}{n}", "cpu") / n for n in counts for kind in ("first", "rerun")}
    figures |= {f"machine_rerun{n}": m(f"rerun{n}", "machine") for n in counts}
    figures |= {f"steal_rerun{n}": m(f"rerun{n}", "steal") for n in counts}
    figures |= {"dry": m("dry"), "bare": bare, "listing": listing,
                # Before the first connection: the whole process minus the run's own figure.
                "startup": med([r[key].seconds - r[key].engine for r in rounds for key in (f"rerun{one}", "dry")])}
    ratios = {f"first{n}": figures[f"first{n}"] / figures[f"floor{n}"] for n in counts}
    ratios |= {"rerun_vs_before": figures[f"rerun{one}"] / RERUN_BEFORE_S, "listing": listing / bare,
               "rerun_last_vs_1": figures[f"rerun{counts[-1]}"] / figures[f"rerun{one}"]}
    # Narrow tables rather than one wide one: each fits a phone screen.
    rows = ["| run | floor | `setup` | ratio |", "|---|---:|---:|---:|"]
    for n in counts:
        label = "first run" if n == 1 else f"first run, {n} hosts at once"
        rows.append(f"| {label} | {figures[f'floor{n}']:.1f} s | {figures[f'first{n}']:.1f} s | "
                    f"{ratios[f'first{n}']:.2f}x |")
    rows += [
        f"| no-change re-run | {RERUN_BEFORE_S} s before | {figures[f'rerun{one}']:.2f} s | "
        f"{ratios['rerun_vs_before']:.2f}x |",
        f"| dry run | | {figures['dry']:.2f} s | |",
        f"| start-up | | {figures['startup']:.2f} s | |",
        f"| `invoke --list` | {bare:.2f} s bare | {listing:.2f} s | {ratios['listing']:.2f}x |",
        "",
        "| hosts at once | first run | runner CPU per host |",
        "|---:|---:|---:|",
    ]
    for n in counts:
        rows.append(f"| {n} | {figures[f'first{n}']:.1f} s | {figures[f'cpu_first{n}']:.2f} s |")
    # The re-run's curve, with what the whole machine spent: the guests share its CPUs with the runner, so
    # the machine's busy seconds over its CPUs are the least wall time that work allows.
    cores = os.cpu_count() or 1
    rows += ["", f"| hosts at once | re-run | runner CPU per host | machine CPU | its least wall on {cores} CPUs |",
             "|---:|---:|---:|---:|---:|"]
    for n in counts:
        rows.append(f"| {n} | {figures[f'rerun{n}']:.2f} s | {figures[f'cpu_rerun{n}']:.2f} s | "
                    f"{figures[f'machine_rerun{n}']:.2f} s | {figures[f'machine_rerun{n}'] / cores:.2f} s |")
    rows += ["", "| `setup` run | SSH sessions per host |", "|---|---:|",
             f"| first run | {sessions(f'first{one}')} |", f"| no-change re-run | {sessions(f'rerun{one}')} |",
             f"| dry run | {sessions('dry')} |"]
    return "\n".join(rows) + "\n", {"figures": figures, "ratios": ratios}


def verdict(ratios: dict, figures: dict, counts) -> str:
    one, last = counts[0], counts[-1]
    cpu = [figures[f"cpu_rerun{n}"] for n in counts]
    checks = [
        ("first run", ratios[f"first{one}"] <= TARGETS["first"], f"{ratios[f'first{one}']:.2f}x its floor"),
        ("re-run", figures[f"rerun{one}"] <= TARGETS["rerun_s"], f"{figures[f'rerun{one}']:.2f} s"),
        ("dry run", figures["dry"] <= TARGETS["dry_s"], f"{figures['dry']:.2f} s"),
        (f"{last}-host re-run", ratios["rerun_last_vs_1"] <= TARGETS["rerun_16_vs_1"],
         f"{ratios['rerun_last_vs_1']:.2f}x the 1-host re-run, where the work the {last} guests and the runner "
         f"did on this machine's {os.cpu_count()} CPUs allowed no less than "
         f"{figures[f'machine_rerun{last}'] / (os.cpu_count() or 1) / figures[f'rerun{one}']:.2f}x"),
        ("runner CPU per host", all(a > b for a, b in zip(cpu, cpu[1:])),
         "falls as hosts grow" if all(a > b for a, b in zip(cpu, cpu[1:])) else "does not fall at every step"),
        ("`invoke --list`", ratios["listing"] <= TARGETS["listing"], f"{ratios['listing']:.2f}x a bare import"),
    ]
    return "; ".join(f"{name} {figure} ({'met' if met else 'NOT met'})" for name, met, figure in checks) + "."


def snippet(rounds: list[dict[str, Run]], bare: float, listing: float, flavour: str, package: dict,
            counts, load_before: float) -> tuple[str, dict]:
    """The tables, how they were measured, and the targets met or not: the site's snippet."""
    measured = tuple(n for n in counts if all(f"failed{n}" not in r for r in rounds))
    if not measured or measured[0] != counts[0]:
        raise RuntimeError(f"the single-host run failed: {[r.get(f'failed{counts[0]}') for r in rounds]}")
    text, summary = table(rounds, bare, listing, measured)
    failures = [(n, r[f"failed{n}"]) for r in rounds for n in counts if f"failed{n}" in r]
    in_ram = [n for n in measured if all(r.get(f"memory{n}") for r in rounds)]
    on_disk = [n for n in measured if n not in in_ram]
    if failures:
        text += "\n" + "".join(f"- {n} hosts at once failed in a round (load {f.load:.1f}, "
                                f"{f.memory_gib:.1f} GiB available): {f.reason}\n" for n, f in failures)
    load = os.getloadavg()[0]
    steal = sum(summary["figures"][f"steal_rerun{n}"] for n in measured)
    text += (f"\nMeasured {datetime.date.today().isoformat()} with `./run bench-vm --rounds {len(rounds)} "
             f"--flavour {flavour}` on the `{flavour}` test host, {os.cpu_count()} CPUs shared with other work, "
             f"load average {load_before:.1f} at the start and {load:.1f} at the end. "
             f"The Agent package both install is the real-size stand-in: {package['installed_bytes'] / 2**20:.0f} MiB "
             f"installed in {package['files']:,} files, a {package['deb_bytes'] / 2**20:.0f} MiB .deb (xz), with the "
             "real package's maintainer-script work; the Debian packages come from the image's apt cache. "
             f"Medians of {len(rounds)} round(s), each on fresh hosts, floor and `setup` in alternating order; "
             f"in each round, the re-run and the dry run are the median of {RERUNS}. "
             f"The hosts' files were in RAM (tmpfs) for {', '.join(map(str, in_ram)) or 'no count'} host(s) at once"
             f"{' and on disk for ' + ', '.join(map(str, on_disk)) if on_disk else ''}, as the machine's memory allowed. "
             "The floor of `invoke --list` is a bare `import invoke`; the dry run is on the configured host. "
             "SSH sessions are the most any host opened, counted from each guest's sshd log (one connection "
             "per host per run). `setup` times are the whole `invoke setup` process that `./run setup` starts (uv's "
             "check of the lock before it adds about 0.02 s), with the installed packages "
             "and the runbook's modules byte-compiled (as Python leaves them after a first run); start-up is that "
             "minus the run's own figure (Python, the imports, the settings' checks and the plan, before the first "
             "connection); runner CPU is the process's user and system time, divided by the hosts. Machine CPU "
             "is every CPU's busy time during the re-run (/proc/stat: the runner, every guest's sshd, sudo and "
             "reads): the test hosts share this machine's CPUs, where each real host would have its own. "
             f"The hypervisor took {steal:.2f} s of CPU time from this machine during the re-runs (steal).\n\n"
             f"Targets: {verdict(summary['ratios'], summary['figures'], measured)}\n")
    return text, summary


def byte_compile() -> None:
    """What Python writes on a first run (unless PYTHONDONTWRITEBYTECODE, as on this project's machines):
    the installed packages and the runbook's modules as .pyc, so every measured run starts alike."""
    for path in (sysconfig.get_paths()["purelib"], ROOT / "recipes", ROOT / "tasks.py"):
        if Path(path).is_dir():
            compileall.compile_dir(str(path), quiet=1, workers=0)
        else:
            compileall.compile_file(str(path), quiet=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--flavour", default="bookworm", help="test host flavour (bookworm, systemd, mysql)")
    parser.add_argument("--hosts", default=",".join(map(str, HOST_COUNTS)),
                        help="how many hosts at once, in turn (default 1,4,16; the first is the single host)")
    parser.add_argument("--no-save", action="store_true", help=f"do not write {SNIPPET.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    counts = tuple(int(n) for n in args.hosts.split(","))
    if os.geteuid() != 0:
        print("vm_bench: the test hosts need root (network namespaces, nspawn)", file=sys.stderr)
        return 2
    byte_compile()
    load_before = os.getloadavg()[0]
    rounds = []
    repo = standin_apt_repo(real_size=True)
    package = realsize.summary(next((repo.workdir / "repo").rglob("datadog-agent_*.deb")))
    try:
        with tempfile.TemporaryDirectory(prefix="vm-bench-") as tmp:
            for index in range(args.rounds):
                print(f"round {index + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
                rounds.append(one_round(repo, args.flavour, reverse=index % 2 == 1, workdir=Path(tmp),
                                        counts=counts))
    finally:
        repo.stop()
    bare, listing = startup()
    text, summary = snippet(rounds, bare, listing, args.flavour, package, counts, load_before)
    print(text)
    print(json.dumps({"rounds": [{k: vars(v) if hasattr(v, "__dict__") else v for k, v in r.items()} for r in rounds],
                      "package": package,
                      **summary}, indent=1), file=sys.stderr)
    if not args.no_save:
        SNIPPET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
