"""Plain-text outputs of real runs, saved for the site's terminal pictures (tests/previews_fixtures.py converts
them when the session ends)."""

from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "artifacts" / "captures"


def capture(name: str, text: str) -> None:
    CAPTURES.mkdir(parents=True, exist_ok=True)
    (CAPTURES / name).write_text(text)
