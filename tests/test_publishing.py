"""Publishing the site: the GitHub Pages workflow checked offline (GitHub's workflow schema through check-jsonschema,
zizmor's audits). The site built for a sub-path address is read in Chromium in tests/browser/test_published_site.py."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml


ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "site.yml"


def tool(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_workflow_is_valid_for_github():
    result = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                             "vendor.github-workflows", str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_in_the_workflow_even_pedantic():
    result = subprocess.run([str(Path(sys.executable).parent / "zizmor"), "--offline", "--persona", "pedantic",
                             "--no-progress", str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "No findings" in result.stdout + result.stderr, result.stdout + result.stderr


def test_the_workflow_pins_every_action_to_a_commit_and_builds_under_the_pages_address():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    uses = [step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", each) for each in uses), uses
    assert workflow["permissions"] == {}  # each job asks for what it needs
    build = workflow["jobs"]["build"]["steps"]
    assert any("./run build" in step.get("run", "") and "INVOKE_SITE_URL" in step.get("env", {}) for step in build)
