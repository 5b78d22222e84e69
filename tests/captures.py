"""Plain-text outputs of real runs, saved for the site's terminal pictures (tests/previews_fixtures.py converts
them when the session ends)."""

import time
from pathlib import Path

CAPTURES = Path(__file__).resolve().parents[1] / "artifacts" / "captures"
# Imported when the tests are collected, before any of them runs: a capture written since is this session's.
SESSION_STARTED = time.time()


def capture(name: str, text: str) -> None:
    CAPTURES.mkdir(parents=True, exist_ok=True)
    (CAPTURES / name).write_text(text)
