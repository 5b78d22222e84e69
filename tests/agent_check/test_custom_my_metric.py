"""The custom check under the real datadog_checks.base and its stub aggregator (no Agent needed).

Runs in its own uv project (datadog-checks-base pins its own ddtrace):
    uv run --project tests/agent_check pytest tests/agent_check
"""

import importlib.util
import re
import string
from pathlib import Path

import pytest

base = pytest.importorskip(
    "datadog_checks.base", reason="needs datadog_checks.base: run `uv run --project tests/agent_check pytest tests/agent_check`"
)
import yaml  # noqa: E402 - after the skip: pyyaml comes with datadog-checks-base[deps]
from datadog_checks.base.stubs import aggregator as stub_aggregator  # noqa: E402

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
CHECK_FILE = RECIPES / "vm" / "files" / "checks.d" / "custom_my_metric.py"
YAML_TEMPLATE = RECIPES / "vm" / "templates" / "custom_my_metric.yaml"
TAGS = ["role:database", "owner:runbook"]


def load_defaults() -> dict:
    spec = importlib.util.spec_from_file_location("runbook_defaults", RECIPES / "defaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CONFIG["check"]


def shipped_yaml() -> str:
    """conf.d/custom_my_metric.yaml as `./run custom-check` renders it from the defaults."""
    check = load_defaults()
    return string.Template(YAML_TEMPLATE.read_text()).substitute(name=check["name"], interval=check["min_collection_interval"])


@pytest.fixture
def check_class():
    spec = importlib.util.spec_from_file_location("custom_my_metric", CHECK_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CustomMyMetricCheck


@pytest.fixture
def aggregator():
    stub_aggregator.reset()
    yield stub_aggregator
    stub_aggregator.reset()


def run_once(check_class, instance):
    check = check_class("custom_my_metric", {}, [instance])
    error = check.run()
    assert error == "", error
    return check


def test_the_check_submits_one_gauge_my_metric_with_the_instance_tags(check_class, aggregator):
    run_once(check_class, {"tags": TAGS})
    aggregator.assert_metric("my_metric", metric_type=aggregator.GAUGE, tags=TAGS, count=1)
    aggregator.assert_all_metrics_covered()


def test_my_metric_stays_within_0_and_1000_and_varies(check_class, aggregator):
    check = check_class("custom_my_metric", {}, [{"tags": TAGS}])
    for _ in range(300):
        assert check.run() == ""
    values = [point.value for point in aggregator.metrics("my_metric")]
    assert len(values) == 300
    assert all(0 <= value <= 1000 and value == int(value) for value in values)
    assert len(set(values)) > 100  # random, not a constant


def test_the_shipped_yaml_runs_the_check_with_its_own_tags(check_class, aggregator):
    [instance] = yaml.safe_load(shipped_yaml())["instances"]
    run_once(check_class, instance)
    aggregator.assert_metric("my_metric", metric_type=aggregator.GAUGE, tags=instance["tags"], count=1)


def test_the_yaml_has_exactly_one_instance_with_the_45_second_interval():
    text = shipped_yaml()
    data = yaml.safe_load(text)
    assert len(data["instances"]) == 1  # a second `- ` item would be a second instance (pitfall 6)
    assert data["instances"][0]["min_collection_interval"] == 45
    assert "## @param min_collection_interval" in text and text.startswith("# Managed by this runbook")


def test_interval_is_read_from_yaml_not_code():
    source = CHECK_FILE.read_text()
    assert not re.search(r"\b45\b", source) and "min_collection_interval" in source  # only named in the docstring
    assert "time.sleep" not in source
