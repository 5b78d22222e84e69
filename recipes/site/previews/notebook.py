"""The Notebook as a page of cells, drawn from payloads/notebook.json as ./run notebook would send it (a preview).

Each markdown cell shows its heading, what was asked and the links it holds; each live cell a frame with its
title and its query (the dashboards' own widgets, resolved from payloads/timeboard.json and apm-dashboard.json).
Nothing here asks Datadog: the text stays selectable SVG, and the footer says it is not a screenshot.
"""

from __future__ import annotations

import html
import re
import textwrap
from pathlib import Path

from recipes.site.previews import style

WIDTH = 900
WRAP = 118  # characters a body line holds at 13 px
LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
STYLE = """  <style>
    text { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; fill: #1f1f1f; }
    .name { font-size: 18px; font-weight: bold; }
    .h { font-size: 15px; font-weight: bold; }
    .body { font-size: 13px; }
    .link { font-size: 12px; fill: #632ca6; }
    .kind { font-size: 11px; font-weight: bold; fill: #ffffff; }
    .title { font-size: 13px; font-weight: bold; }
    .mono { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; fill: #444444; }
    .foot { font-size: 11px; fill: #777777; font-style: italic; }
  </style>"""


def plain(text: str) -> str:
    """Markdown as the line of text a reader sees: links as their words, no emphasis or code marks."""
    return LINK.sub(r"\1", text).replace("**", "").replace("`", "")


def markdown_lines(text: str) -> tuple[str, list[str], list[str]]:
    """(heading, body lines, link words) of a markdown cell: the body is its 'Asked' paragraph, or its first."""
    heading, _, rest = text.partition("\n")
    paragraphs = [p.strip() for p in rest.split("\n\n") if p.strip()]
    asked = next((p for p in paragraphs if p.startswith("**Asked:**")), paragraphs[0] if paragraphs else "")
    links = [words for words, _ in LINK.findall(rest)]
    return heading.lstrip("# ").strip(), textwrap.wrap(plain(asked), WRAP)[:3], links


def cell_svg(cell: dict, y: int) -> tuple[list[str], int]:
    """The SVG elements of one cell from height y, and the height after it."""
    definition = cell["attributes"]["definition"]
    kind = definition["type"]
    out = []
    if kind == "markdown":
        heading, lines, links = markdown_lines(definition["text"])
        out.append(f'  <text class="h" x="24" y="{y + 18}">{html.escape(heading)}</text>')
        y += 26
        for line in lines:
            out.append(f'  <text class="body" x="24" y="{y + 14}">{html.escape(line)}</text>')
            y += 18
        if links:
            out.append(f'  <text class="link" x="24" y="{y + 14}">{html.escape("Links: " + ", ".join(links))}</text>')
            y += 18
        return out, y + 10
    title = definition.get("title") or kind
    query = definition.get("query") if kind == "log_stream" else "; ".join(r.get("q", "") for r in definition.get("requests", []))
    label = "LOG STREAM" if kind == "log_stream" else "LIVE GRAPH"
    accent = style.NODATA if kind == "log_stream" else style.PURPLE
    pill = 18 + 8 * len(label)  # 11 px bold capitals: about 8 px each
    out += [f'  <rect x="24" y="{y}" width="{WIDTH - 48}" height="58" rx="6" fill="#f7f5fb" stroke="#d9d0ea"/>',
            f'  <rect x="36" y="{y + 10}" width="{pill}" height="18" rx="9" fill="{accent}"/>',
            f'  <text class="kind" x="{36 + pill / 2:g}" y="{y + 23}" text-anchor="middle">{label}</text>',
            f'  <text class="title" x="{46 + pill}" y="{y + 24}">{html.escape(title)}</text>',
            f'  <text class="mono" x="36" y="{y + 46}">{html.escape(textwrap.shorten(query, 120))}</text>']
    return out, y + 68


def draw_notebook(body: dict, path: Path) -> Path:
    """The notebook's cells in order, as a page (a preview, not a Datadog screenshot)."""
    attributes = body["data"]["attributes"]
    elements, y = [f'  <text class="name" x="24" y="36">{html.escape(attributes["name"])}</text>'], 56
    for cell in attributes["cells"]:
        drawn, y = cell_svg(cell, y)
        elements += drawn
    footer = ("Preview drawn offline from payloads/notebook.json (its graphs from the dashboards' payloads) with "
              "sample values -- not a screenshot of Datadog.")
    elements.append(f'  <text class="foot" x="24" y="{y + 16}">{html.escape(footer)}</text>')
    height = y + 32
    aria = html.escape(f"Preview of the notebook {attributes['name']}")
    svg = "\n".join([f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
                     f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{aria}">', f"  <title>{aria}</title>", STYLE,
                     f'  <rect x="0.5" y="0.5" width="{WIDTH - 1}" height="{height - 1}" rx="8" fill="#ffffff" stroke="#d0d0d0"/>',
                     *elements, "</svg>", ""])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg, encoding="utf-8")
    return path
