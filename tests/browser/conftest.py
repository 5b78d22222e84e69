"""Fixtures of the Chromium layer: the site built strictly, served on loopback, and Debian's Chromium.

Playwright (pinned on PyPI) drives Debian's Chromium headless shell via ``executable_path``; no browser is ever
downloaded. The headless shell is the build Playwright itself runs for headless Chromium since 1.49
(https://github.com/microsoft/playwright/issues/33566): Chromium's own renderer without the desktop browser
around it. This layer took 92 CPU-seconds with it and 133 with the full browser under ``--headless`` (process
accounting of the layer run alone). Without it the layer is skipped with the reason (CI installs it from
.ci/apt-packages.txt).
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = Path("/usr/bin/chromium-headless-shell")
SCREENSHOTS = ROOT / "artifacts" / "browser"
# Screenshots are for a person to look at (they assert nothing) and cost about a third of this layer's time:
# taken only when RUNBOOK_SCREENSHOTS is set, e.g. `RUNBOOK_SCREENSHOTS=1 ./run test -m browser`.
SAVE_SCREENSHOTS = os.environ.get("RUNBOOK_SCREENSHOTS", "") not in ("", "0")


def snap(target, folder: Path, name: str, **options) -> None:
    """Save a screenshot of a page or an element under ``folder``, when RUNBOOK_SCREENSHOTS asks for them."""
    if SAVE_SCREENSHOTS:
        if hasattr(target, "wait_for_function"):  # a page: let CSS transitions (the phone's drawer) end first
            target.wait_for_function("document.getAnimations().every(a => a.playState !== 'running')")
        target.screenshot(path=str(folder / name), **options)
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass


@pytest.fixture(scope="session")
def site_url(built_site):
    """The built site on http://127.0.0.1:<free port>/, served from a thread for the whole session."""
    handler = functools.partial(QuietHandler, directory=str(built_site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} is missing: install Debian's chromium-headless-shell (listed in .ci/apt-packages.txt)"
        print(f"\nSKIP browser layer: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (only when Chromium exists)

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots(engine) -> Path:
    folder = SCREENSHOTS / engine
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport=DESKTOP)
    yield context
    context.close()


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    yield context
    context.close()
