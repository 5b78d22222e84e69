"""Macros for the site (mkdocs-macros): run-it boxes, file includes and picture slots.

Everything here reads the real thing -- the invoke namespace, the files in payloads/ and
recipes/, docs/figures.yml -- and fails the build on unknown input, so a page cannot name a
task or a file that does not exist.
"""

from __future__ import annotations

import html
import json
import posixpath
import re
import sys
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]  # mkdocs-macros loads this file by path, before recipes is importable
FIGURES_FILE = ROOT / "docs" / "figures.yml"

# `invoke some-task` in a page's text must name a real task.
TASK_MENTION = re.compile(r"(?:\binvoke|\./run)\s+([a-z][a-z0-9-]*)")
# Repository paths named in a page must exist (payloads/x.json, recipes/x.py, app/..., tests/...).
PATH_MENTION = re.compile(r"(?<![\w/.-])((?:payloads|recipes|app|tests|bench)/[\w./-]*\w)")
# Words after `invoke` that are not task names.
INVOKE_WORDS = {"list", "help", "tasks", "task", "command"}


class SiteError(Exception):
    """A page asks for a task, file or picture that does not exist."""


def load_namespace():
    """The invoke namespace exactly as `invoke --list` sees it."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import tasks  # noqa: PLC0415 (tasks.py lives at the project root)

    return tasks


def find_task(name: str):
    tasks = load_namespace()
    try:
        return tasks.ns[name]
    except (KeyError, ValueError):
        known = ", ".join(sorted(tasks.ns.task_names))
        raise SiteError(f"unknown task {name!r}; known tasks: {known}") from None


def repo_file(path: str) -> Path:
    full = (ROOT / path).resolve()
    if ROOT not in full.parents or not full.is_file():
        raise SiteError(f"file {path!r} does not exist in the repository")
    return full


def describe_default(arg) -> str:
    if arg.kind is bool:
        return "off" if not arg.default else "on"
    if arg.default in (None, [], ""):
        return "from configuration" if arg.kind is not list else "from configuration"
    return f"`{arg.default}`"


def option_rows(task) -> list[str]:
    rows = []
    for arg in task.get_arguments():
        long_name = max(arg.names, key=len)
        dashes = "-" if len(long_name) == 1 else "--"  # test's -k, a one-letter option, has no long form
        flag = f"{dashes}{long_name}" + ("" if arg.kind is bool else f" {long_name.upper().replace('-', '_')}")
        repeat = " (repeatable)" if arg.kind is list else ""
        # <wbr> after a slash: "DD_API_KEY/DD_APP_KEY" may wrap there on a phone instead of widening the table.
        help_text = (arg.help or "").replace("|", "\\|").replace("/", "/<wbr>")
        rows.append(f"| `{flag}`{repeat} | {describe_default(arg)} | {help_text} |")
    return rows


def render_run_it(name: str) -> str:
    task = find_task(name)
    doc = textwrap.dedent(task.__doc__ or "").strip()
    if not doc:
        raise SiteError(f"task {name!r} has no docstring to show")
    summary, _, details = doc.partition("\n")
    body = [
        "```bash",
        f"./run {name}",
        "```",
        "",
        f"**{summary.strip()}** {textwrap.dedent(details).strip()}".strip(),
    ]
    rows = option_rows(task)
    if rows:
        body += ["", "| Option | Default | What it does |", "|---|---|---|", *rows]
    inner = textwrap.indent("\n".join(body), "    ")
    return (
        f'<div class="run-it" id="run-it-{html.escape(name)}" data-task="{html.escape(name)}" markdown>\n\n'
        f'!!! example "Run it: `./run {name}`"\n\n{inner}\n\n</div>\n'
    )


def render_include(path: str, lang: str = "", indent: int = 0, title: str | None = None) -> str:
    text = repo_file(path).read_text(encoding="utf-8").rstrip("\n")
    lang = lang or {"json": "json", "py": "python", "yaml": "yaml", "yml": "yaml"}.get(Path(path).suffix[1:], "text")
    fence = "````" if "```" in text else "```"
    head = f'{fence}{lang} title="{title or path}"'
    block = f"{head}\n{text}\n{fence}"
    # The macro call already sits at the indentation of its tab or admonition: indent the lines after it.
    first, _, rest = block.partition("\n")
    return first + "\n" + textwrap.indent(rest, " " * indent, lambda line: True)


def load_figures() -> dict:
    return yaml.safe_load(FIGURES_FILE.read_text(encoding="utf-8"))


def render_screenshot(key: str, page_src: str) -> str:
    figures = load_figures()
    if key not in figures:
        raise SiteError(f"unknown picture {key!r} (declared in docs/figures.yml: {', '.join(figures)})")
    fig = figures[key]
    caption = (
        f"<strong>Counterpart of the write-up's <code>{html.escape(fig['original'])}</code>.</strong> "
        f"{html.escape(fig['shows'])} <em>Made by: {html.escape(fig['made_by'])}.</em>"
    )
    if fig.get("file"):
        if not (ROOT / "docs" / fig["file"]).is_file():
            raise SiteError(f"picture {key!r}: docs/{fig['file']} is declared but missing")
        body = markdown_image(fig["file"], fig["shows"], page_src)
        css = "rb-figure"
    else:
        body = (
            f'<div class="rb-placeholder" role="img" aria-label="picture not generated yet">'
            f"Picture not generated yet: <code>{html.escape(key)}</code></div>"
        )
        css = "rb-figure rb-figure--pending"
    return figure(body, caption, css, f' id="fig-{key}"')


def render_picture(path: str, caption: str, page_src: str) -> str:
    if not (ROOT / "docs" / path).is_file():
        raise SiteError(f"picture docs/{path} does not exist")
    return figure(markdown_image(path, caption, page_src), html.escape(caption), "rb-figure")


def figure(body: str, caption: str, css: str, attrs: str = "") -> str:
    # `markdown` lets the image inside be Markdown, whose links both engines resolve the same way.
    return f'<figure class="{css}"{attrs} markdown>\n\n{body}\n\n<figcaption>{caption}</figcaption>\n</figure>\n'


def markdown_image(doc_path: str, alt: str, page_src: str) -> str:
    """A Markdown image of a file under docs/, linked relative to the page's source file.

    Not raw <img>: MkDocs leaves a raw src alone while Zensical rewrites it as if it were relative to the
    source file, so only a Markdown link means the same file under both engines (and is checked by both).
    """
    text = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("\n", " ")
    return f"![{text}]({relative_link(doc_path, page_src)}){{ loading=lazy }}"


def relative_link(doc_path: str, page_src: str) -> str:
    """Link from a page's source file (e.g. 'reference/tasks.md') to a file under docs/."""
    depth = page_src.count("/")
    return "../" * depth + doc_path


def page_source(env) -> str:
    """The page's path under docs/, from either engine's macro environment.

    MkDocs' macros plugin gives a mkdocs Page (its file's src_path); Zensical gives its own Page (path).
    """
    page = getattr(env, "page", None)
    if page is None:
        raise SiteError("a picture macro was called outside a page")
    file = getattr(page, "file", None)
    return file.src_path if file is not None else page.path


def task_sections(tasks) -> list[tuple[str, list[str]]]:
    """(section, its task names) in the order users meet them, then the maintainers' sections (tasks.py)."""
    return [*tasks.SECTIONS.items(), *tasks.MAINTAINER_SECTIONS.items()]


RUN_IT_CALL = re.compile(r"""run_it\(["']([a-z][a-z0-9-]*)["']\)""")
TASKS_PAGE = "reference/tasks.md"


def task_homes() -> dict[str, str]:
    """task -> the page (relative to docs/) whose run-it box shows it; a task with none is boxed on the Tasks page."""
    homes = {}
    for path in sorted((ROOT / "docs").rglob("*.md")):
        page = path.relative_to(ROOT / "docs").as_posix()
        if page != TASKS_PAGE:
            for name in RUN_IT_CALL.findall(path.read_text(encoding="utf-8")):
                homes.setdefault(name, page)
    return homes


def task_table() -> str:
    """Every task in one short table: its section, its one line, and a link to the box that shows it whole."""
    tasks = load_namespace()
    homes = task_homes()
    lines = ["| Section | Task | What it does |", "|---|---|---|"]
    for section, names in task_sections(tasks):
        for name in names:
            summary = textwrap.dedent(tasks.ns[name].__doc__ or "").strip().splitlines()[0]
            home = homes.get(name)
            target = (posixpath.relpath(home, posixpath.dirname(TASKS_PAGE)) if home else "") + f"#run-it-{name}"
            lines.append(f"| {section} | [`{name}`]({target}) | {summary.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)


def all_run_its() -> str:
    """The boxes of the tasks no exercise page shows (the maintainers' mostly), by section."""
    tasks = load_namespace()
    homes = task_homes()
    out = []
    for section, names in task_sections(tasks):
        names = [name for name in names if name not in homes]
        if not names:
            continue
        files = dict.fromkeys(sys.modules[tasks.ns[name].body.__module__].__file__ for name in names)
        code = ", ".join(f"`{Path(file).resolve().relative_to(ROOT)}`" for file in files)
        out.append(f"### {section}\n\nCode: {code}.\n")
        for name in names:
            out.append(render_run_it(name))
    return "\n".join(out)


def monitor_simulation_table() -> str:
    """The monitor as written vs "at least once" on a simulated day, computed at build time from the payloads."""
    import json  # noqa: PLC0415

    from recipes.site.previews import simulation as sim  # noqa: PLC0415
    from recipes.defaults import CONFIG  # noqa: PLC0415

    cfg = CONFIG["previews"]["simulation"]
    monitor = json.loads(repo_file("payloads/monitor.json").read_text())
    variant = json.loads(repo_file("payloads/monitor-at-least-once.json").read_text())
    thresholds = monitor["options"]["thresholds"]
    series = sim.simulate(cfg["seed"], cfg["duration_s"], cfg["interval_s"])
    columns = []  # one column per query: the query, then its figures
    for query in (monitor["query"], variant["query"]):
        aggregator = query.split("(", 1)[0]
        ev = sim.evaluate(series, aggregator, cfg["window_s"], cfg["every_s"], thresholds["warning"], thresholds["critical"])
        expected = sim.expected_fraction_above(aggregator, thresholds["critical"], cfg["window_s"], cfg["interval_s"])
        columns.append([f"`{query}`", *(f"{ev.fraction(s):.1%}" for s in (sim.OK, sim.WARNING, sim.ALERT)),
                        str(ev.notifications()), str(ev.alert_notifications()), f"{expected:.2%}"])
    # Transposed (figures as rows) so that the table fits a phone screen as well as a desktop column.
    labels = ["Monitor query", "Time in OK", "Time in Warning", "Time in Alert", "Notifications", "Of which alerts",
              "Alert share expected"]
    rows = ["| | As written (`payloads/monitor.json`) | At least once (`payloads/monitor-at-least-once.json`) |",
            "|---|---|---|"]
    rows += [f"| {label} | {written} | {once} |" for label, written, once in zip(labels, *columns)]
    return "\n".join(rows)


def fake_api_rules() -> str:
    """What tests/fakedd copies from the real API's recorded answers, one row per rule, read from the rules."""
    load_namespace()  # the repository root on sys.path
    from tests.fakedd import server  # noqa: F401, PLC0415 (importing the server registers every rule)
    from tests.fakedd.rules import RULES  # noqa: PLC0415

    rows = ["| Object | What the real API does (recorded), and the fake's rule that copies it |", "|---|---|"]
    for rule in RULES:
        where = rule.module.replace(".", "/") + ".py"
        # a cassette's long snake_case name may break after an underscore on a phone's width
        behaviour = html.escape(rule.behaviour).replace("|", "&#124;").replace("_", "_<wbr>")
        rows.append(f"| {rule.obj} | {behaviour}<br>copied by `{where}` `{rule.name}` |")
    return "\n".join(rows)


def scorecard_rows() -> str:
    """verify-account's rows, one heading each (the sections link to them), from recipes/api/requirements.py."""
    from recipes.api import requirements  # noqa: PLC0415

    parts = []
    for req in requirements.ALL:
        section = req.section.removesuffix(".md").replace("-", " ").capitalize()
        parts.append(f"### {req.name} {{ #{req.anchor} }}\n\nReads {req.reads}. "
                     f"Proves [{section}]({req.section}).\n")
    return "\n".join(parts)


def settings_table() -> str:
    """Every setting with its default and what it may be, from the schema (recipes/settings.py)."""
    from recipes import settings  # noqa: PLC0415
    from recipes.defaults import CONFIG  # noqa: PLC0415

    lines = ["| Setting | Default | May be |", "|---|---|---|"]
    for key, allowed in settings.rows():
        default = CONFIG
        for part in key.split("."):
            default = default[part]
        shown = json.dumps(default) if not isinstance(default, str) else (default or "(empty)")
        lines.append(f"| `{key}` | `{html.escape(shown).replace('|', '&#124;')}` | {html.escape(allowed)} |")
    return "\n".join(lines)


def defaults_yaml() -> str:
    from recipes.defaults import CONFIG  # noqa: PLC0415

    return "```yaml\n" + yaml.safe_dump(CONFIG, sort_keys=False, default_flow_style=False).rstrip() + "\n```"


def check_mentions(markdown: str, page: str) -> None:
    """Fail the build when a page names a task or repository file that does not exist."""
    known = set(load_namespace().ns.task_names)
    for mention in TASK_MENTION.finditer(markdown):
        if mention[1] not in known and mention[1] not in INVOKE_WORDS:
            raise SiteError(f"{page}: names `{mention[0]}`, which is not a task")
    for path in PATH_MENTION.findall(markdown):
        if not (ROOT / path).exists():
            raise SiteError(f"{page}: names {path!r}, which does not exist in the repository")


def define_env(env):
    """Register the macros with mkdocs-macros."""

    @env.macro
    def run_it(name: str) -> str:
        """The "run it" box of a task: command, docstring, options with defaults."""
        return render_run_it(name)

    @env.macro
    def include(path: str, lang: str = "", indent: int = 0, title: str | None = None) -> str:
        """A repository file as a code block (never pasted: read at build time)."""
        return render_include(path, lang, indent, title)

    @env.macro
    def screenshot(key: str) -> str:
        """The picture standing for one of the write-up's screenshots, or a marked placeholder."""
        return render_screenshot(key, page_source(env))

    @env.macro
    def picture(path: str, caption: str) -> str:
        """A generated picture that is not one of the write-up's screenshots (path under docs/)."""
        return render_picture(path, caption, page_source(env))

    env.macro(task_table)
    env.macro(all_run_its)
    env.macro(defaults_yaml)
    env.macro(settings_table)
    env.macro(monitor_simulation_table)
    env.macro(fake_api_rules)
    env.macro(scorecard_rows)
    check_zensical_page(env)


def on_pre_page_macros(env):
    """MkDocs' macros plugin: check the page's Markdown as written, before its macros run."""
    check_mentions(env.markdown, page_source(env))


def check_zensical_page(env) -> None:
    """Zensical has no page hooks but loads this module for each page, with the page: check it then."""
    if getattr(env, "page", None) is None:
        return  # MkDocs: define_env runs once, before any page (on_pre_page_macros checks each page)
    docs = Path(env.conf.get("root_dir", ".")) / env.conf.get("docs_dir", "docs")
    src = page_source(env)
    check_mentions((docs / src).read_text(encoding="utf-8"), src)
