"""The site built for a sub-path address, as GitHub Pages serves a project site (https://OWNER.github.io/REPO/),
under both engines: its sitemap, canonical links and 404 page carry the address, and Chromium reads it, 404 page
included, without a failed request."""

from __future__ import annotations

import functools
import io
import re
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from recipes.site import engines
from tests.browser.conftest import QuietHandler

pytestmark = pytest.mark.browser

PUBLISHED = "https://example.org/runbook/"  # a project site's address: a host and a sub-path


class SubPath(QuietHandler):
    """Serves a built site at /runbook/, as GitHub Pages serves a project site, with its 404 page for the rest."""

    def send_head(self):
        if not self.path.startswith("/runbook/"):
            self.send_error(404)
            return None
        self.path = self.path[len("/runbook"):]
        target = Path(self.translate_path(self.path))
        if target.is_dir() and not (target / "index.html").is_file() or not target.exists():
            body = (Path(self.directory) / "404.html").read_bytes()
            self.send_response(404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)
        return super().send_head()


@pytest.fixture(params=engines.ENGINES)
def published(request, tmp_path):
    """The site built for PUBLISHED by one engine, served at http://127.0.0.1:<port>/runbook/."""
    out = tmp_path / "site"
    result = engines.build(request.param, out, capture=True, site_url=PUBLISHED)
    assert result.ok, result.output[-3000:]
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SubPath, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield out, f"http://127.0.0.1:{server.server_address[1]}/runbook/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_sub_path_build_has_its_sitemap_canonical_links_and_404_page_under_the_address(published):
    out, _ = published
    sitemap = (out / "sitemap.xml").read_text()
    locations = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    assert locations and all(loc.startswith(PUBLISHED) for loc in locations)
    assert f'<link rel="canonical" href="{PUBLISHED}prerequisites/">' in (out / "prerequisites/index.html").read_text()
    assets = re.findall(r'(?:href|src)="(/[^"]+)"', (out / "404.html").read_text())
    assert assets and all(path.startswith("/runbook/") for path in assets), assets


def test_a_sub_path_build_reads_without_a_failed_request_in_chromium_even_its_404_page(published, browser):
    _, url = published
    context = browser.new_context()
    failed = []
    context.on("requestfailed", lambda request: failed.append(request.url))
    context.on("response", lambda response: failed.append(response.url) if response.status >= 400
               and not response.url.endswith("/nope/") else None)
    try:
        page = context.new_page()
        page.goto(url + "prerequisites/")
        page.wait_for_load_state("networkidle")
        page.locator("a.md-nav__link", has_text="Collecting metrics").first.click()
        page.wait_for_load_state("networkidle")
        assert page.url == url + "collecting-metrics/"
        missing = page.goto(url + "nope/")
        assert missing.status == 404
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").first.inner_text().strip() == "404 - Not found"
        assert page.evaluate("getComputedStyle(document.querySelector('.md-header')).position") == "sticky"
    finally:
        context.close()
    assert failed == []
