"""Fixtures for the fake_api layer: the local fake Datadog server and an invoke context aimed at it."""

from __future__ import annotations

import copy

import pytest
from invoke import Config, Context

import tasks  # noqa: F401  (assembles the tasks: each body runs inside recipes/boundary.py, as under ./run)
from recipes.defaults import CONFIG
from tests.fakedd.server import FakeDatadog

FAKE_API_KEY = "fake-api-key-0123456789abcdef"
FAKE_APP_KEY = "fake-app-key-fedcba9876543210"
EXPECTED = {"dashboards": 2, "monitors": 1, "downtimes": 2, "notebooks": 1}  # what the payloads make: one object each


def counts(fake: FakeDatadog) -> dict:
    """The objects the fake holds, by kind (canceled downtimes left out)."""
    return {"dashboards": len(fake.state.dashboards), "monitors": len(fake.state.monitors), "downtimes": len(fake.active_downtimes()),
            "notebooks": len(fake.state.notebooks)}


def writes(fake: FakeDatadog) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.writes()]


@pytest.fixture
def fake_dd():
    """A fresh FakeDatadog on 127.0.0.1 (stand-in for the SaaS), stopped after the test."""
    fake = FakeDatadog(api_key=FAKE_API_KEY, app_key=FAKE_APP_KEY).serve()
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def dd_keys(monkeypatch):
    monkeypatch.setenv("DD_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("DD_APP_KEY", FAKE_APP_KEY)
    monkeypatch.delenv("DD_SITE", raising=False)


def api_context(fake: FakeDatadog, **api) -> Context:
    config = copy.deepcopy(CONFIG)
    config["api"].update({"base_url": fake.url, "timeout": 1.5, "max_retries": 3, "backoff": 0.01, "backoff_max": 0.05, **api})
    config["api"]["notify"] = "@oncall@example.com"
    return Context(Config(overrides=config))


@pytest.fixture
def dd(fake_dd, dd_keys):
    """(fake, context): keys set, the runbook's API tasks aimed at the fake with fast retries."""
    return fake_dd, api_context(fake_dd)
