"""What listing the tasks costs next to a bare `import invoke`, in one run (best of N, as a ratio).

    uv run python bench/startup_bench.py [N]

Issue 15's target: `invoke --list` at most 2x a bare `import invoke` in the same environment.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def best_of(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, capture_output=True, check=True, timeout=120)
        times.append(time.perf_counter() - started)
    return min(times)


def main(runs: int = 7) -> None:
    bare, listing = [], []
    for _ in range(runs):  # interleaved, so that a noisy moment hits both
        bare.append(best_of([sys.executable, "-c", "import invoke"], 1))
        listing.append(best_of([sys.executable, "-m", "invoke", "--list"], 1))
    print(f"import invoke   {min(bare):.3f} s")
    print(f"invoke --list   {min(listing):.3f} s")
    print(f"ratio           {min(listing) / min(bare):.2f}  (best of {runs}; target <= 2)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
