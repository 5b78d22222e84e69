"""Promises of the repository itself: no secrets, a two-command README that CI runs, the task table, config precedence."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from invoke import Config, MockContext, Result

from recipes.site import tasks as site
from tasks import ns

ROOT = Path(__file__).resolve().parent.parent
# The write-up published a real API key. Only its digest is kept here, so this test can find it
# without the repository containing it.
LEAKED_KEY_SHA256 = "df1f2ba3c96e72ed1995a15d89741495e06c51f51ffb80cae6ebf6b9d196e1f1"
HEX_TOKEN = re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{32,40}(?![0-9a-fA-F])")
KEY_NEAR_VALUE = re.compile(r"(?i)(api|app|application)[_-]?key.{0,40}[\"' =:]+[0-9a-f]{32,40}\b")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = [ROOT / n for n in names if not n.endswith(".lock") and (ROOT / n).is_file()]
    return [f for f in files if b"\0" not in f.read_bytes()[:4096]]


def secret_findings(text: str) -> list[str]:
    found = [m.group(0) for m in KEY_NEAR_VALUE.finditer(text)]
    found += [
        "the write-up's leaked key"
        for token in HEX_TOKEN.findall(text)
        if hashlib.sha256(token.encode()).hexdigest() == LEAKED_KEY_SHA256
    ]
    return found


def test_secret_scan_catches_a_key_shaped_value():
    fake = "0123456789abcdef" * 2  # built at run time, so this file holds no key-shaped literal
    assert secret_findings(f'DD_API_KEY="{fake}"')
    assert secret_findings(f"api_key: {fake}0123")
    assert not secret_findings("api_key: ${DD_API_KEY}")


def test_no_key_shaped_secret_is_committed():
    offenders = {str(f.relative_to(ROOT)): secret_findings(f.read_text(errors="replace")) for f in tracked_text_files()}
    assert not {k: v for k, v in offenders.items() if v}


def test_built_site_holds_no_secret_and_shows_the_install_line_redacted(tmp_path):
    build = subprocess.run(["mkdocs", "build", "--strict", "--site-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    pages = {p: p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.suffix in {".html", ".json", ".xml", ".txt", ".js"}}
    assert not {str(p): secret_findings(t) for p, t in pages.items() if secret_findings(t)}
    prerequisites = (tmp_path / "prerequisites" / "index.html").read_text()
    assert "API-KEY-REDACTED" in prerequisites


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", quickstart, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_quickstart_is_two_commands_serve_and_test():
    assert readme_commands() == ["./run serve", "./run test"]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == readme_commands()[1]


def test_readme_task_table_names_every_task_and_only_real_ones():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Tasks", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z][a-z0-9-]+)`", table))
    assert named == set(ns.task_names)


def test_the_readme_groups_the_tasks_as_tasks_py_does_and_every_task_is_in_one_group():
    import tasks

    groups = {**tasks.SECTIONS, **tasks.MAINTAINER_SECTIONS}
    listed = [name for names in groups.values() for name in names]
    assert sorted(listed) == sorted(ns.task_names)  # each task once
    table = (ROOT / "README.md").read_text().split("## Tasks", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for section, cell in re.findall(r"^\| ([^|`]+?) \| (.+) \|$", table, re.M):
        cell = re.sub(r"\([^)]*\)", "", cell)  # a row's own tasks, not those its notes mention
        names = [name for name in re.findall(r"`([a-z][a-z0-9-]+)`", cell) if name in ns.task_names]
        rows[section] = list(dict.fromkeys(names))
    rows.pop("Section", None)
    assert rows == groups


def test_every_task_has_help_and_unbuilt_ones_fail_loudly():
    for name in ns.task_names:
        assert (ns[name].__doc__ or "").strip(), f"{name} has no docstring"


def config_with(tmp_path: Path, yaml_text: str | None) -> Config:
    if yaml_text is not None:
        (tmp_path / "invoke.yaml").write_text(yaml_text)
    config = Config(project_location=str(tmp_path))
    config.load_collection(ns.configuration())
    config.load_project()
    return config


@pytest.mark.parametrize(
    "project_yaml, option, expected",
    [
        (None, None, "--dev-addr 127.0.0.1:8000"),              # default
        ("site:\n  port: 9001\n", None, "--dev-addr 127.0.0.1:9001"),  # config beats default
        ("site:\n  port: 9001\n", 9002, "--dev-addr 127.0.0.1:9002"),  # option beats config
    ],
)
def test_option_beats_config_beats_default(tmp_path, project_yaml, option, expected):
    config = config_with(tmp_path, project_yaml)
    c = MockContext(config=config, run=Result())
    site.serve(c, port=option)
    c.run.assert_called_once()
    assert expected in c.run.call_args[0][0]


def test_the_vagrant_box_hostname_is_the_host_the_dashboards_query():
    from recipes.defaults import CONFIG

    found = re.search(r'config\.vm\.hostname\s*=\s*"([^"]+)"', (ROOT / "Vagrantfile").read_text())
    assert found, "Vagrantfile sets no config.vm.hostname"
    assert found.group(1) == CONFIG["api"]["host"]


def test_run_alone_and_dash_dash_list_show_the_same_groups_as_tasks_py():
    import tasks
    from tests.inprocess import run_task

    groups = {**tasks.SECTIONS, **tasks.MAINTAINER_SECTIONS}
    for argv in ([], ["--list"]):
        code, out, _ = run_task(argv, {"PATH": "/usr/bin:/bin", "COLUMNS": "200"})
        assert code == 0, out
        shown, section = {}, None
        for line in out.splitlines():
            if line.startswith("  ") and not line.startswith("    "):
                section = line.strip()
                shown[section] = []
            elif line.startswith("    ") and line[4:5] != " ":
                shown[section].append(line.split()[0])
        assert shown == groups, f"./run {' '.join(argv)}"
