"""Run the custom check a few times under the real datadog_checks.base and print what it submitted.

This file is executed by the custom check's own uv project (tests/agent_check), which has datadog_checks.base:
    uv run --project tests/agent_check --frozen python recipes/site/previews/check_run.py --runs 3 --seed 45
It imports nothing from the runbook's environment; the seed makes the picture reproducible.
"""

import argparse
import importlib.util
import random
import string
from pathlib import Path

import yaml
from datadog_checks.base import __version__ as base_version
from datadog_checks.base.stubs import aggregator

VM = Path(__file__).resolve().parents[2] / "vm"  # the check as recipes/vm/check.py installs it
CHECK_FILE = VM / "files" / "checks.d" / "custom_my_metric.py"
YAML_TEMPLATE = VM / "templates" / "custom_my_metric.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=45)
    parser.add_argument("--name", default="custom_my_metric")
    parser.add_argument("--interval", type=int, default=45)
    args = parser.parse_args()
    text = string.Template(YAML_TEMPLATE.read_text()).substitute(name=args.name, interval=args.interval)
    [instance] = yaml.safe_load(text)["instances"]
    spec = importlib.util.spec_from_file_location(args.name, CHECK_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check = module.CustomMyMetricCheck(args.name, {}, [instance])
    random.seed(args.seed)
    print(f"$ check {args.name} under datadog_checks.base {base_version} "
          f"(instance from conf.d/{args.name}.yaml, random seeded with {args.seed})")
    print(f"instance: min_collection_interval={instance['min_collection_interval']} tags={instance.get('tags', [])}")
    print()
    print(f"{'run':<5}{'metric':<12}{'type':<8}{'value':>7}  tags")
    aggregator.reset()
    for run in range(1, args.runs + 1):
        error = check.run()
        if error:
            raise SystemExit(f"run {run} failed: {error}")
        point = aggregator.metrics("my_metric")[-1]
        kind = {aggregator.GAUGE: "gauge"}.get(point.type, str(point.type))
        print(f"{run:<5}{point.name:<12}{kind:<8}{point.value:>7g}  {', '.join(point.tags)}")
    print()
    print(f"{len(aggregator.metrics('my_metric'))} submissions of my_metric, "
          f"one per run; the Agent runs it every {instance['min_collection_interval']} s")


if __name__ == "__main__":
    main()
