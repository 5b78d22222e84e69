"""Session hook of the previews layer: captures of real runs become the site's terminal pictures.

The end-to-end suite saves plain-text outputs as artifacts/captures/<figure-key>.txt; when the session ends,
each capture that changed since its picture was drawn is converted (docs/img/generated/captures/<key>.svg)
and docs/figures.yml points at it. Nothing happens when no capture exists (a machine without the e2e layer).
"""

from __future__ import annotations

import copy
import json

from invoke import Config

from recipes.defaults import CONFIG
from recipes.site.previews import plan as preview_plan
from recipes.site.previews.inputs import PreviewInputError, sha256_file


def changed_captures(config) -> list[preview_plan.Picture]:
    manifest_path = preview_plan.out_folder(config, None) / preview_plan.MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    todo = []
    for picture in preview_plan.captures_plan(config):
        recorded = manifest.get(picture.key, {}).get("inputs", {})
        if any(recorded.get(preview_plan.repo_rel(src)) != sha256_file(src) for src in picture.sources):
            todo.append(picture)
    return todo


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker: the controller converts once, when every worker is done
    config = Config(overrides=copy.deepcopy(CONFIG))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.write_line if reporter else print
    try:
        todo = changed_captures(config)
        if todo:
            preview_plan.generate(config, todo)
    except PreviewInputError as error:
        say(f"previews: captures NOT converted: {error}")
        session.exitstatus = session.exitstatus or 1
        return
    if todo:
        say(f"previews: converted {len(todo)} capture(s) of real runs into pictures: "
            f"{', '.join(p.key for p in todo)} (commit docs/img/generated and docs/figures.yml)")
