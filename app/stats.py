"""Latency percentiles by the nearest-rank definition.

The p-th percentile of N sorted values is the value at 1-based rank ``ceil(p / 100 * N)``
(rank 1 for p = 0). It is always one of the observed values, as in wrk and HdrHistogram
reports, and needs no interpolation.
"""

import math
from collections.abc import Sequence

PERCENTILES = (50, 90, 95, 99)  # 95: what the APM dashboard's latency widget queries


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of values already sorted ascending."""
    if not sorted_values:
        raise ValueError("percentile of an empty set")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p95/p99, mean and max of values (in the unit they come in); empty -> {}."""
    if not values:
        return {}
    ordered = sorted(values)
    summary = {f"p{p}": percentile(ordered, p) for p in PERCENTILES}
    summary["mean"] = sum(ordered) / len(ordered)
    summary["max"] = ordered[-1]
    return summary
