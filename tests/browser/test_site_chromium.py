"""The built site in real Chromium: pages, pictures, search, run-it boxes, links, and a phone-width layout.

Cost per engine: one strict build (~10 s), each nav page loaded once at desktop and once at phone width (two
crawls whose findings the tests read, each keeping a few pages loading at once), and a few more loads.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlparse

import pytest
import yaml

from tests.browser.conftest import DESKTOP, PHONE, ROOT, snap

pytestmark = pytest.mark.browser

CAPTURE_FIGURES = {"tags-yaml", "logs-agent-error", "permissions-error", "logs-agent", "permissions",
                   "integration-fix", "my-metric-terminal", "random-int"}


def nav_pages() -> list[str]:
    """URL paths of every page in mkdocs.yml's nav, in order ("" is the home page)."""
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    from mkdocs.config import load_config  # noqa: PLC0415

    out: list[str] = []

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, str) and node.endswith(".md"):
            out.append("" if node == "index.md" else node[:-3].removesuffix("/index") + "/")

    walk(load_config(str(ROOT / "mkdocs.yml"))["nav"])
    return out


PAGES = nav_pages()


def slug(page: str) -> str:
    return page.strip("/").replace("/", "-") or "home"


def start_page(context, url: str):
    """Start loading ``url`` in a new page, collecting everything that goes wrong while it loads."""
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url} ({request.failure})"))
    page.on("response", lambda response: problems.append(f"HTTP {response.status}: {response.url}")
            if response.status >= 400 else None)
    page.goto(url, wait_until="commit")
    return page, problems


def loaded(page) -> None:
    """Until the page has loaded and made no request for 500 ms (what comes after the load event: the search
    index, the favicon)."""
    page.wait_for_load_state("load")
    page.wait_for_load_state("networkidle")


def open_page(context, url: str):
    """Open ``url`` and collect everything that went wrong while it loaded."""
    page, problems = start_page(context, url)
    loaded(page)
    return page, problems


AHEAD = 4  # pages a crawl keeps loading at once: their quiet half-seconds overlap (a crawl takes half the time)


def open_pages(context, site_url: str, paths: list[str]):
    """``(path, page, problems)`` for each of ``paths`` under ``site_url``, as ``open_page`` opens it, in order,
    with the next few already loading meanwhile; each page is closed once the caller has taken the next."""
    waiting = [start_page(context, site_url + path) for path in paths[:AHEAD]]
    for index, path in enumerate(paths):
        page, problems = waiting.pop(0)
        loaded(page)
        page.bring_to_front()  # the page in use is the active one, as a reader's is (its animations run at full rate)
        yield path, page, problems
        page.close()
        if index + AHEAD < len(paths):
            waiting.append(start_page(context, site_url + paths[index + AHEAD]))


def load_all_images(page) -> list[dict]:
    """Make lazy images load now, wait for them, and return each image's src and natural size."""
    page.evaluate("document.querySelectorAll('img').forEach(img => { img.loading = 'eager'; })")
    page.wait_for_function("Array.from(document.images).every(img => img.complete)", timeout=15000)
    return page.evaluate("Array.from(document.images).map(img => "
                         "({src: img.currentSrc || img.src, width: img.naturalWidth, height: img.naturalHeight}))")


# Tables that do not fit the text column: wider than it, or scrolling inside a wrapper (a column cut off).
OVERFLOWING_TABLES_JS = """Array.from(document.querySelectorAll('.md-content table')).map(table => {
    const column = table.closest('.md-content__inner');
    let scrolled = false;
    for (let box = table; box && box !== column; box = box.parentElement) {
        if (box.scrollWidth > box.clientWidth + 1) scrolled = true;
    }
    const width = Math.round(table.getBoundingClientRect().width);
    const head = Array.from(table.querySelectorAll('th')).map(th => th.innerText.trim()).join(' | ').slice(0, 60);
    return {head, width, column: column.clientWidth, scrolled};
}).filter(t => t.scrolled || t.width > t.column + 1)
  .map(t => `table [${t.head}]: ${t.width} px in a ${t.column} px column${t.scrolled ? ', scrolls' : ''}`)"""


@dataclass
class Visit:
    """What one desktop visit of a page found."""

    problems: list[str]
    images: list[dict]
    figures: dict[str, int | None]  # figure id -> natural width of its picture (None: placeholder)
    run_its: list[str]
    hrefs: list[str]
    wide_tables: list[str]
    charts: list[dict]  # {src, shown}: each drawn picture (SVG) and its width on the page, CSS px
    options: list[dict]  # {task, flag, help}: each option row of each run-it box, as the reader sees it
    zoom: tuple[int, int]  # the article's pictures, and how many of them are GLightbox links


# The option rows of every run-it box: the task, the flag (first cell) and the help (third cell) as shown.
OPTION_ROWS_JS = """Array.from(document.querySelectorAll('div.run-it[data-task] table tbody tr')).map(row => ({
    task: row.closest('div.run-it').dataset.task,
    flag: row.cells[0].innerText.trim(),
    help: row.cells.length > 2 ? row.cells[2].innerText.trim() : ''}))"""
ZOOM_JS = """[document.querySelectorAll("article img:not(.twemoji):not([src*='emoji'])").length,
    document.querySelectorAll("article a.glightbox img").length]"""
CHARTS_JS = """Array.from(document.querySelectorAll('article img')).filter(img => /\\/img\\/generated\\/.*\\.svg$/.test(img.src))
    .map(img => ({src: img.currentSrc || img.src, shown: img.getBoundingClientRect().width}))"""


@pytest.fixture(scope="module")
def crawl(browser, site_url, screenshots) -> dict[str, Visit]:
    """Every nav page visited once at desktop width, with a full-page screenshot of each."""
    context = browser.new_context(viewport=DESKTOP)
    visits = {}
    try:
        for path, page, problems in open_pages(context, site_url, PAGES):
            images = load_all_images(page)
            figures = page.evaluate("""Object.fromEntries(Array.from(document.querySelectorAll('figure[id^="fig-"]'))
                .map(f => [f.id.slice(4), f.querySelector('img') ? f.querySelector('img').naturalWidth : null]))""")
            run_its = page.eval_on_selector_all("div.run-it[data-task]", "els => els.map(e => e.dataset.task)")
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            wide_tables = page.evaluate(OVERFLOWING_TABLES_JS)
            charts = page.evaluate(CHARTS_JS)
            options = page.evaluate(OPTION_ROWS_JS)
            zoom = tuple(page.evaluate(ZOOM_JS))
            snap(page, screenshots, f"desktop-{slug(path)}.png", full_page=True)
            visits[path] = Visit(problems, images, figures, run_its, hrefs, wide_tables, charts, options, zoom)
    finally:
        context.close()
    return visits


@pytest.mark.parametrize("path", PAGES, ids=[slug(p) for p in PAGES])
def test_every_nav_page_loads_without_console_error(crawl, path):
    assert not crawl[path].problems, "\n".join(crawl[path].problems)


@pytest.mark.parametrize("path", PAGES, ids=[slug(p) for p in PAGES])
def test_every_image_loads(crawl, path):
    broken = [img["src"] for img in crawl[path].images if img["width"] == 0]
    assert not broken, f"images that did not load: {broken}"


@pytest.mark.parametrize("path", PAGES, ids=[slug(p) for p in PAGES])
def test_every_table_fits_its_column_at_desktop_width(crawl, path):
    assert not crawl[path].wide_tables, "\n".join(crawl[path].wide_tables)


def test_every_option_row_of_every_box_shows_its_help_as_written(crawl):
    """Every option row on every page (the exercise pages and Reference > Tasks) shows the task's help text,
    whole: none empty (invoke pops help texts on a task's first render) and none cut by a `<...>` taken for
    a tag."""
    from recipes.site import macros  # noqa: PLC0415 (the tasks, as the site renders them)

    tasks = macros.load_namespace().ns
    rows = [row for visit in crawl.values() for row in visit.options]
    boxed = [task for visit in crawl.values() for task in visit.run_its]
    shown = {task: sum(row["task"] == task for row in rows) for task in boxed}
    assert shown == {task: len(tasks[task].get_arguments()) for task in boxed}  # a row per option, in each box
    wrong = []
    for row in rows:
        arguments = {f"-{max(a.names, key=len)}" if len(max(a.names, key=len)) == 1 else f"--{max(a.names, key=len)}": a
                     for a in tasks[row["task"]].get_arguments()}
        argument = arguments[row["flag"].split()[0]]
        expected = " ".join((argument.help or "").replace("`", "").split())
        if not row["help"] or " ".join(row["help"].split()) != expected:
            wrong.append(f"{row['task']} {row['flag']}: shows {row['help']!r}, help is {expected!r}")
    assert not wrong, "\n".join(wrong)


MIN_TEXT_PX = 11


def test_every_drawn_chart_shows_its_smallest_text_at_11px_or_more_at_desktop(crawl):
    """A chart's smallest text (ticks, legends, notes) at the size the page shows it: its size in points, from
    the SVG's description (recipes/site/previews/style.py), times the width shown over the SVG's width."""
    measured, small = 0, []
    for visit in crawl.values():
        for chart in visit.charts:
            svg = urllib.request.urlopen(chart["src"]).read().decode()
            smallest = re.search(r"smallest text: ([\d.]+) pt", svg)
            if not smallest:
                continue  # a terminal capture or a card: text drawn at a fixed size, not a chart
            width_pt = float(re.search(r'<svg[^>]*\swidth="([\d.]+)pt"', svg)[1])
            px = float(smallest[1]) * chart["shown"] / width_pt
            measured += 1
            if px < MIN_TEXT_PX:
                small.append(f"{chart['src']}: {px:.1f} px")
    assert measured >= 8, f"only {measured} charts measured"
    assert not small, f"chart text under {MIN_TEXT_PX} px at desktop width: {small}"


def figures() -> dict:
    return yaml.safe_load((ROOT / "docs/figures.yml").read_text(encoding="utf-8"))


def test_every_write_up_picture_shows_on_its_page_and_only_captures_may_wait(crawl):
    pending = []
    for key, figure in figures().items():
        shown = crawl[figure["page"].removesuffix(".md") + "/"].figures
        assert key in shown, f"{figure['page']} has no slot for {key}"
        if figure.get("file"):
            assert shown[key], f"{key}: {figure['file']} did not load on {figure['page']}"
        else:
            assert shown[key] is None
            pending.append(key)
    print(f"\npictures still waiting for a capture of a real run: {pending or 'none'}")
    assert set(pending) <= CAPTURE_FIGURES, f"previews pictures missing: {set(pending) - CAPTURE_FIGURES}"


# Each engine's search results: Material's list, and the items of Zensical's search dialog (in a shadow root,
# which Playwright's CSS selectors reach; its class names are minified, so only its structure is stable).
SEARCH_RESULTS = {"mkdocs": ".md-search-result__item", "zensical": "dialog[aria-label=Search] ol li"}


def test_search_finds_my_metric(engine, desktop, site_url, screenshots):
    page, problems = open_page(desktop, site_url)
    page.keyboard.press("/")  # both engines open search on "/": real keystrokes, as the search reacts to key events
    page.keyboard.type("my_metric", delay=30)
    results = page.locator(SEARCH_RESULTS[engine])
    results.first.wait_for(timeout=15000)
    snap(page, screenshots, "desktop-search-my_metric.png")
    assert results.count() >= 3
    assert "my_metric" in results.first.inner_text()
    assert not problems, "\n".join(problems)


def invoke_task_names() -> set[str]:
    result = subprocess.run([sys.executable, "-m", "invoke", "--list", "--list-format=json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {each["name"] for each in json.loads(result.stdout)["tasks"]}


def test_each_run_it_box_names_a_task_that_invoke_lists(crawl):
    known = invoke_task_names()
    seen = {}
    for path, visit in crawl.items():
        for name in visit.run_its:
            seen.setdefault(name, path or "home")
    assert len(seen) >= 10, f"only {len(seen)} run-it boxes found: {sorted(seen)}"
    unknown = {name: where for name, where in seen.items() if name not in known}
    assert not unknown, f"run-it boxes naming tasks that `invoke --list` lacks: {unknown}"


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("name"):
            self.ids.add(attributes["name"])


def _fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback only)
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_internal_links_resolve_including_anchors(crawl, site_url):
    origin = urlparse(site_url).netloc
    cache: dict[str, tuple[int, set[str]]] = {}
    broken, checked = [], 0
    for path, visit in crawl.items():
        for href in set(visit.hrefs):
            if urlparse(href).netloc != origin:
                continue
            checked += 1
            target, fragment = urldefrag(href)
            if target not in cache:
                status, body = _fetch(target)
                parser = _Anchors()
                parser.feed(body)
                cache[target] = (status, parser.ids)
            status, ids = cache[target]
            if status != 200:
                broken.append(f"{path or 'home'} -> {href} (HTTP {status})")
            elif fragment and target.endswith("/") and fragment not in ids:
                broken.append(f"{path or 'home'} -> {href} (no element with id {fragment!r})")
    assert checked > 5 * len(PAGES), f"only {checked} internal links found: too few to mean anything"
    assert not broken, "\n".join(broken)


@pytest.fixture(scope="module")
def phone_crawl(browser, site_url, screenshots) -> dict[str, list[str]]:
    """Every nav page visited once at phone width (one context): what overflows on each, and what failed."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    found = {}
    try:
        for path, page, problems in open_pages(context, site_url, PAGES):
            load_all_images(page)
            widths = page.evaluate("({doc: document.documentElement.scrollWidth, view: window.innerWidth})")
            snap(page, screenshots, f"phone-{slug(path)}.png")
            first_figure = page.locator("figure[id^='fig-']").first
            if first_figure.count():
                snap(first_figure, screenshots, f"phone-{slug(path)}-first-picture.png")
            if widths["doc"] > widths["view"]:
                problems.append(f"page is {widths['doc']} px wide in a {widths['view']} px viewport")
            wide = page.evaluate("""Array.from(document.querySelectorAll('.md-content img')).filter(
                img => img.getBoundingClientRect().right > window.innerWidth + 1).map(img => img.src)""")
            if wide:
                problems.append(f"pictures wider than the phone screen: {wide}")
            problems += page.evaluate(OVERFLOWING_TABLES_JS)
            found[path] = problems
    finally:
        context.close()
    return found


@pytest.mark.parametrize("path", PAGES, ids=[slug(p) for p in PAGES])
def test_phone_width_has_no_horizontal_overflow(phone_crawl, path):
    assert not phone_crawl[path], "\n".join(phone_crawl[path])


def test_phone_nav_drawer_opens_and_navigates(phone, site_url, screenshots):
    page, problems = open_page(phone, site_url)
    drawer = page.locator(".md-sidebar--primary")
    assert drawer.bounding_box()["x"] < 0 or not drawer.is_visible(), "drawer open before the menu is tapped"
    page.click("label.md-header__button[for='__drawer']")
    page.wait_for_function("document.querySelector('.md-sidebar--primary').getBoundingClientRect().x >= 0")
    snap(page, screenshots, "phone-drawer-open.png")
    drawer.locator("label.md-nav__link", has_text="The exercise").first.click()  # the section's sub-menu
    link = drawer.get_by_role("link", name="Monitoring data", exact=True).first
    link.wait_for(state="visible")
    snap(page, screenshots, "phone-drawer-section.png")
    link.click()
    page.wait_for_url(re.compile(r"monitoring-data/?$"))
    assert "Monitoring" in page.locator("h1").first.inner_text()
    assert not problems, "\n".join(problems)


def test_every_picture_opens_whole_in_a_lightbox(crawl, desktop, site_url):
    """Each picture of a page is a GLightbox link (mkdocs-glightbox under MkDocs, Zensical's own extension under
    Zensical): counted on every page by the crawl; on each page with pictures, clicking the first shows it whole,
    and Escape closes it."""
    unwrapped = [f"{path or 'home'}: {visit.zoom[0] - visit.zoom[1]} of {visit.zoom[0]}"
                 for path, visit in crawl.items() if visit.zoom[0] != visit.zoom[1]]
    assert not unwrapped, f"pictures that do not zoom: {unwrapped}"
    with_pictures = [path for path, visit in crawl.items() if visit.zoom[1]]
    assert len(with_pictures) >= 5
    for path, page, problems in open_pages(desktop, site_url, with_pictures):
        link = page.locator("article a.glightbox img").first
        link.scroll_into_view_if_needed()
        link.click()
        shown = page.locator(".glightbox-container .gslide.current img")
        shown.wait_for(state="visible", timeout=10_000)
        assert page.evaluate("img => img.naturalWidth > 0", shown.element_handle())
        page.keyboard.press("Escape")
        page.locator(".glightbox-container").wait_for(state="detached", timeout=10_000)
        assert not problems, f"{path or 'home'}: {problems}"
