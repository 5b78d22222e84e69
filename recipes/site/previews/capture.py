"""Terminal pictures: a command's text or ANSI output as an SVG, drawn by rich (no screenshot tool needed)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import CONSOLE_SVG_FORMAT, Console, RenderableType
from rich.text import Text

# rich's SVG fetches Fira Code from a CDN; the site works offline and calls no third party, so the
# @font-face rules are dropped and the picture falls back to the reader's monospace font.
_FONT_FACES_START = CONSOLE_SVG_FORMAT.index("    @font-face")
_FONT_FACES_END = CONSOLE_SVG_FORMAT.index("    .{unique_id}-matrix")
OFFLINE_SVG_FORMAT = CONSOLE_SVG_FORMAT[:_FONT_FACES_START] + CONSOLE_SVG_FORMAT[_FONT_FACES_END:]

WIDTH = 100  # columns; long lines wrap like in a terminal of that width
HEIGHT = 50  # rows rich assumes; given, so that TERM=dumb cannot shrink the width to 80


def renderables_to_svg(renderables: list[RenderableType], path: Path, title: str, width: int = WIDTH) -> Path:
    """Print ``renderables`` on a recording console and save what it shows as an SVG at ``path``."""
    # Every size and colour choice is fixed and the environment is not read (_environ={}): TERM, COLUMNS,
    # LINES, NO_COLOR and FORCE_COLOR of the shell that draws must not change the picture.
    console = Console(record=True, width=width, height=HEIGHT, file=io.StringIO(), color_system="truecolor",
                      force_terminal=True, force_jupyter=False, force_interactive=False, no_color=False,
                      legacy_windows=False, _environ={})
    for renderable in renderables:
        console.print(renderable)
    path.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(path), title=title, code_format=OFFLINE_SVG_FORMAT)
    return path


def text_to_svg(output: str, path: Path, title: str, width: int = WIDTH) -> Path:
    """A command's captured output (plain or with ANSI colours) as a terminal picture."""
    # One empty row after the last line: rich clips each row at its baseline box, and the last row's
    # descenders (an underscore, a "g") would otherwise be cut by the frame.
    return renderables_to_svg([Text.from_ansi(output.rstrip("\n") + "\n")], path, title, width)


def capture_command(c, command: str, path: Path, title: str | None = None, width: int = WIDTH) -> Path:
    """Run ``command`` through the invoke context ``c`` and save its output (stdout then stderr) as a picture."""
    result = c.run(command, hide=True, warn=True, pty=False, in_stream=False)
    shown = f"$ {command}\n{result.stdout}{result.stderr}"
    return text_to_svg(shown, path, title or command, width)
