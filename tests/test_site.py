"""The site: strict build, run-it boxes naming real tasks, every page and picture slot present."""

from __future__ import annotations

import posixpath
import re
import shutil
from pathlib import Path

import pytest
import yaml

from recipes.site import engines
from recipes.site import macros as sitemacros
from tasks import ns

ROOT = Path(__file__).resolve().parent.parent
SECTION_PAGES = [
    "prerequisites",
    "collecting-metrics",
    "visualizing-data",
    "monitoring-data",
    "collecting-apm-data",
    "check-your-account",
    "final-question",
]
ALL_PAGES = ["", *SECTION_PAGES, "troubleshooting", "reference/tasks", "reference/payloads", "reference/datadog-api", "reference/configuration", "reference/site-engines", "reference/interrupted-runs", "reference/performance"]


@pytest.fixture
def site(built_site) -> Path:
    """The site built strictly by each engine, from the same mkdocs.yml and docs/ (tests/site_fixtures.py)."""
    return built_site


def page_html(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


def test_strict_build_produces_every_page(site):
    for page in ALL_PAGES:
        assert (site / page / "index.html").is_file(), f"page {page or 'home'} missing from the build"


def test_excluded_docs_stay_out_of_the_build(site):
    """exclude_docs in mkdocs.yml holds under both engines: the picture data and the figure list are not published."""
    for excluded in ("figures.yml", "snippets", "img/generated/data", "img/generated/manifest.json"):
        assert not (site / excluded).exists(), f"{excluded} is in the built site"
    assert list((site / "img/generated").rglob("*.svg")), "the generated pictures are missing"


def test_each_section_page_has_a_run_it_box_naming_a_real_task(site):
    known = set(ns.task_names)
    for page in SECTION_PAGES[:-1]:  # the final question is an essay: no task performs it
        boxes = re.findall(r'class="run-it" data-task="([^"]+)"', page_html(site, page))
        assert boxes, f"{page} has no run-it box"
        assert set(boxes) <= known, f"{page} names unknown tasks {set(boxes) - known}"


def test_every_task_has_one_box_and_the_tasks_page_links_each_to_it(site):
    boxes: dict[str, list[str]] = {}
    for page in ALL_PAGES:
        for name in re.findall(r'class="run-it" data-task="([^"]+)" id="run-it-\1"', page_html(site, page)):
            boxes.setdefault(name, []).append(page or "home")
    assert set(boxes) == set(ns.task_names)  # every task has its box, with its options, somewhere
    assert {name: pages for name, pages in boxes.items() if len(pages) > 1} == {}  # and only one
    html = page_html(site, "reference/tasks")
    for name, (page,) in boxes.items():
        here = "" if page == "reference/tasks" else posixpath.relpath("." if page == "home" else page, "reference/tasks") + "/"
        target = f"{here}#run-it-{name}"
        assert f'href="{target}"' in html, f"Reference > Tasks does not link {name} to its box on {page}"


def test_run_it_box_is_generated_from_the_task_itself():
    task = ns["tag-host"]
    box = sitemacros.render_run_it("tag-host")
    assert "./run tag-host" in box
    assert task.__doc__.strip().splitlines()[0] in box
    for arg in task.get_arguments():
        assert f"--{max(arg.names, key=len)}" in box


def test_every_write_up_screenshot_has_a_slot_on_its_page(site):
    figures = yaml.safe_load((ROOT / "docs/figures.yml").read_text())
    assert len(figures) == 17
    for key, fig in figures.items():
        page = fig["page"].removesuffix(".md")
        html = page_html(site, page)
        assert f'id="fig-{key}"' in html, f"{key} has no slot on {page}"
        assert fig["original"] in html
    built = "".join(page_html(site, p) for p in ALL_PAGES)
    assert "<img src=\"\"" not in built


def test_payloads_on_the_site_are_included_from_payloads_not_pasted(site):
    html = page_html(site, "monitoring-data")
    assert "payloads/monitor.json" in html
    monitor = (ROOT / "payloads/monitor.json").read_text()
    name = re.search(r'"name": "([^"]+)"', monitor).group(1)
    assert name in html
    for page in (ROOT / "docs").rglob("*.md"):
        assert '"layout_type"' not in page.read_text(), f"{page} pastes a payload instead of including it"


def test_datadog_templates_survive_jinja_rendering(site):
    html = page_html(site, "troubleshooting")
    assert "{{#is_recovery}}" in html and "{{host.ip}}" in html


def copy_of_the_project(tmp_path: Path) -> Path:
    """docs/ and mkdocs.yml copied (to be broken), everything else linked: Zensical builds only inside a project."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    for entry in ROOT.iterdir():
        if not (project / entry.name).exists() and not entry.name.startswith("."):
            (project / entry.name).symlink_to(entry)
    return project


@pytest.mark.parametrize("engine", engines.ENGINES)
@pytest.mark.parametrize(
    "page_text, complaint",
    [
        ('{{ run_it("no-such-task") }}', "unknown task 'no-such-task'"),
        ("Then run `invoke setup-mysqll`.", "invoke setup-mysqll"),
        ('{{ include("payloads/missing.json") }}', "payloads/missing.json"),
        ("See payloads/nothing-here.json.", "payloads/nothing-here.json"),
        ('{{ screenshot("no-such-picture") }}', "unknown picture"),
        ('{{ picture("img/no-such.svg", "a caption") }}', "docs/img/no-such.svg does not exist"),
        ("See [the other page](no-such-page.md).", "no-such-page.md"),
    ],
)
def test_a_page_naming_a_missing_task_or_file_fails_the_build(tmp_path, engine, page_text, complaint):
    project = copy_of_the_project(tmp_path)
    (project / "docs/broken.md").write_text(f"# Broken\n\n{page_text}\n")
    cfg = project / "mkdocs.yml"
    text = cfg.read_text()
    cfg.write_text(text.replace("  - Troubleshooting: troubleshooting.md",
                                "  - Troubleshooting: troubleshooting.md\n  - Broken: broken.md"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("the previous site")
    result = engines.build(engine, out, config=cfg, capture=True)
    assert not result.ok
    assert complaint in result.output
    assert (out / "index.html").read_text() == "the previous site", "a failed build replaced the site"


def test_task_mentions_are_checked_against_the_namespace():
    sitemacros.check_mentions("Run `./run setup-mysql` then `./run verify`.", "ok.md")
    with pytest.raises(sitemacros.SiteError, match="invoke setup-sql"):
        sitemacros.check_mentions("Run `invoke setup-sql`.", "bad.md")


# --- Every pitfall ends with its source ----------------------------------------------------------------------
# A pitfall is a `## N. Title` section of docs/troubleshooting.md; its last paragraph is `**Source.** ...` with a
# link to a Datadog page or to Datadog's code (docs.datadoghq.com, or a repository of github.com/DataDog).
DATADOG_SOURCE = re.compile(r'href="(https://docs\.datadoghq\.com/[^"]*|https://github\.com/DataDog/[^"/]+/[^"]*)"')


def pitfall_sources(html: str) -> dict[str, list[str]]:
    """Each pitfall's title -> the Datadog links of its closing Source paragraph ([] when it has none)."""
    body = html.split("</article>")[0]
    parts = re.split(r"(<h2\b[^>]*>.*?</h2>)", body, flags=re.S)
    sources = {}
    for heading, section in zip(parts[1::2], parts[2::2]):
        title = re.sub(r"<[^>]+>|¶|&para;", "", heading).strip()
        if not re.match(r"\d+\. ", title):
            continue
        paragraphs = re.findall(r"<p>(.*?)</p>", section, flags=re.S)
        last = paragraphs[-1].strip() if paragraphs else ""
        sources[title] = DATADOG_SOURCE.findall(last) if last.startswith("<strong>Source.</strong>") else []
    return sources


def test_every_pitfall_ends_with_its_datadog_source(site):
    pitfalls = re.findall(r"^## (\d+)\. ", (ROOT / "docs/troubleshooting.md").read_text(), flags=re.M)
    sources = pitfall_sources(page_html(site, "troubleshooting"))
    assert len(sources) == len(pitfalls) == 14, f"pitfalls found in the page: {list(sources)}"
    missing = [title for title, links in sources.items() if not links]
    assert not missing, f"pitfalls without a closing Source paragraph linking Datadog's page or code: {missing}"


def test_a_pitfall_whose_source_is_removed_is_reported(site):
    """The check above is not vacuous: drop one Source paragraph from the built page and it names that pitfall."""
    html = page_html(site, "troubleshooting")
    first = re.search(r"<p><strong>Source\.</strong>.*?</p>", html, flags=re.S)
    without = html[: first.start()] + html[first.end():]
    missing = [title for title, links in pitfall_sources(without).items() if not links]
    assert len(missing) == 1 and missing[0].startswith("1. "), missing


def test_every_option_row_of_every_task_has_its_help_however_often_the_task_is_rendered():
    tasks = sitemacros.load_namespace()
    for name in tasks.ns.task_names:
        sitemacros.render_run_it(name)  # a task may be rendered on more than one page (the site's two engines)
    page = "\n".join(sitemacros.render_run_it(name) for name in tasks.ns.task_names)
    rows = [line for line in page.splitlines() if line.lstrip().startswith("| `-")]
    assert len(rows) == sum(len(tasks.ns[name].get_arguments()) for name in tasks.ns.task_names)
    assert [row for row in rows if row.rstrip().endswith("|  |")] == []
    helps = [row.rsplit("|", 2)[-2] for row in rows]
    assert [text for text in helps if "<" in text.replace("<wbr>", "")] == []  # no raw tag from a help text
    assert "| `-k K` |" in page and "`--k K`" not in page


def first_header_cells(html: str) -> list[str]:
    """The first header cell of each table of a page, tags stripped."""
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<table>\s*<thead>\s*<tr>\s*<th[^>]*>(.*?)</th>", html, re.S)]


def test_no_page_of_the_exercise_carries_a_benchmark_table(site):
    """Measurements are maintainers' material: they live on For maintainers > Performance, never in the exercise."""
    benchmarks = {"apm-benchmark.md": "gunicorn", "vm-benchmark.md": "run"}  # each snippet's first header cell
    for name, header in benchmarks.items():
        assert (ROOT / "docs" / "snippets" / name).read_text().startswith(f"| {header} |"), name
    for page in ["", *SECTION_PAGES, "troubleshooting"]:
        assert not set(first_header_cells(page_html(site, page))) & set(benchmarks.values()), page or "home"
    assert set(benchmarks.values()) <= set(first_header_cells(page_html(site, "reference/performance")))


def test_each_payload_is_shown_in_full_once_on_the_page_that_uses_it():
    shown: dict[str, list[str]] = {}
    for path in sorted((ROOT / "docs").rglob("*.md")):
        for name in re.findall(r"""include\(["']payloads/([\w-]+\.json)["']""", path.read_text()):
            shown.setdefault(name, []).append(path.relative_to(ROOT / "docs").as_posix())
    payloads = sorted(path.name for path in (ROOT / "payloads").glob("*.json"))
    assert sorted(shown) == payloads
    assert {name: pages for name, pages in shown.items() if len(pages) != 1} == {}
    assert not any(page.startswith("reference/") for (page,) in shown.values())


def test_the_write_ups_screenshots_stand_in_its_order():
    """docs/figures.yml lists the write-up's screenshots in its order; the pages place their counterparts so."""
    figures = yaml.safe_load((ROOT / "docs" / "figures.yml").read_text())
    placed = []
    for page in SECTION_PAGES:
        text = (ROOT / "docs" / f"{page}.md").read_text()
        placed += re.findall(r"""screenshot\(["']([\w-]+)["']\)""", text)
    assert placed == list(figures)
