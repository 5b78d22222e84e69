"""Which pictures exist, what each is drawn from, and the manifest that tells a stale picture from a fresh one.

Every picture records in ``<out_dir>/manifest.json`` the SHA-256 of its inputs (payload files, the generator
code, its parameters) and of its output. ``check_stale`` recomputes them: a payload edit, a code change or a
changed setting without ``./run previews`` makes the check (and its test) fail. Generator code is named by
module (``recipes.site.previews.monitor``), not by path: moving a file costs one regeneration, and a module or
file that does not exist stops the plan by name.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from types import ModuleType
from typing import Callable

import matplotlib
from rich.syntax import Syntax
from rich.text import Text

from recipes.api import messages
from recipes.site.previews import capture, dashboard as dash, downtimes, inputs, monitor as monitor_preview
from recipes.site.previews import notebook as notebook_preview, simulation as sim, style
from recipes.site.previews.inputs import (ROOT, PreviewInputError, load_monitor, load_payload, payload_files,
                                          sample_ctx, sample_values, sha256_file)
from recipes import settings as schema
from recipes.uvtool import UvNotFound, child_env, uv_command
from recipes.vm import check

FIGURES_FILE = ROOT / "docs" / "figures.yml"
MANIFEST = "manifest.json"
OUT = "<out_dir>"  # manifest prefix of inputs stored beside the pictures
# The payload loader (recipes/api/payloads.py) is not hashed: it belongs to another concern, and a change in
# what it returns is caught by the byte-for-byte regeneration test instead.
COMMON_CODE = [__name__, inputs, style]
# Figures drawn from a capture of a real run: figure key -> capture files to try, first found wins.
CAPTURES = {
    "tags-yaml": ["tags-yaml"],
    "integration-fix": ["integration-fix"],
    "my-metric-terminal": ["my-metric-terminal"],
    "permissions-error": ["permissions-error"],
    "logs-agent-error": ["logs-agent-error"],
    "logs-agent": ["logs-agent"],
    "permissions": ["permissions"],
    "random-int": ["random-int"],
    "apm-demo": ["apm-demo"],
    "verify-account": ["verify-account"],
}
CHECK_SOURCE = Path(check.SOURCE)
CHECK_TEMPLATE = Path(check.TEMPLATE)
# Run by the check's own uv project (it needs datadog_checks.base): named, never imported here.
CHECK_RUNNER = "recipes.site.previews.check_run"


@dataclass
class Picture:
    """One generated picture: ``figure`` is its docs/figures.yml key (None for extra pictures)."""

    key: str
    file: str                       # relative to the output folder
    code: list[ModuleType | str]    # generator modules (a name for one run elsewhere, never imported here)
    draw: Callable[[Path], Path]
    figure: str | None = None
    payloads: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)  # other input files (templates, captures, sources)
    out_sources: list[str] = field(default_factory=list)  # inputs kept beside the pictures (snapshots)

    def inputs(self, folder: Path) -> dict[str, str]:
        hashes = {name: sha256_file(path) for name, path in map(module_source, [*COMMON_CODE, *self.code])}
        files = [*self.sources, *(path for key in self.payloads for path in payload_files(key))]
        hashes.update({repo_rel(path): _sha_of_input(path) for path in files})
        hashes.update({f"{OUT}/{name}": _sha_or_missing(folder / name) for name in self.out_sources})
        return dict(sorted(hashes.items()))

    def all_params(self) -> dict:
        return {**self.params, "matplotlib": matplotlib.__version__, "rich": _rich_version()}


def _rich_version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("rich")


def repo_rel(path: Path) -> str:
    """``path`` relative to the repository when inside it (manifest keys stay machine-independent)."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _sha_or_missing(path: Path) -> str:
    return sha256_file(path) if path.is_file() else "missing"


def module_source(module: ModuleType | str) -> tuple[str, Path]:
    """(dotted name, source file) of a generator module; one named that does not exist stops the plan."""
    if isinstance(module, ModuleType):
        return module.__name__, Path(module.__file__)
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise PreviewInputError(f"generator module {module} does not exist")
    return module, Path(spec.origin)


def _sha_of_input(path: Path) -> str:
    if not path.is_file():
        raise PreviewInputError(f"input {repo_rel(path)} of a picture does not exist")
    return sha256_file(path)


# --- the plan -----------------------------------------------------------------------------------
def message_plan(config) -> list[Picture]:
    settings = schema.of(config)
    mon = load_monitor(sample_values(config))
    sample = sample_ctx(settings)
    texts = monitor_preview.rendered_messages(mon, sample)
    code = [monitor_preview, messages, capture]
    params = {"sample": settings.previews.sample.model_dump(), "host": settings.api.host, "notify": settings.api.notify}

    def card(state):
        return lambda path: monitor_preview.draw_card(mon, state, texts[state], sample, path)

    pictures = [Picture(f"{name}-monitor", f"monitor/{name}-monitor.svg", code, card(state),
                        figure=f"{name}-monitor" if state != "recovery" else None, payloads=["monitor"], params=params,
                        sources=[monitor_preview.CARD])
                for state, name in (("alert", "alert"), ("warning", "warning"), ("no_data", "no-data"),
                                    ("recovery", "recovery"))]
    pictures.append(Picture("alert-host-ip", "monitor/alert-host-ip.svg", code,
                            lambda path: monitor_preview.draw_host_ip(mon, sample, path),
                            figure="alert-host-ip", payloads=["monitor"], params=params, sources=[monitor_preview.CARD]))
    return pictures


def monitor_plan(config) -> list[Picture]:
    simulation = schema.of(config).previews.simulation
    values = sample_values(config)
    mon, variant = load_monitor(values), load_monitor(values, at_least_once=True)

    def draw(path):
        series, evals = monitor_preview.evaluations(simulation, mon, variant["query"])
        return monitor_preview.draw_timeline(series, evals, mon["options"]["thresholds"], path)

    return [Picture("monitor-timeline", "monitor/monitor-timeline.svg",
                    [monitor_preview, sim], draw,
                    payloads=["monitor"], params={"simulation": simulation.model_dump()})]


def downtime_plan(config) -> list[Picture]:
    previews = schema.of(config).previews
    zone = downtimes.zone_of(config)
    hours = previews.business_hours
    colours = {"downtime-weeknights": "#7e57c2", "downtime-weekends": "#26a69a"}
    params = {"timezone": zone.key, "business_hours": hours.model_dump(),
              "calendar_week": previews.calendar_week, "dst_week": previews.dst_week}
    code = [downtimes, "recipes.api.recurrence"]

    def week(monday_iso: str, keys: tuple[str, ...], title: str):
        def draw(path):
            monday = date.fromisoformat(monday_iso)
            windows, gaps, over = downtimes.expand_and_check(config, monday, 7)
            shown = [w for w in windows if w.name in keys]
            verdict = title
            if len(keys) > 1:
                verdict += ": " + (downtimes.describe(gaps, zone, "gap") if gaps else "no gap")
                if over:
                    verdict += ", " + downtimes.describe(over, zone, "muted in business hours")
            else:
                gaps = []
            return downtimes.draw_week(shown, monday, zone, verdict, {k: colours[k] for k in keys},
                                       hours.opens_at, hours.closes_at, hours.workday_numbers, gaps, path)
        return draw

    both = ("downtime-weeknights", "downtime-weekends")
    return [
        Picture("nightly-downtime", "downtimes/nightly-downtime.svg", code,
                week(previews.calendar_week, both[:1], "Weeknight downtime: 19:00 to 09:00, Monday to Friday"),
                figure="nightly-downtime", payloads=list(both[:1]), params=params),
        Picture("weekend-downtime", "downtimes/weekend-downtime-email.svg", [downtimes, monitor_preview],
                lambda path: downtimes.draw_email("downtime-weekends", load_payload("downtime-weekends",
                                                                                    sample_values(config)), path),
                figure="weekend-downtime", payloads=["downtime-weekends"], params=params,
                sources=[monitor_preview.CARD]),
        Picture("week-downtimes", "downtimes/weekend-downtime.svg", code,
                week(previews.calendar_week, both, "Weeknights and weekend together"),
                payloads=list(both), params=params),
        Picture("dst-downtime", "downtimes/dst-downtime.svg", code,
                week(previews.dst_week, both, "A week whose weekend crosses a daylight-saving change"),
                payloads=list(both), params=params),
    ]


def dashboard_plan(config) -> list[Picture]:
    settings = schema.of(config)
    board = load_payload("timeboard", sample_values(config))
    widgets = [w["definition"] for w in board["widgets"]]
    by_kind = {_widget_kind(w): w for w in widgets}
    for kind in ("metric", "anomalies", "rollup"):
        if kind not in by_kind:
            raise PreviewInputError(f"payloads/timeboard.json: no widget with a {kind} query")
    simulation, board_settings = settings.previews.simulation, settings.previews.dashboard
    series = sim.simulate(simulation.seed, simulation.duration_s, simulation.interval_s)
    now_s = _seconds(board_settings.now)
    code = [dash, sim]
    params = {"simulation": simulation.model_dump(), "dashboard": board_settings.model_dump()}
    query = lambda kind: by_kind[kind]["requests"][0]["q"]  # noqa: E731
    pictures = [
        Picture("five-min", "dashboard/five-min.svg", code,
                lambda path: dash.draw_five_min(series, now_s, by_kind["metric"]["title"], query("metric"), path),
                figure="five-min", payloads=["timeboard"], params=params),
        Picture("rollup-hourly", "dashboard/rollup-hourly.svg", code,
                lambda path: dash.draw_rollup(series, now_s, list(board_settings.rollup_windows_h), by_kind["rollup"]["title"],
                                              query("rollup"), path),
                payloads=["timeboard"], params=params),
        Picture("anomaly-basic", "dashboard/anomaly-basic.svg", code,
                lambda path: dash.draw_anomaly(dash.database_metric(board_settings.anomaly_seed,
                                                                    board_settings.anomaly_minutes),
                                               board_settings.anomaly_lag, _bounds(query("anomalies")),
                                               by_kind["anomalies"]["title"], query("anomalies"), path),
                payloads=["timeboard"], params=params),
        Picture("tags-host-map", "dashboard/tags-host-map.svg", code,
                lambda path: dash.draw_host_map(settings.api.host, list(settings.agent.tags), path),
                figure="tags-host-map", params={"host": settings.api.host, "tags": list(settings.agent.tags)}),
    ]
    return pictures + [_apm_picture(config, settings, code)]


def _apm_picture(config, settings: schema.Settings, code: list[ModuleType | str]) -> Picture:
    """From apm-demo's measured summary, snapshotted next to the pictures so CI checks the same input."""
    board = load_payload("apm-dashboard", sample_values(config))
    measured_path = ROOT / settings.previews.apm_summary
    snapshot = out_folder(config, None) / "data" / "apm-demo.json"
    service = settings.apm.service
    seed = settings.previews.simulation.seed
    measured = measured_path.is_file() or snapshot.is_file()

    def draw(path):
        copy = path.parent.parent / "data" / "apm-demo.json"  # beside the pictures, wherever they go
        source = measured_path if measured_path.is_file() else snapshot
        if measured and source.resolve() != copy.resolve():
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, copy)
        where = f"{OUT}/data/apm-demo.json"
        try:
            summary = (json.loads(copy.read_text(encoding="utf-8")) if measured
                       else dash.simulated_apm_summary(seed, service))
            resources = dash.apm_resources(summary, service, where if measured else "simulated summary")
        except (ValueError, json.JSONDecodeError) as error:
            raise PreviewInputError(f"{where}: {error}") from None
        widgets = [w["definition"] for w in board["widgets"]]
        return dash.draw_apm_dashboard(widgets, resources, measured, seed, board["title"], path)

    return Picture("apm-infra-dashboard", "dashboard/apm-infra-dashboard.svg", code, draw,
                   figure="apm-infra-dashboard", payloads=["apm-dashboard"],
                   params={"service": service, "measured": measured},
                   out_sources=["data/apm-demo.json"] if measured else [])


def _widget_kind(widget: dict) -> str:
    q = widget["requests"][0]["q"]
    return "anomalies" if q.startswith("anomalies(") else "rollup" if ".rollup(" in q else "metric"


def _bounds(query: str) -> float:
    match = re.search(r",\s*(\d+(?:\.\d+)?)\s*\)\s*$", query)
    return float(match.group(1)) if match else 2.0


def _seconds(clock: str) -> int:
    parsed = time.fromisoformat(clock)
    return parsed.hour * 3600 + parsed.minute * 60 + parsed.second


def notebook_plan(config) -> list[Picture]:
    """The Notebook's cells as a page, from payloads/notebook.json and the dashboards its graphs come from."""
    values = sample_values(config)
    return [Picture("notebook", "notebook/notebook.svg", [notebook_preview],
                    lambda path: notebook_preview.draw_notebook(load_payload("notebook", values), path),
                    payloads=["notebook", "timeboard", "apm-dashboard"],
                    params={"host": values["HOST"], "site": values["SITE"], "service": values["SERVICE"], "env": values["ENV"]})]


def captures_plan(config, source: str | None = None) -> list[Picture]:
    """A terminal picture for each figure whose capture exists under ``source`` (artifacts/captures/)."""
    folder = Path(source or schema.of(config).previews.captures_dir)
    folder = folder if folder.is_absolute() else ROOT / folder
    pictures = []
    for figure, names in CAPTURES.items():
        found = next((folder / f"{name}.txt" for name in names if (folder / f"{name}.txt").is_file()), None)
        if found is None:
            continue
        text = capture_text(found)
        refuse_secrets(text, repo_rel(found))
        pictures.append(Picture(
            figure, f"captures/{figure}.svg", [capture],
            lambda path, text=text, name=found.stem: capture.text_to_svg(text, path, f"captured run: {name}"),
            figure=figure if figure in _figure_keys() else None, sources=[found], params={"capture": found.name}))
    return pictures


# What a terminal writes: text plus tab, newline, carriage return, backspace and ANSI escapes.
CONTROL = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")


def capture_text(path: Path) -> str:
    """A capture's text; refused by name unless it is UTF-8 text a terminal could have shown."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise PreviewInputError(f"{repo_rel(path)}: not UTF-8 text (byte {error.start}); not converted") from None
    found = CONTROL.search(text)
    if found:
        raise PreviewInputError(f"{repo_rel(path)}: control character {found.group(0)!r} at offset {found.start()} "
                                "is not terminal output; not converted")
    return text


SECRET_VARIABLES = ("DD_API_KEY", "DD_APP_KEY")


def refuse_secrets(text: str, where: str) -> None:
    """Stop before a capture that contains a Datadog key from the environment becomes a committed picture."""
    for name in SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if len(value) >= 8 and value in text:
            raise PreviewInputError(f"{where}: contains the value of ${name}; not converted (mask it in the capture)")


def check_run_output(config) -> str:
    """The custom check run a few times under the real datadog_checks.base (its own uv project, tests/agent_check)."""
    settings = schema.of(config)
    run, check = settings.previews.check_run, settings.check
    try:
        command = uv_command("run", "--project", "tests/agent_check", "--frozen", "--quiet", "python",
                             str(module_source(CHECK_RUNNER)[1].relative_to(ROOT)),
                             "--runs", str(run.runs), "--seed", str(run.seed), "--name", check.name,
                             "--interval", str(check.min_collection_interval))
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=child_env())
    except (OSError, subprocess.TimeoutExpired, UvNotFound) as error:
        raise PreviewInputError(f"random-int: could not run the check with uv ({error})") from None
    if result.returncode:
        raise PreviewInputError(f"random-int: {' '.join(command)} failed:\n{result.stderr[-1500:]}")
    return result.stdout


def check_run_plan(config, captured: set[str]) -> list[Picture]:
    """random-int: the check's source and its runs under datadog_checks.base, unless a capture of a run exists."""
    source = CHECK_SOURCE
    if "random-int" in captured:
        return []
    settings = schema.of(config)

    def draw(path):
        output = check_run_output(config)
        return capture.renderables_to_svg(
            [Syntax(source.read_text(encoding="utf-8"), "python", theme="monokai", line_numbers=True),
             Text.from_ansi(output.rstrip("\n"))],
            path, f"{repo_rel(CHECK_SOURCE)}, run under datadog_checks.base")

    return [Picture("random-int", "captures/random-int.svg", [capture, CHECK_RUNNER], draw,
                    figure="random-int", sources=[CHECK_SOURCE, CHECK_TEMPLATE, ROOT / "tests/agent_check/uv.lock"],
                    params={"check_run": settings.previews.check_run.model_dump(), "check": settings.check.model_dump()})]


def full_plan(config, captures: bool = True) -> list[Picture]:
    """Every picture the site shows, in the order they are drawn."""
    caught = captures_plan(config) if captures else []
    return [*message_plan(config), *monitor_plan(config), *downtime_plan(config), *dashboard_plan(config),
            *notebook_plan(config), *caught, *check_run_plan(config, {p.key for p in caught})]


# --- generating, manifest, figures.yml ----------------------------------------------------------------
def out_folder(config, out: str | None) -> Path:
    folder = Path(out or schema.of(config).previews.out_dir)
    return folder if folder.is_absolute() else ROOT / folder


def generate(config, pictures: list[Picture], out: str | None = None) -> list[tuple[Picture, Path]]:
    """Draw ``pictures`` into the output folder and record them in its manifest; for the site's folder under
    docs/ also point docs/figures.yml at them.

    Everything is read and checked first (the manifest, figures.yml), then drawn aside; only when all of it
    succeeded are the pictures moved into place and the manifest and figures.yml replaced, each in one rename.
    """
    folder = out_folder(config, out)
    manifest_path = folder / MANIFEST
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else {}
    site_folder = folder == out_folder(config, None) and folder.is_relative_to(ROOT / "docs")
    figures_text = FIGURES_FILE.read_text(encoding="utf-8") if site_folder else ""
    if site_folder:
        docs_rel = folder.relative_to(ROOT / "docs")
        for picture in pictures:
            if picture.figure:
                figures_text = with_figure_file(figures_text, picture.figure, f"{docs_rel}/{picture.file}")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".drawing-") as scratch:
        for picture in pictures:
            picture.draw(Path(scratch) / picture.file)
        for picture in pictures:
            manifest[picture.key] = {"file": picture.file, "figure": picture.figure, "inputs": picture.inputs(folder),
                                     "params": picture.all_params(), "output": sha256_file(Path(scratch) / picture.file)}
        for picture in pictures:
            (folder / picture.file).parent.mkdir(parents=True, exist_ok=True)
            os.replace(Path(scratch) / picture.file, folder / picture.file)
        data = Path(scratch) / "data"
        if data.is_dir():  # snapshots drawn beside the pictures (apm-demo.json)
            shutil.copytree(data, folder / "data", dirs_exist_ok=True)
    replace_file(manifest_path, json.dumps(dict(sorted(manifest.items())), indent=1, sort_keys=True) + "\n")
    if site_folder:
        replace_file(FIGURES_FILE, figures_text)
    return [(picture, folder / picture.file) for picture in pictures]


def replace_file(path: Path, text: str) -> None:
    """Write beside, then rename over: a reader sees the old file or the new one, never half of one."""
    staged = path.with_name(f".{path.name}.new")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)


def read_manifest(path: Path) -> dict:
    """The picture manifest, refused by name when it is not what `./run previews` writes."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PreviewInputError(f"{repo_rel(path)}: corrupt manifest ({error}); restore it with git or delete it") from None
    fields = {"file", "inputs", "params", "output"}
    if not isinstance(manifest, dict) or not all(isinstance(e, dict) and fields <= set(e) for e in manifest.values()):
        raise PreviewInputError(f"{repo_rel(path)}: corrupt manifest (each entry needs {', '.join(sorted(fields))}); "
                                "restore it with git or delete it")
    return manifest


def _figure_keys() -> set[str]:
    return set(re.findall(r"^([a-z0-9-]+):\s*$", FIGURES_FILE.read_text(encoding="utf-8"), re.M))


def with_figure_file(text: str, key: str, file: str) -> str:
    """docs/figures.yml's text with ``file:`` of one entry set (comments and order kept)."""
    block = re.search(rf"^{re.escape(key)}:\s*\n((?:[ \t]+.*\n?)*)", text, re.M)
    if not block:
        raise PreviewInputError(f"docs/figures.yml: no entry {key!r}")
    body = re.sub(r"^(\s+file:).*$", rf"\g<1> {file}", block.group(1), count=1, flags=re.M)
    return text[:block.start(1)] + body + text[block.end(1):]


def figure_files() -> dict[str, str | None]:
    """``{figure key: file}`` as docs/figures.yml declares them."""
    import yaml  # noqa: PLC0415

    return {key: entry.get("file") for key, entry in yaml.safe_load(FIGURES_FILE.read_text()).items()}


def check_stale(config, captured_since: float | None = None) -> list[str]:
    """Every way the committed pictures disagree with their inputs; empty when all are fresh.

    ``captured_since``: a capture written at or after this time (a test session still under way, whose end
    converts it) is not counted as newer than its picture."""
    folder = out_folder(config, None)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return [f"{repo_rel(manifest_path)} is missing"]
    manifest = read_manifest(manifest_path)
    problems = []
    for picture in full_plan(config, captures=False):
        if picture.key == "random-int" and manifest.get("random-int", {}).get("params", {}).get("capture"):
            continue  # drawn from a capture of a run, which wins over the source
        entry = manifest.get(picture.key)
        if entry is None:
            problems.append(f"{picture.key}: never generated")
            continue
        for name, sha in picture.inputs(folder).items():
            if entry["inputs"].get(name) != sha:
                problems.append(f"{picture.key}: input {name} changed since the picture was drawn")
        if entry["params"] != json.loads(json.dumps(picture.all_params())):
            problems.append(f"{picture.key}: parameters changed since the picture was drawn")
    for key, entry in manifest.items():
        path = folder / entry["file"]
        if not path.is_file():
            problems.append(f"{key}: {entry['file']} is missing")
        elif sha256_file(path) != entry["output"]:
            problems.append(f"{key}: {entry['file']} was changed by hand or by another tool")
        for name, sha in entry["inputs"].items():
            captured = ROOT / name
            if captured_since is not None and captured.is_file() and captured.stat().st_mtime >= captured_since:
                continue
            if name.startswith("artifacts/") and captured.is_file() and sha256_file(captured) != sha:
                problems.append(f"{key}: capture {name} is newer than its picture (run `./run previews --only captures`)")
    if not folder.is_relative_to(ROOT / "docs"):
        return problems  # a copy outside the site: no figures.yml to compare with
    declared = figure_files()
    docs_rel = folder.relative_to(ROOT / "docs")
    for key, entry in manifest.items():
        if entry.get("figure") and declared.get(entry["figure"]) != f"{docs_rel}/{entry['file']}":
            problems.append(f"docs/figures.yml: {entry['figure']}.file is not {docs_rel}/{entry['file']}")
    return problems
