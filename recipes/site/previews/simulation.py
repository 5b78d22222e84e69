"""The monitor's behaviour on simulated ``my_metric``: uniform 0..1000 every 45 s, evaluated every minute.

Datadog evaluates a ``query alert`` monitor about once a minute over its window (``last_5m``): the points whose
timestamps fall in the last 5 minutes are reduced with the monitor's aggregator (``avg`` as written, ``max`` for
"at least once") and compared with the thresholds. Each change of state sends one notification.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

OK, WARNING, ALERT = "OK", "Warning", "Alert"


@dataclass(frozen=True)
class Series:
    """Points of one metric: timestamps in seconds from the start of the day, and values."""

    times: list[float]
    values: list[float]


@dataclass(frozen=True)
class Evaluation:
    """A monitor's states over the simulated day and what they add up to."""

    aggregator: str
    times: list[float]
    reduced: list[float]
    states: list[str]

    def fraction(self, state: str) -> float:
        return self.states.count(state) / len(self.states)

    def notifications(self) -> int:
        """State changes, each one a notification (trigger, escalation, de-escalation or recovery)."""
        return sum(1 for before, after in zip(self.states, self.states[1:]) if before != after)

    def alert_notifications(self) -> int:
        return sum(1 for before, after in zip(self.states, self.states[1:]) if after == ALERT and before != ALERT)


def simulate(seed: int, duration_s: int, interval_s: int, low: float = 0.0, high: float = 1000.0) -> Series:
    """``my_metric`` as the custom check submits it: one uniform random value every ``interval_s`` seconds."""
    rng = random.Random(seed)
    times = [float(t) for t in range(0, duration_s, interval_s)]
    return Series(times, [rng.uniform(low, high) for _ in times])


def evaluate(series: Series, aggregator: str, window_s: int, every_s: int,
             warning: float, critical: float) -> Evaluation:
    """Reduce the last ``window_s`` seconds with ``aggregator`` every ``every_s`` seconds; value > threshold trips."""
    reduce = {"avg": lambda xs: sum(xs) / len(xs), "max": max, "min": min}[aggregator]
    times, reduced, states = [], [], []
    start, first = 0, 0
    for now in range(window_s, int(series.times[-1]) + 1, every_s):
        while start < len(series.times) and series.times[start] <= now - window_s:
            start += 1
        while first < len(series.times) and series.times[first] <= now:
            first += 1
        window = series.values[start:first]
        value = reduce(window)
        times.append(float(now))
        reduced.append(value)
        states.append(ALERT if value > critical else WARNING if value > warning else OK)
    return Evaluation(aggregator, times, reduced, states)


def irwin_hall_cdf(x: float, n: int) -> float:
    """P(sum of n independent uniform(0, 1) <= x), closed form."""
    if x <= 0:
        return 0.0
    if x >= n:
        return 1.0
    total = sum((-1) ** k * math.comb(n, k) * (x - k) ** n for k in range(int(math.floor(x)) + 1))
    return total / math.factorial(n)


def points_per_window(window_s: int, interval_s: int) -> dict[int, float]:
    """How many points a window holds (n -> share of evaluations), for points every ``interval_s`` seconds."""
    low = window_s // interval_s
    extra = window_s / interval_s - low
    return {low: 1 - extra, low + 1: extra} if extra else {low: 1.0}


def expected_fraction_above(aggregator: str, threshold: float, window_s: int, interval_s: int,
                            high: float = 1000.0) -> float:
    """Closed-form share of evaluations whose reduced value exceeds ``threshold`` (uniform 0..high data)."""
    share = 0.0
    for n, weight in points_per_window(window_s, interval_s).items():
        if aggregator == "avg":
            above = 1 - irwin_hall_cdf(n * threshold / high, n)
        elif aggregator == "max":
            above = 1 - (threshold / high) ** n
        else:
            raise ValueError(f"no closed form for aggregator {aggregator!r}")
        share += weight * above
    return share
