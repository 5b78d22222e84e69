"""The site's two engines, building the same mkdocs.yml and docs/: MkDocs Material (the default) and Zensical.

Material for MkDocs reaches its end of life in May 2027; Zensical is its successor from the same team and
reads mkdocs.yml. Two of its habits shape how it is run here:

- its output folder must lie inside the project (the folder of mkdocs.yml) and is read from the config only:
  it builds from a one-line config that inherits mkdocs.yml and names a staging folder there;
- it caches rendered pages by their Markdown, but a page's macros read tasks.py and payloads/: the cache is
  cleared on every build, so a changed task or payload can never be served from a stale page.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from recipes.formats import SITE_ENGINES
from recipes.lazy import lazy

shutil = lazy("shutil")
tempfile = lazy("tempfile")

ROOT = Path(__file__).resolve().parents[2]
ENGINES = SITE_ENGINES
# Material for MkDocs prints a banner about its successor on every build; it is not a problem of this site.
QUIET = {"NO_MKDOCS_2_WARNING": "1"}
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Build:
    engine: str
    returncode: int
    output: str  # stdout and stderr together ("" when not captured)
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown site engine {engine!r}: choose one of {', '.join(ENGINES)}")
    return engine


def build(engine: str, out: Path, config: Path = ROOT / "mkdocs.yml", capture: bool = False,
          site_url: str = "") -> Build:
    """Build the site strictly with one engine into ``out``; ``capture`` keeps the output for the caller;
    ``site_url`` is where it will be published (empty: read locally).

    Either engine builds into a staging folder beside mkdocs.yml, which replaces ``out`` only on success.
    """
    check_engine(engine)
    root = config.parent
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(dir=root, prefix=".site-build-"))
    try:
        if engine == "mkdocs":
            with published_at(config, site_url) as effective:
                result = run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(effective),
                              "--site-dir", str(staging)], root, capture)
        else:
            result = zensical_build(config, staging, capture, site_url)
        if result.returncode == 0:
            replace_folder(Path(out).resolve(), staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    output = (result.stdout or "") + (result.stderr or "")
    return Build(engine, result.returncode, output, time.perf_counter() - started)


@contextmanager
def published_at(config: Path, site_url: str):
    """The config to build with: mkdocs.yml itself, or, for a published build, a config that inherits it and
    sets ``site_url`` (mkdocs.yml keeps it empty for local reading)."""
    if not site_url:
        yield config
        return
    wrapper = config.with_name(f".{config.stem}-published-{os.getpid()}.yml")
    wrapper.write_text(f"INHERIT: {config.name}\nsite_url: {json.dumps(site_url)}\n", encoding="utf-8")
    try:
        yield wrapper
    finally:
        wrapper.unlink(missing_ok=True)


def zensical_build(config: Path, staging: Path, capture: bool, site_url: str = "") -> subprocess.CompletedProcess:
    """Zensical reads its output folder from the config only: a one-line config inherits mkdocs.yml."""
    wrapper = staging.with_suffix(".yml")
    relative = staging.relative_to(config.parent)
    published = f"site_url: {json.dumps(site_url)}\n" if site_url else ""
    wrapper.write_text(f"INHERIT: {config.name}\nsite_dir: {relative}\n{published}", encoding="utf-8")
    try:
        # Zensical keeps its cache in the project's .cache/ and --clean empties it: one build at a time per
        # project (two test processes, a build beside `serve`), or one build's cache goes from under the other.
        with open(config.parent / ".zensical-build.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            result = run([sys.executable, "-m", "zensical", "build", "--clean", "--strict", "--config-file",
                          str(wrapper)], config.parent, capture=True)
    finally:
        wrapper.unlink(missing_ok=True)
    color = sys.stdout.isatty() and not capture
    result.stdout, result.stderr = (tidy(result.stdout, color), tidy(result.stderr, color))
    if not capture:
        print(result.stdout, end="", flush=True)
        print(result.stderr, end="", file=sys.stderr)
    return result


def tidy(text: str, color: bool) -> str:
    """Zensical's report, readable: a traceback (how it reports a macro error or a strict abort) cut to its
    last line, and its colours (one escape code per character, even into a pipe) kept only for a terminal."""
    if not color:
        text = ANSI_CODE.sub("", text)
    kept, inside = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("Traceback (most recent call last):"):
            inside = True
        elif inside and not line.startswith((" ", "\t")):
            inside = False
            kept.append(line)
        elif not inside:
            kept.append(line)
    return "".join(kept)


def replace_folder(target: Path, new: Path) -> None:
    """Put ``new`` where ``target`` is, removing what was there only once the new site is in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    shutil.move(str(new), str(target))
    shutil.rmtree(old, ignore_errors=True)


def run(argv: list[str], cwd: Path, capture: bool) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env={**os.environ, **QUIET}, text=True, capture_output=capture,
                          check=False)
