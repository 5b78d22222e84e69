# Managed by this runbook (./run custom-check); edits are overwritten.
"""custom_my_metric: submits the gauge my_metric with a random value from 0 to 1000.

How often it runs is not decided here: min_collection_interval in conf.d/custom_my_metric.yaml sets it.
"""

import random

try:  # the Agent ships datadog_checks.base; very old Agents only had the top-level module
    from datadog_checks.base import AgentCheck
except ImportError:  # pragma: no cover
    from checks import AgentCheck

__version__ = "1.0.0"

METRIC = "my_metric"
LOW, HIGH = 0, 1000


class CustomMyMetricCheck(AgentCheck):
    """One gauge per run; the instance's tags are passed through."""

    def check(self, instance):
        tags = list(self.instance.get("tags", []))
        self.gauge(METRIC, random.randint(LOW, HIGH), tags=tags)
