"""The benchmarks behind the site's performance figures (measurements, not tests)."""

from __future__ import annotations

import os
import subprocess
import sys

from recipes.taskdef import task

from recipes import ROOT
from recipes.errors import Failed, Refused
from recipes.lazy import lazy

schema = lazy("recipes.settings")

VM_BENCH = ROOT / "bench" / "vm_bench.py"


@task(help={"rounds": "rounds of fresh hosts, each measuring everything once (default 1: a round boots 42 hosts)",
            "flavour": "test host flavour: bookworm (default), systemd or mysql (Oracle MySQL under systemd)",
            "no_save": "print the table only; leave docs/snippets/vm-benchmark.md as it is"})
def bench_vm(c, rounds=1, flavour="bookworm", no_save=False):
    """Time setup against its floor on fresh test hosts (root), with an Agent package of the real one's size:
    first run, re-run and dry run, on 1, 4 and 16 hosts at once."""
    schema.option("--rounds", rounds, schema.Count)
    schema.option("--flavour", flavour, schema.TestHostFlavour)
    if os.geteuid() != 0:
        raise Refused("bench-vm: the test hosts need root (network namespaces, systemd-nspawn); run it as root")
    argv = [sys.executable, str(VM_BENCH), "--rounds", str(int(rounds)), "--flavour", flavour]
    done = subprocess.run(argv + (["--no-save"] if no_save else []), cwd=ROOT)
    if done.returncode:
        raise Failed(f"bench-vm: the benchmark failed (exit {done.returncode})")


@task(help={"cuts": "how many cuts, spread over the test host flavours in turn (default 30)",
            "seed": "the seed the moments and the ways of cutting are drawn from (default 1)"})
def stress_cuts(c, cuts=30, seed=1):
    """Cut a first setup at seeded random moments of its package work on fresh test hosts (root), then check
    each host: a dry run changes nothing, the next run converges, the one after changes nothing. Prints a table
    and saves it for Reference > Interrupted runs (docs/snippets/cut-stress.md)."""
    schema.option("--cuts", cuts, schema.Count)
    schema.option("--seed", seed, schema.Count)
    if os.geteuid() != 0:
        raise Refused("stress-cuts: the test hosts need root (network namespaces, systemd-nspawn); run it as root")
    env = {**os.environ, "RUNBOOK_CUT_STRESS": str(int(cuts)), "RUNBOOK_CUT_SEED": str(int(seed))}
    argv = [sys.executable, "-m", "pytest", "tests/test_vm_interrupted.py", "-k", "stress", "-s", "-q",
            "-p", "no:cacheprovider"]
    done = subprocess.run(argv, cwd=ROOT, env=env)
    if done.returncode:
        raise Failed(f"stress-cuts: a cut host did not converge (exit {done.returncode}); see the table above")
