"""Run the shipped custom check N times under the real datadog_checks.base and print what it submitted.

No Agent is involved: the stub aggregator records the submissions. Used for the terminal capture:
    uv run --project tests/agent_check python tests/agent_check/run_once.py 3
"""

import importlib.util
import sys
from pathlib import Path

import yaml
from datadog_checks.base.stubs import aggregator

VM = Path(__file__).resolve().parents[2] / "recipes" / "vm"
TYPES = {value: name for name, value in vars(type(aggregator)).items() if name.isupper() and isinstance(value, int)}


def main(runs: int) -> None:
    spec = importlib.util.spec_from_file_location("custom_my_metric", VM / "files/checks.d/custom_my_metric.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    template = (VM / "templates/custom_my_metric.yaml").read_text()
    [instance] = yaml.safe_load(template.replace("$interval", "45").replace("$name", "custom_my_metric"))["instances"]
    check = module.CustomMyMetricCheck("custom_my_metric", {}, [instance])
    print(f"custom_my_metric under datadog_checks.base (stub aggregator, no Agent); "
          f"instance: min_collection_interval={instance['min_collection_interval']}")
    for run in range(1, runs + 1):
        aggregator.reset()
        error = check.run()
        for metric in aggregator.metrics("my_metric"):
            print(f"run {run}: {metric.name} {TYPES.get(metric.type, metric.type).lower()} "
                  f"value={metric.value:g} tags={metric.tags}{'  ERROR ' + error if error else ''}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
