"""snapshot with the real datadog-api-client against the fake Datadog API (a stand-in for the SaaS): the query and
window sent, an image that renders late or never, no second event on a re-run, api.notify checked first."""

import time

import pytest
from invoke.exceptions import Exit

from recipes import settings as schema
from recipes.api import snapshot as shots
from recipes.api import tasks as api
from tests.fakedd.fixtures import api_context

pytestmark = pytest.mark.fake_api

@pytest.fixture
def ready(fake_dd, dd_keys, monkeypatch):
    """(fake, context): the timeboard applied, a fixed clock, fast polling."""
    now = int(time.time()) - 30  # a moment ago: the test's later looks come later on the real clock
    monkeypatch.setattr(shots, "clock", lambda: now)
    c = api_context(fake_dd, snapshot_wait=3, snapshot_poll=0.05)
    api.timeboard(c)
    fake_dd.clear_log()
    return fake_dd, c, now


def sent(fake, method, path):
    return [r for r in fake.requests if (r.method, r.path) == (method, path)]


def test_the_widget_query_and_the_past_5_minutes_are_sent_and_the_event_mentions_the_handle_against_the_fake_api(ready, capsys):
    fake, c, now = ready
    fake.snapshots.render_after = 3
    api.snapshot(c)
    (asked,) = sent(fake, "GET", "/api/v1/graph/snapshot")
    assert asked.query["metric_query"] == ["avg:my_metric{host:datadog-exercise}"]
    assert (int(asked.query["start"][0]), int(asked.query["end"][0])) == (now - 300, now)
    (event,) = fake.telemetry.events
    url = fake.snapshots.polls and next(iter(fake.snapshots.polls))
    assert fake.snapshots.polls[url] == 4  # three 403s, then the PNG
    assert "@oncall@example.com" in event["text"] and f"({fake.url}{url})" in event["text"]
    assert event["title"] == "[dd-runbook:snapshot] my_metric on datadog-exercise, past 5 min"
    out = capsys.readouterr().out
    assert f"from_ts={(now - 300) * 1000}&to_ts={now * 1000}&live=true" in out and "rendered after 4 look(s)" in out


def test_an_image_that_never_renders_gives_up_and_posts_nothing_against_the_fake_api(ready):
    fake, c, now = ready
    fake.snapshots.broken = True
    started = time.monotonic()
    with pytest.raises(Exit) as stop:
        api.snapshot(c)
    assert stop.value.code == 1 and "did not render within 3 s" in stop.value.message
    assert "nothing was posted" in stop.value.message and 2.5 < time.monotonic() - started < 10
    assert sent(fake, "POST", "/api/v1/events") == [] and fake.telemetry.events == []


def test_a_rerun_in_the_same_window_posts_nothing_unless_again_against_the_fake_api(ready, capsys):
    fake, c, now = ready
    api.snapshot(c)
    api.snapshot(c)
    assert len(sent(fake, "POST", "/api/v1/events")) == 1 and len(sent(fake, "GET", "/api/v1/graph/snapshot")) == 1
    assert "already sent" in capsys.readouterr().out
    api.snapshot(c, again=True)
    assert len(sent(fake, "POST", "/api/v1/events")) == 2


def test_another_widget_by_title_against_the_fake_api(ready):
    fake, c, now = ready
    api.snapshot(c, widget="MySQL CPU time with anomalies (basic, 3 bounds)", minutes=15)
    (asked,) = sent(fake, "GET", "/api/v1/graph/snapshot")
    assert asked.query["metric_query"][0].startswith("anomalies(avg:mysql.performance.cpu_time")
    assert int(asked.query["end"][0]) - int(asked.query["start"][0]) == 900


@pytest.mark.parametrize("notify, fragment", [
    ("", "placeholder ${NOTIFY} is not filled (set api.notify"),
    ("@you@example.com", "is the shipped example"),
])
def test_a_missing_or_example_handle_is_refused_before_any_request_against_the_fake_api(fake_dd, dd_keys, notify, fragment):
    c = api_context(fake_dd)
    settings = schema.of(c)  # a handle the settings schema would refuse (an empty one) is set past it
    schema.keep(c.config, settings.model_copy(update={"api": settings.api.model_copy(update={"notify": notify})}))
    with pytest.raises(Exit) as stop:
        api.snapshot(c)
    assert stop.value.code == 2 and fragment in stop.value.message and fake_dd.requests == []


def test_an_unknown_widget_is_refused_with_the_titles_before_any_request_against_the_fake_api(fake_dd, dd_keys):
    c = api_context(fake_dd)
    with pytest.raises(Exit) as stop:
        api.snapshot(c, widget="Nope")
    assert stop.value.code == 2 and "no widget titled 'Nope'" in stop.value.message
    assert "'my_metric on datadog-exercise'" in stop.value.message and fake_dd.requests == []


def test_dry_run_prints_both_requests_and_sends_nothing_against_the_fake_api(fake_dd, dd_keys, capsys):
    c = api_context(fake_dd)
    api.snapshot(c, dry_run=True)
    out = capsys.readouterr().out
    assert "GET /api/v1/graph/snapshot?metric_query=avg:my_metric{host:datadog-exercise}" in out
    assert "POST /api/v1/events" in out and "@oncall@example.com" in out and fake_dd.requests == []
