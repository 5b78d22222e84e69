"""The custom Agent check custom_my_metric: a gauge submitted every 45 seconds."""

from __future__ import annotations

import os

from recipes.taskdef import task

from recipes.errors import Refused
from recipes.lazy import lazy
from recipes.vm.agent import RESTART_AGENT
from recipes.vm.options import HOST_HELP
from recipes.vm.hostfiles import file_read
from recipes.vm.hostrun import HostRun
from recipes.vm.plan import host_plan
from recipes.vm.rendering import render

hosts = lazy("recipes.vm.hosts")  # the runner (Fabric, threads): imported when a task runs, not to list them
ruamel_yaml = lazy("ruamel.yaml")
schema = lazy("recipes.settings")

HERE = os.path.dirname(__file__)
SOURCE = os.path.join(HERE, "files", "checks.d", "custom_my_metric.py")  # shipped as it is
TEMPLATE = os.path.join(HERE, "templates", "custom_my_metric.yaml")  # rendered with the name and interval
AGENT_DIR = "/etc/datadog-agent"


def check_files(name: str, interval: int) -> dict[str, str]:
    """Remote path -> content of the check's two files (name and interval checked by recipes/settings.py)."""
    conf = render("custom_my_metric.yaml", "check", name=name, interval=interval)
    instances = ruamel_yaml.YAML(typ="safe").load(conf)["instances"]
    if len(instances) != 1 or instances[0]["min_collection_interval"] != interval:
        raise Refused("recipes/vm/templates/custom_my_metric.yaml must render exactly one instance with the interval")
    with open(SOURCE, encoding="utf-8") as handle:
        code = handle.read()
    return {f"{AGENT_DIR}/checks.d/{name}.py": code, f"{AGENT_DIR}/conf.d/{name}.yaml": conf}


def check_plan(files: dict[str, str]):
    """The one step of custom-check."""
    def install(run: HostRun) -> None:
        with run.step("custom check: " + ", ".join(files)) as step:
            states = run.files(list(files))
            changed = [run.put_file(step, states[path], text, "dd-agent", "dd-agent", "0644")
                       for path, text in files.items()]
            if any(changed):
                run.notify(*RESTART_AGENT)

    return host_plan([install], reads=[file_read(path) for path in files])


@task(iterable=["host"], help=HOST_HELP)
def custom_check(c, host=None, dry_run=False):
    """Install the custom_my_metric check and its YAML (one instance, min_collection_interval: 45)."""
    settings = schema.of(c).check
    files = check_files(settings.name, settings.min_collection_interval)
    hosts.run_on_hosts(c, host, dry_run, "custom-check", check_plan(files))
