"""The site as each engine builds it, once per test session, for the build checks and the Chromium layer alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from recipes.site import engines


@pytest.fixture(scope="session", params=engines.ENGINES)
def engine(request) -> str:
    """Every site test runs over the site as each engine builds it (MkDocs Material, then Zensical)."""
    return request.param


@pytest.fixture(scope="session")
def built_site(engine, tmp_path_factory) -> Path:
    """The strict build of the working tree by ``engine``, into a temporary folder."""
    out = tmp_path_factory.mktemp(f"site-{engine}")
    result = engines.build(engine, out, capture=True)
    assert result.ok, f"{engine} build failed:\n{result.output[-3000:]}"
    return out
