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
    "font.size": 9,
    "axes.edgecolor": "#bbbbbb",
    "axes.grid": True,
    "grid.color": GRID,
    "axes.spines.top": False,
    "axes.spines.right": False,
})

APPROXIMATION_NOTE = "Simulated data, drawn offline by dd-runbook -- not a Datadog screenshot"


def save(fig, path: Path) -> Path:
    """Write ``fig`` as a deterministic SVG (no date in the metadata) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": "dd-runbook previews"},
                bbox_inches="tight")
    plt.close(fig)
    return path


def figure(width_in: float, height_in: float, **kwargs):
    return plt.subplots(figsize=(width_in, height_in), **kwargs)


def footnote(fig, text: str = APPROXIMATION_NOTE) -> None:
    fig.text(0.01, -0.02, text, fontsize=7, color="#777777", ha="left", va="top")
