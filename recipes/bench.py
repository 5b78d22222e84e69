"""The benchmarks behind the site's performance figures (measurements, not tests)."""

from __future__ import annotations

import os
import subprocess
import sys

from invoke import task
from invoke.exceptions import Exit

from recipes import ROOT
from recipes.lazy import lazy

schema = lazy("recipes.settings")

VM_BENCH = ROOT / "bench" / "vm_bench.py"


@task(help={"rounds": "rounds of fresh hosts, each measuring everything once (default 3)",
            "flavour": "test host flavour: bookworm (default), systemd or mysql (Oracle MySQL under systemd)",
            "no_save": "print the table only; leave docs/snippets/vm-benchmark.md as it is"})
def bench_vm(c, rounds=3, flavour="bookworm", no_save=False):
    """Time setup against its floor on fresh test hosts (root): first run, re-run, dry run, 3 hosts."""
    schema.option("--rounds", rounds, schema.Count)
    schema.option("--flavour", flavour, schema.TestHostFlavour)
    if os.geteuid() != 0:
        raise Exit("bench-vm: the test hosts need root (network namespaces, systemd-nspawn); run it as root", code=2)
    argv = [sys.executable, str(VM_BENCH), "--rounds", str(int(rounds)), "--flavour", flavour]
    done = subprocess.run(argv + (["--no-save"] if no_save else []), cwd=ROOT)
    if done.returncode:
        raise Exit(f"bench-vm: the benchmark failed (exit {done.returncode})", code=done.returncode)
