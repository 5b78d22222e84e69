"""One look for every generated picture, and deterministic SVG output (same inputs, same bytes)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)

PURPLE = "#632ca6"   # Datadog's purple, for the metric line
WARN = "#f2a900"
ALERT = "#e0313b"
OK = "#3fa34d"
NODATA = "#8a8a8a"
GRID = "#e6e6e6"
STATE_COLOURS = {"OK": OK, "Warning": WARN, "Alert": ALERT, "No data": NODATA}

matplotlib.rcParams.update({
    "svg.hashsalt": "dd-runbook-previews",   # fixed ids instead of random ones
    "svg.fonttype": "path",                 # glyphs as paths: the picture looks the same without the font
    "font.family": "DejaVu Sans",           # shipped inside matplotlib, so the same on every machine
    "font.size": 9.5,  # TEXT_PT
    "axes.edgecolor": "#bbbbbb",
    "axes.grid": True,
    "grid.color": GRID,
    "axes.spines.top": False,
    "axes.spines.right": False,
})

# Sizes chosen for the reader: a picture of WIDTH_IN inches is shown at about its natural size in the text
# column at desktop width, where TEXT_PT (the smallest text: ticks, legends, notes) is at least 11 CSS px.
# The browser suite measures it (the smallest size is written into each SVG's description by `save`).
WIDTH_IN = 7.5
TEXT_PT = 9.5
TITLE_PT = 10.5

APPROXIMATION_NOTE = "Simulated data, drawn offline by dd-runbook -- not a Datadog screenshot"


def save(fig, path: Path) -> Path:
    """Write ``fig`` as a deterministic SVG (no date in the metadata) and close it."""
    smallest = smallest_text_pt(fig)
    if smallest < TEXT_PT:
        raise ValueError(f"{path.name}: a text of {smallest} pt, under the {TEXT_PT} pt a reader can read")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", bbox_inches="tight",
                metadata={"Date": None, "Creator": "dd-runbook previews",
                          "Description": f"smallest text: {smallest:g} pt"})
    plt.close(fig)
    return path


def smallest_text_pt(fig) -> float:
    """The size of the smallest text ``fig`` shows (titles, ticks, legends, notes), in points."""
    fig.canvas.draw()  # tick labels exist once the figure is drawn

    def shown(text) -> bool:
        return bool(text.get_visible() and text.get_text().strip()
                    and (text.axes is None or text.axes.get_visible()))

    return min((text.get_fontsize() for text in fig.findobj(matplotlib.text.Text) if shown(text)), default=TEXT_PT)


def figure(width_in: float, height_in: float, **kwargs):
    return plt.subplots(figsize=(width_in, height_in), **kwargs)


def footnote(fig, text: str = APPROXIMATION_NOTE) -> None:
    fig.text(0.01, -0.02, text, fontsize=TEXT_PT, color="#777777", ha="left", va="top", wrap=True)
