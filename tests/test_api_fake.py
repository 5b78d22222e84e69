"""The runbook's API tasks with the real datadog-api-client against FakeDatadog, a local stand-in server.

FakeDatadog (tests/fakedd) keeps state, answers the way the real API's recorded traffic shows
(defaults, floats, normalized types, trimmed text, paged lists) and records every request, so these
tests count writes; it injects 429/5xx/403 and slow answers, before or after the write, for the fault tests.
"""

from __future__ import annotations

import copy
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from invoke import Config
from invoke.exceptions import Exit

from recipes import settings as schema
from recipes.api import payloads as P, tasks as api
from recipes.defaults import CONFIG
from tests.fakedd.fixtures import EXPECTED, FAKE_API_KEY, FAKE_APP_KEY, api_context, counts, writes
from tests.fakedd.rules import RULES
from tests.fakedd.account import seed_account
from tests.fakedd.seed import seed_notebooks, seed_org

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "datadog-api.md"

pytestmark = pytest.mark.fake_api


def api_settings(**changes):
    """The shipped api settings, checked, with some changed."""
    return schema.of(Config(overrides=copy.deepcopy(CONFIG))).api.model_copy(update=changes)


def ours_notebook(fake) -> dict:
    (notebook,) = [n for n in fake.state.notebooks.values() if "Managed by dd-runbook." in json.dumps(n["attributes"]["cells"][0])]
    return notebook


def the_monitor(fake) -> dict:
    (monitor,) = fake.state.monitors.values()
    return monitor


# --- create, re-apply, edit, export -----------------------------------------------------------------
def test_first_apply_creates_each_object_once_in_dependency_order_against_the_fake_api(dd, capsys):
    fake, c = dd
    api.apply(c)
    assert counts(fake) == EXPECTED
    assert writes(fake) == [("POST", "/api/v1/dashboard")] * 2 + [("POST", "/api/v1/monitor")] + [("POST", "/api/v2/downtime")] * 2 + [("POST", "/api/v1/notebooks")]
    monitor = the_monitor(fake)
    assert monitor["query"] == "avg(last_5m):avg:my_metric{*} by {host} > 800"
    assert "@oncall@example.com" in monitor["message"]
    for downtime in fake.active_downtimes():
        assert downtime["attributes"]["monitor_identifier"] == {"monitor_id": monitor["id"]}
        assert downtime["attributes"]["schedule"]["timezone"] == "Europe/Paris"
    titles = sorted(d["title"] for d in fake.state.dashboards.values())
    assert titles == ["Exercise timeboard: my_metric on datadog-exercise", "Flask service flask (dev): APM and host metrics"]


def test_apply_prints_where_each_object_opens_in_the_web_app_against_the_fake_api(dd, capsys):
    fake, c = dd
    api.apply(c)
    shown = capsys.readouterr().out
    base = schema.of(c).api.base_url.rstrip("/")
    (monitor,) = fake.state.monitors.values()
    pages = [dashboard["url"] for dashboard in fake.state.dashboards.values()] + [f"/monitors/{monitor['id']}"]
    pages += [f"/monitors/downtimes?id={downtime['id']}" for downtime in fake.active_downtimes()]
    assert len(pages) == 5
    for page in pages:
        assert f"{base}{page}" in shown
    api.apply(c)  # a re-run that changes nothing still says where each object is
    again = capsys.readouterr().out
    assert all(f"{base}{page}" in again for page in pages)


def test_a_dry_run_and_a_plan_print_no_line_padded_to_the_terminal_against_the_fake_api(dd, capsys):
    fake, c = dd
    api.apply(c, dry_run=True)  # each body in full
    api.apply(c)
    fake.state.monitors[the_monitor(fake)["id"]]["message"] += " edited"
    api.plan(c)  # a diff
    shown = capsys.readouterr().out
    assert '"title": "Exercise timeboard' in shown and "edited" in shown
    assert [line for line in shown.splitlines() if line.endswith("  ")] == []  # a padded line ends in spaces


def test_second_apply_sends_no_write_and_keeps_one_of_each_against_the_fake_api(dd):
    fake, c = dd
    api.apply(c)
    fake.clear_log()
    changes = api.apply(c)
    assert fake.writes() == []
    assert {ch.action for ch in changes} == {"unchanged"}
    assert counts(fake) == EXPECTED


def test_plan_after_a_live_edit_shows_a_readable_diff_and_apply_fixes_it_in_place_against_the_fake_api(dd, capsys):
    fake, c = dd
    api.apply(c)
    the_monitor(fake)["options"]["thresholds"]["warning"] = 600  # someone edits it in the UI
    capsys.readouterr()
    changes = api.plan(c)
    shown = capsys.readouterr().out
    assert [ch.spec.key for ch in changes if ch.action == "update"] == ["monitor"]
    assert '-      "warning": 600' in shown and '+      "warning": 500' in shown
    assert "critical" in shown and '"critical": 800.0' not in shown  # server floats are not a change
    fake.clear_log()
    api.apply(c)
    assert writes(fake) == [("PUT", f"/api/v1/monitor/{the_monitor(fake)['id']}")]
    assert the_monitor(fake)["options"]["thresholds"]["warning"] == 500
    assert counts(fake) == EXPECTED


def test_plan_after_a_payload_edit_shows_the_change_against_the_fake_api(dd, tmp_path, capsys):
    fake, c = dd
    api.apply(c)
    for path in P.PAYLOAD_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text().replace("3600", "7200"))
    edited = api_context(fake, payload_dir=str(tmp_path))
    fake.clear_log()
    capsys.readouterr()
    changes = api.plan(edited)
    shown = capsys.readouterr().out
    assert [ch.spec.key for ch in changes if ch.action == "update"] == ["timeboard", "notebook"]  # one query, two places
    assert "rollup(sum, 7200)" in shown and "rollup(sum, 3600)" in shown
    assert fake.writes() == []
    api.apply(edited)
    (dash_id,) = [d["id"] for d in fake.state.dashboards.values() if d["title"].startswith("Exercise timeboard")]
    (notebook_id,) = fake.state.notebooks
    assert writes(fake) == [("PUT", f"/api/v1/dashboard/{dash_id}"), ("PUT", f"/api/v1/notebooks/{notebook_id}")]
    assert "rollup(sum, 7200)" in json.dumps(fake.state.dashboards[dash_id]["widgets"])
    assert "rollup(sum, 7200)" in json.dumps(fake.state.notebooks[notebook_id]["attributes"]["cells"])


def test_an_edited_downtime_window_is_patched_in_place_against_the_fake_api(dd, tmp_path):
    fake, c = dd
    api.apply(c)
    for path in P.PAYLOAD_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text().replace('"45h"', '"46h"'))
    fake.clear_log()
    api.apply(api_context(fake, payload_dir=str(tmp_path)))
    (weekend,) = [d for d in fake.active_downtimes() if "weekends" in d["attributes"]["message"]]
    assert writes(fake) == [("PATCH", f"/api/v2/downtime/{weekend['id']}")]
    assert [r["duration"] for r in weekend["attributes"]["schedule"]["recurrences"]] == ["46h", "14h"]
    assert counts(fake) == EXPECTED


def test_monitor_search_answers_in_the_documented_shape_against_the_fake_api(dd):
    from recipes.api.client import connect

    fake, c = dd
    api.apply(c)
    with connect(schema.of(c).api) as apis:
        found = apis.monitors.search_monitors(query="tag:managed-by:dd-runbook")
    assert [m.id for m in found.monitors] == [the_monitor(fake)["id"]]


def test_plan_before_anything_exists_lists_creations_without_writing_against_the_fake_api(dd, capsys):
    fake, c = dd
    changes = api.plan(c)
    assert [ch.action for ch in changes] == ["create"] * 6
    assert fake.writes() == []


def test_downtimes_recurring_start_in_the_past_is_not_a_change_against_the_fake_api(dd):
    fake, c = dd
    api.apply(c)
    earlier = {"BYDAY=SA": "2026-01-03T00:00", "BYDAY=SU": "2026-01-04T19:00", "BYDAY=MO": "2026-01-05T19:00"}
    for downtime in fake.active_downtimes():  # each window started weeks ago on a day its own rule allows
        for rec in downtime["attributes"]["schedule"]["recurrences"]:
            rec["start"] = next(start for day, start in earlier.items() if day in rec["rrule"])
    fake.clear_log()
    api.apply(c)
    assert fake.writes() == []


def test_a_recurrence_moved_to_another_weekday_is_a_change_against_the_fake_api(dd):
    fake, c = dd
    api.apply(c)
    (weekend,) = [d for d in fake.active_downtimes() if "weekends" in d["attributes"]["message"]]
    weekend["attributes"]["schedule"]["recurrences"][1]["start"] = "2026-01-05T19:00"  # a Monday, rule says Sunday
    fake.clear_log()
    api.apply(c)
    assert writes(fake) == [("PATCH", f"/api/v2/downtime/{weekend['id']}")]
    (patched,) = [d for d in fake.active_downtimes() if "weekends" in d["attributes"]["message"]]
    sunday = datetime.fromisoformat(patched["attributes"]["schedule"]["recurrences"][1]["start"])
    assert (sunday.weekday(), sunday.hour) == (6, 19)


def test_export_round_trip_restores_placeholders_and_plan_stays_clean_against_the_fake_api(dd, tmp_path):
    fake, c = dd
    api.apply(c)
    api.export(c, out_dir=str(tmp_path))
    for spec in P.SPECS:
        exported = json.loads((tmp_path / spec.file).read_text())
        assert exported == json.loads((P.PAYLOAD_DIR / spec.file).read_text()), spec.file
    fake.clear_log()
    again = api_context(fake, payload_dir=str(tmp_path))
    (tmp_path / "monitor-at-least-once.json").write_text((P.PAYLOAD_DIR / "monitor-at-least-once.json").read_text())
    assert {ch.action for ch in api.plan(again)} == {"unchanged"}


def test_export_over_matching_files_rewrites_nothing_against_the_fake_api(dd, tmp_path):
    fake, c = dd
    api.apply(c)
    for path in P.PAYLOAD_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    assert api.export(c, out_dir=str(tmp_path)) == []
    the_monitor(fake)["options"]["no_data_timeframe"] = 20
    assert [p.name for p in api.export(c, out_dir=str(tmp_path))] == ["monitor.json"]
    assert json.loads((tmp_path / "monitor.json").read_text())["options"]["no_data_timeframe"] == 20


def test_a_look_alike_dashboard_that_is_not_ours_is_left_alone_against_the_fake_api(dd):
    fake, c = dd
    keys = {"DD-API-KEY": FAKE_API_KEY, "DD-APPLICATION-KEY": FAKE_APP_KEY}
    theirs = fake.handle("POST", "/api/v1/dashboard", {}, {"title": "Exercise timeboard: my_metric on datadog-exercise", "layout_type": "ordered", "widgets": []}, keys)[1]
    api.apply(c)
    api.apply(c)
    assert fake.state.dashboards[theirs["id"]]["widgets"] == []
    assert counts(fake) == {**EXPECTED, "dashboards": 3}


def test_export_keeps_a_live_edit_with_placeholders_around_it_against_the_fake_api(dd, tmp_path):
    fake, c = dd
    api.apply(c)
    monitor = the_monitor(fake)
    monitor["options"]["thresholds"]["warning"] = 650
    monitor["message"] = monitor["message"].replace("ALERT:", "ALERT (edited):")
    api.export(c, out_dir=str(tmp_path))
    exported = json.loads((tmp_path / "monitor.json").read_text())
    assert exported["options"]["thresholds"]["warning"] == 650
    assert "ALERT (edited):" in exported["message"]
    assert exported["message"].count("${NOTIFY}") == 4 and "@oncall@example.com" not in exported["message"]
    weekend = json.loads((tmp_path / "downtime-weekends.json").read_text())
    assert weekend["data"]["attributes"]["monitor_identifier"] == {"monitor_id": "${MONITOR_ID}"}
    assert [r["start"] for r in weekend["data"]["attributes"]["schedule"]["recurrences"]] == ["${START_DATE}T00:00", "${START_DATE}T19:00"]


def test_at_least_once_updates_the_same_monitor_in_place_against_the_fake_api(dd):
    fake, c = dd
    api.apply(c)
    first_id = the_monitor(fake)["id"]
    fake.clear_log()
    api.monitor(c, at_least_once=True)
    assert the_monitor(fake)["id"] == first_id
    assert the_monitor(fake)["query"].startswith("max(last_5m):")
    assert writes(fake) == [("PUT", f"/api/v1/monitor/{first_id}")]


def test_dry_run_validates_shows_the_body_and_sends_nothing_against_the_fake_api(dd, capsys):
    fake, c = dd
    capsys.readouterr()
    api.apply(c, dry_run=True)
    shown = capsys.readouterr().out
    assert fake.writes() == []
    assert "would create" in shown and "avg:my_metric{host:datadog-exercise}.rollup(sum, 3600)" in shown
    assert '"monitor_id": "<new monitor id>"' in shown


def test_dry_run_without_keys_still_validates_and_shows_the_bodies_against_the_fake_api(fake_dd, monkeypatch, capsys):
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    changes = api.apply(api_context(fake_dd), dry_run=True)
    shown = capsys.readouterr().out
    assert [ch.spec.key for ch in changes] == [s.key for s in P.SPECS]
    assert "anomalies(avg:mysql.performance.cpu_time{host:datadog-exercise}, 'basic', 3)" in shown
    assert fake_dd.requests == []


def test_single_object_tasks_touch_only_their_object_against_the_fake_api(dd):
    fake, c = dd
    api.timeboard(c)
    assert counts(fake) == {"dashboards": 1, "monitors": 0, "downtimes": 0, "notebooks": 0}
    with pytest.raises(Exit, match="no monitor found"):
        api.downtimes(c)
    api.monitor(c)
    api.downtimes(c)
    api.apm_dashboard(c)
    fake.clear_log()
    api.notebook(c)
    assert counts(fake) == EXPECTED and [m for m, _ in writes(fake)] == ["POST"]
    (notebook,) = fake.state.notebooks.values()
    text = json.dumps(notebook)
    assert "#not-created-yet" not in text  # each object it links to was found by its mark
    assert all(f"/dashboard/{d}" in text for d in fake.state.dashboards) and f"/monitors/{the_monitor(fake)['id']}" in text


# --- duplicates, strays, interrupted runs -----------------------------------------------------------------
def test_duplicate_and_stale_downtimes_carrying_our_mark_are_removed_against_the_fake_api(dd):
    fake, c = dd
    api.apply(c)
    weeknight = next(d for d in fake.active_downtimes() if "weeknights" in d["attributes"]["message"])
    twin = json.loads(json.dumps(weeknight))
    twin["id"] = "twin-0001"
    fake.state.downtimes[twin["id"]] = twin
    stale = json.loads(json.dumps(weeknight))
    stale["id"] = "stale-0001"
    stale["attributes"]["monitor_identifier"] = {"monitor_id": 1}
    fake.state.downtimes[stale["id"]] = stale
    fake.clear_log()
    api.apply(c)
    assert sorted(writes(fake)) == [("DELETE", "/api/v2/downtime/stale-0001"), ("DELETE", "/api/v2/downtime/twin-0001")]
    assert counts(fake) == EXPECTED


def test_interrupted_apply_converges_on_rerun_without_duplicates_against_the_fake_api(dd):
    fake, c = dd
    fake.inject("POST", "/api/v2/downtime", status=500, times=10)  # every retry of the first downtime fails
    with pytest.raises(Exit, match="create downtime-weeknights: .*500"):
        api.apply(c)
    assert counts(fake) == {"dashboards": 2, "monitors": 1, "downtimes": 0, "notebooks": 0}
    fake.faults.clear()
    fake.clear_log()
    api.apply(c)
    assert writes(fake) == [("POST", "/api/v2/downtime")] * 2 + [("POST", "/api/v1/notebooks")]  # the monitor is found again
    assert counts(fake) == EXPECTED


def test_a_create_whose_answer_times_out_is_found_instead_of_sent_twice_against_the_fake_api(dd):
    fake, c = dd
    fake.inject("POST", "/api/v1/monitor", delay=2.5, after=True)  # created, but the answer comes too late
    started = time.monotonic()
    api.apply(c)
    assert time.monotonic() - started >= 1.0  # the client did wait for, and give up on, that answer
    assert counts(fake) == EXPECTED
    assert writes(fake).count(("POST", "/api/v1/monitor")) == 1


# --- faults -------------------------------------------------------------------------------------------------
def test_429_waits_for_the_announced_reset_then_succeeds_against_the_fake_api(dd):
    fake, c = dd
    fake.inject("GET", "/api/v1/dashboard", status=429, reset=1, times=1)
    started = time.monotonic()
    api.apply(c)
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in fake.requests if r.path == "/api/v1/dashboard" and r.method == "GET"][:2] == [429, 200]
    assert counts(fake) == EXPECTED


def test_a_500_on_a_create_is_looked_up_before_it_is_sent_again_against_the_fake_api(dd):
    fake, c = dd
    fake.inject("POST", "/api/v1/dashboard", status=500, times=2)
    api.apply(c)
    dashboards = [(r.method, r.status) for r in fake.requests if r.path == "/api/v1/dashboard"]
    first_post = dashboards.index(("POST", 500))
    assert dashboards[first_post : first_post + 5] == [("POST", 500), ("GET", 200), ("POST", 500), ("GET", 200), ("POST", 200)]
    assert counts(fake) == EXPECTED


def test_500_beyond_the_retry_budget_stops_with_one_line_against_the_fake_api(dd):
    fake, c = dd
    fake.inject("GET", "/api/v1/dashboard", status=500, times=99)
    with pytest.raises(Exit) as caught:
        api.apply(c)
    assert "list dashboards: HTTP 500 Internal Server Error: Internal Server Error (after retries)" in str(caught.value)
    assert len([r for r in fake.requests if r.path == "/api/v1/dashboard"]) == 4  # 1 + max_retries
    assert fake.writes() == []


def test_slow_read_times_out_and_is_retried_against_the_fake_api(dd):
    fake, c = dd
    fake.inject("GET", "/api/v1/monitor", delay=2.5, times=1)
    api.apply(c)
    assert counts(fake) == EXPECTED
    assert len([r for r in fake.requests if (r.method, r.path) == ("GET", "/api/v1/monitor")]) >= 2  # the slow one, then again


def test_403_names_the_application_key_without_showing_it_against_the_fake_api(dd, capsys):
    fake, c = dd
    fake.inject("GET", "/api/v1/dashboard", status=403, times=1)
    with pytest.raises(Exit) as caught:
        api.apply(c)
    message = str(caught.value)
    assert message.startswith("error: DD_APP_KEY was rejected (403) when trying to list dashboards")
    assert "\n" not in message
    everything = message + capsys.readouterr().out
    assert FAKE_APP_KEY not in everything and FAKE_API_KEY not in everything


@pytest.mark.parametrize("missing", ["DD_API_KEY", "DD_APP_KEY"])
def test_missing_key_is_one_clear_line_and_nothing_is_sent_against_the_fake_api(dd, monkeypatch, missing):
    fake, c = dd
    monkeypatch.delenv(missing)
    with pytest.raises(Exit) as caught:
        api.apply(c)
    where = "API" if missing == "DD_API_KEY" else "Application"
    assert str(caught.value) == (f"error: {missing} is not set: export {missing}=... (Organization Settings > {where} Keys)"
                                 " (nothing was changed)") and caught.value.code == 2
    assert fake.requests == []


def test_rejected_api_key_says_which_and_never_shows_it_against_the_fake_api(dd, monkeypatch, capsys):
    fake, c = dd
    monkeypatch.setenv("DD_API_KEY", "wrong-key-0000000000000000")
    with pytest.raises(Exit) as caught:
        api.plan(c)
    message = str(caught.value)
    assert message.startswith("error: DD_API_KEY was rejected (403) when trying to check the API key")
    assert "wrong-key" not in message + capsys.readouterr().out
    assert [r.path for r in fake.requests] == ["/api/v1/validate"]


def test_rejected_application_key_says_which_against_the_fake_api(dd, monkeypatch):
    fake, c = dd
    monkeypatch.setenv("DD_APP_KEY", "wrong-app-key-000000000000")
    with pytest.raises(Exit, match="DD_APP_KEY was rejected"):
        api.apply(c)
    assert fake.writes() == []


def test_unknown_site_is_refused_before_any_request_against_the_fake_api(fake_dd, dd_keys, monkeypatch):
    monkeypatch.setenv("DD_SITE", "datad0ghq.example")
    c = api_context(fake_dd, base_url="")
    with pytest.raises(Exit, match="DD_SITE='datad0ghq.example' is not a Datadog site"):
        api.plan(c)


def test_every_datadog_site_maps_to_its_api_host(dd_keys, monkeypatch):
    from recipes.api.client import configuration

    for site in ("datadoghq.com", "datadoghq.eu", "us3.datadoghq.com", "us5.datadoghq.com", "ap1.datadoghq.com", "ddog-gov.com"):
        monkeypatch.setenv("DD_SITE", site)
        assert configuration(api_settings(base_url="")).host == f"https://api.{site}"


# --- destroy ----------------------------------------------------------------------------------------------------
def test_destroy_removes_only_what_carries_our_mark_against_the_fake_api(dd):
    fake, c = dd
    api.apply(c)
    foreign_dash = fake.handle("POST", "/api/v1/dashboard", {}, {"title": "Someone else's", "layout_type": "ordered", "widgets": []}, {"DD-API-KEY": FAKE_API_KEY, "DD-APPLICATION-KEY": FAKE_APP_KEY})[1]
    same_title = fake.handle("POST", "/api/v1/dashboard", {}, {"title": "Exercise timeboard: my_metric on datadog-exercise", "description": "hand-made", "layout_type": "ordered", "widgets": []}, {"DD-API-KEY": FAKE_API_KEY, "DD-APPLICATION-KEY": FAKE_APP_KEY})[1]
    foreign_mon = fake.handle("POST", "/api/v1/monitor", {}, {"name": "my_metric is high (dd-runbook exercise)", "type": "query alert", "query": "avg(last_5m):avg:other{*} > 1", "options": {"thresholds": {"critical": 1}}, "tags": ["team:other"]}, {"DD-API-KEY": FAKE_API_KEY, "DD-APPLICATION-KEY": FAKE_APP_KEY})[1]
    seed_notebooks(fake, 3)  # one of them with our notebook's name, without our mark
    theirs = sorted(n for n in fake.state.notebooks if n != ours_notebook(fake)["id"])
    fake.clear_log()
    api.destroy(c, dry_run=True)
    assert fake.writes() == []
    api.destroy(c)
    assert sorted(fake.state.dashboards) == sorted([foreign_dash["id"], same_title["id"]])
    assert list(fake.state.monitors) == [foreign_mon["id"]]
    assert fake.active_downtimes() == []
    assert sorted(fake.state.notebooks) == theirs
    assert writes(fake)[0][1].startswith("/api/v1/notebooks/")  # what links to the others goes first
    assert [m for m, _ in writes(fake)] == ["DELETE"] * 6
    fake.clear_log()
    api.destroy(c)
    assert fake.writes() == []


# --- validate task ----------------------------------------------------------------------------------------------
def test_validate_checks_every_file_offline_without_keys_against_the_fake_api(fake_dd, monkeypatch, capsys):
    monkeypatch.delenv("DD_API_KEY", raising=False)
    api.validate(api_context(fake_dd))
    shown = capsys.readouterr().out
    assert all(f"ok payloads/{spec.file}" in " ".join(shown.split()) for spec in P.SPECS)
    assert fake_dd.requests == []


def test_validate_with_keys_also_asks_the_monitor_validate_endpoint_and_writes_nothing_against_the_fake_api(dd):
    fake, c = dd
    api.validate(c)
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/api/v1/validate"), ("POST", "/api/v1/monitor/validate")]
    assert fake.writes() == [] and counts(fake) == {"dashboards": 0, "monitors": 0, "downtimes": 0, "notebooks": 0}


def test_validate_fails_listing_every_problem_against_the_fake_api(fake_dd, tmp_path, capsys):
    for path in P.PAYLOAD_DIR.glob("*.json"):
        text = path.read_text().replace('"warning": 500', '"warning": 900').replace("INTERVAL=1;", "INTERVAL=x;")
        (tmp_path / path.name).write_text(text)
    with pytest.raises(Exit) as caught:
        api.validate(api_context(fake_dd, payload_dir=str(tmp_path)), offline=True)
    assert caught.value.code == 1
    message = capsys.readouterr().err
    assert "monitor.json: options.thresholds.warning (900) is above critical (800)" in message
    assert "downtime-weeknights.json: data.attributes.schedule.recurrences[0].rrule:" in message
    assert "downtime-weekends.json: data.attributes.schedule.recurrences[0].rrule:" in message


def test_validate_checks_the_at_least_once_overlay_merged_over_its_file_against_the_fake_api(fake_dd, tmp_path, capsys):
    for path in P.PAYLOAD_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "monitor-at-least-once.json").write_text('{"options": {"thresholds": {"critical": "high"}}}')
    with pytest.raises(Exit) as caught:
        api.validate(api_context(fake_dd, payload_dir=str(tmp_path)), offline=True)
    assert caught.value.code == 1
    shown = capsys.readouterr()
    assert "monitor-at-least-once.json over " in shown.err and "critical" in shown.err
    assert "invalid" in shown.out and "monitor-at-least-once.json (over monitor.json)" in shown.out


# --- a busy org, lost answers, bad payloads ------------------------------------------------------------------
def ours(fake) -> dict:
    mine = [d for d in fake.state.dashboards.values() if "Managed by dd-runbook." in (d["description"] or "")]
    monitors = [m for m in fake.state.monitors.values() if m["name"] == "my_metric is high (dd-runbook exercise)" and "managed-by:dd-runbook" in m["tags"]]
    notebooks = [n for n in fake.state.notebooks.values() if "Managed by dd-runbook." in json.dumps(n["attributes"]["cells"][0])]
    return {"dashboards": len(mine), "monitors": len(monitors), "downtimes": len(fake.active_downtimes()), "notebooks": len(notebooks)}


def test_a_busy_org_gets_no_write_on_the_second_apply_and_an_empty_plan_against_the_fake_api(dd):
    fake, c = dd
    seed_org(fake, n_dashboards=150, n_monitors=60, n_notebooks=120)
    theirs = json.dumps([fake.state.dashboards, fake.state.monitors, fake.state.notebooks], sort_keys=True, default=str)
    api.apply(c)
    assert ours(fake) == EXPECTED and len(fake.state.dashboards) == 152 and len(fake.state.monitors) == 61
    assert len(fake.state.notebooks) == 121
    fake.clear_log()
    assert {ch.action for ch in api.apply(c)} == {"unchanged"}
    assert fake.writes() == []
    assert {ch.action for ch in api.plan(c)} == {"unchanged"}
    assert ours(fake) == EXPECTED
    dashboards, monitors, notebooks = json.loads(theirs)
    assert [fake.state.dashboards[k] for k in dashboards] == list(dashboards.values())  # the look-alikes are left alone
    assert [fake.state.monitors[int(k)] for k in monitors] == list(monitors.values())
    assert [fake.state.notebooks[int(k)] for k in notebooks] == list(notebooks.values())


def test_a_notebook_on_the_lists_second_page_is_found_again_not_made_twice_seeded_against_the_fake_api(dd):
    fake, c = dd
    api.apply(c)
    seed_notebooks(fake, 150, modified=datetime.now().astimezone() + timedelta(hours=1))  # edited after ours: listed first
    fake.clear_log()
    assert {ch.action for ch in api.apply(c)} == {"unchanged"}
    assert fake.writes() == [] and ours(fake) == EXPECTED
    pages = [r.query for r in fake.requests if (r.method, r.path) == ("GET", "/api/v1/notebooks")]
    assert pages == [{"count": ["100"]}, {"count": ["100"], "start": ["100"]}]  # ours is the 151st
    api.destroy(c)
    assert len(fake.state.notebooks) == 150


ORGS = {"empty": "an empty org", "busy": "150 other dashboards, 60 other monitors, 120 other notebooks"}


@pytest.mark.parametrize("org", ORGS)
def test_request_counts_are_the_ones_on_the_reference_page_against_the_fake_api(dd, org):
    fake, c = dd
    if org == "busy":
        seed_org(fake, n_dashboards=150, n_monitors=60, n_notebooks=120)
    api.apply(c)
    first = (len(fake.requests), len(fake.writes()))
    fake.clear_log()
    api.apply(c)
    second = (len(fake.requests), len(fake.writes()))
    row = f"| {ORGS[org]} | {first[0]} requests, {first[1]} writes | {second[0]} requests, {second[1]} writes |"
    assert row in REFERENCE.read_text(), f"docs/reference/datadog-api.md should hold: {row}"


@pytest.mark.parametrize("path, objects", [("/api/v1/dashboard", 2), ("/api/v1/monitor", 1), ("/api/v2/downtime", 2)])
def test_a_502_answered_after_the_create_leaves_exactly_one_object_against_the_fake_api(dd, path, objects):
    fake, c = dd
    fake.inject("POST", path, status=502, after=True)
    api.apply(c)
    assert counts(fake) == EXPECTED
    posts = [r.status for r in fake.requests if (r.method, r.path) == ("POST", path)]
    assert posts[0] == 502 and len(posts) == objects  # the lost one is found by its mark, never sent again


def test_a_429_on_a_create_waits_for_the_reset_and_looks_up_before_sending_again_against_the_fake_api(dd):
    fake, c = dd
    fake.inject("POST", "/api/v1/monitor", status=429, reset=1)
    started = time.monotonic()
    api.apply(c)
    assert time.monotonic() - started >= 1.0
    monitor = [(r.method, r.status) for r in fake.requests if r.path == "/api/v1/monitor"]
    assert monitor[-4:] == [("POST", 429), ("GET", 200), ("POST", 200), ("GET", 200)]  # the last GET: the look after the create
    assert counts(fake) == EXPECTED


def test_the_clients_own_retry_never_resends_a_post(dd_keys):
    from recipes.api.client import configuration

    retry = configuration(api_settings(base_url="http://127.0.0.1:9")).retry_policy
    assert [retry.is_retry(method, 502) for method in ("GET", "PUT", "PATCH", "DELETE", "POST")] == [True] * 4 + [False]
    assert retry.is_retry("POST", 429) is False and not retry._is_method_retryable("POST")


BAD_PAYLOADS = {
    "monitor.json truncated": ("monitor.json", lambda t: t[:300], r"monitor.json: not valid JSON"),
    "rrule BYDAY=XX": ("downtime-weeknights.json", lambda t: t.replace("BYDAY=MO,TU,WE,TH,FR", "BYDAY=XX"),
                       r"downtime-weeknights.json: data.attributes.schedule.recurrences\[0\].rrule: .* is not a valid RRULE"),
    "warning above critical": ("monitor.json", lambda t: t.replace("> 800", "> 500").replace('"critical": 800, "warning": 500', '"critical": 500, "warning": 800'),
                               r"monitor.json: options.thresholds.warning \(800\) is above critical \(500\)"),
    "message notifies nobody": ("monitor.json", lambda t: t.replace("${NOTIFY}", ""), r"monitor.json: message: notifies nobody"),
    "downtime starts in 2020": ("downtime-weekends.json", lambda t: t.replace("${START_DATE}T00:00", "2020-01-04T00:00"),
                                r"downtime-weekends.json: data.attributes.schedule.recurrences\[0\].start: 2020-01-04T00:00 is in the past"),
    "two payloads, one title": ("apm-dashboard.json", lambda t: t.replace("Flask service ${SERVICE} (${ENV}): APM and host metrics", "Exercise timeboard: my_metric on ${HOST}"),
                                r"apm-dashboard.json: title: .* is also in .*timeboard.json"),
    "unknown monitor field": ("monitor.json", lambda t: t.replace('"notify_no_data": true', '"notify_no_data": true, "notify_nodata": true'),
                              r"monitor.json: options.notify_nodata: unknown field"),
    "unknown downtime field": ("downtime-weeknights.json", lambda t: t.replace('"scope": "*"', '"scope": "*", "scopes": ["*"]'),
                               r"downtime-weeknights.json: data.attributes.scopes: unknown field"),
    "unknown widget type": ("timeboard.json", lambda t: t.replace('"timeseries"', '"timeserie"', 1),
                            r"timeboard.json: widgets\[0\].definition: not a known WidgetDefinition"),
}


@pytest.mark.parametrize("case", BAD_PAYLOADS)
def test_a_bad_payload_stops_apply_and_plan_before_any_request_against_the_fake_api(dd, tmp_path, case):
    fake, c = dd
    name, change, complaint = BAD_PAYLOADS[case]
    for path in P.PAYLOAD_DIR.glob("*.json"):
        text = path.read_text()
        (tmp_path / path.name).write_text(change(text) if path.name == name else text)
    bad = api_context(fake, payload_dir=str(tmp_path))
    for task in (api.apply, api.plan):
        with pytest.raises(Exit, match=complaint):
            task(bad)
    assert fake.requests == []


def test_export_then_plan_in_a_busy_org_shows_no_change_against_the_fake_api(dd, tmp_path):
    fake, c = dd
    seed_org(fake, n_dashboards=150, n_monitors=60)
    api.apply(c)
    api.export(c, out_dir=str(tmp_path))
    (tmp_path / "monitor-at-least-once.json").write_text((P.PAYLOAD_DIR / "monitor-at-least-once.json").read_text())
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(p.name for p in P.PAYLOAD_DIR.glob("*.json"))
    fake.clear_log()
    assert {ch.action for ch in api.plan(api_context(fake, payload_dir=str(tmp_path)))} == {"unchanged"}
    assert fake.writes() == []


# --- the fake itself: each recorded behaviour it copies ---------------------------------------------------------
def raw(fake, method: str, path: str, body=None) -> tuple[int, object, dict]:
    """One request as the wire carries it (no client models): status, JSON body, headers."""
    request = urllib.request.Request(fake.url + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"DD-API-KEY": FAKE_API_KEY, "DD-APPLICATION-KEY": FAKE_APP_KEY, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            data = answer.read()
            return answer.status, json.loads(data) if data else None, dict(answer.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), dict(err.headers)


def monitor_answers(fake_dd):
    sent = {"name": "n", "type": "metric alert", "query": " avg(last_5m):avg:m{*} > 2 ", "message": "  hi @a@b.c \n",
            "options": {"thresholds": {"critical": 2, "warning": None}, "on_missing_data": "default", "notify_no_data": True}}
    _, mon, _ = raw(fake_dd, "POST", "/api/v1/monitor", sent)
    assert {"id", "org_id", "created", "created_at", "modified", "deleted", "restricted_roles", "priority", "overall_state", "creator", "multi", "draft_status"} <= set(mon)
    assert (mon["type"], mon["query"], mon["message"]) == ("query alert", "avg(last_5m):avg:m{*} > 2", "hi @a@b.c")
    assert mon["options"]["thresholds"] == {"critical": 2.0} and isinstance(mon["options"]["thresholds"]["critical"], float)
    assert "on_missing_data" not in mon["options"]
    assert {k: mon["options"][k] for k in ("notify_audit", "silenced", "include_tags", "new_host_delay")} == {"notify_audit": False, "silenced": {}, "include_tags": True, "new_host_delay": 300}
    _, put, _ = raw(fake_dd, "PUT", f"/api/v1/monitor/{mon['id']}", {"options": {"thresholds": {"critical": 2}}})
    assert put["options"]["notify_no_data"] is False and put["name"] == "n"  # options replaced whole, the rest kept
    formula = {"name": "f", "type": "query alert", "query": "formula(\"a\").last(\"5m\") > 1", "options": {"thresholds": {"critical": 1}}}
    assert raw(fake_dd, "POST", "/api/v1/monitor", formula)[1]["type"] == "metric alert"
    seed_org(fake_dd, n_dashboards=0, n_monitors=120)
    assert len(raw(fake_dd, "GET", "/api/v1/monitor")[1]) == 122
    assert len(raw(fake_dd, "GET", "/api/v1/monitor?page=0")[1]) == 100


def dashboard_answers(fake_dd):
    seed_org(fake_dd, n_dashboards=120, n_monitors=0)
    sent = {"title": "t", "layout_type": "ordered", "widgets": [{"definition": {"type": "timeseries", "requests": [{"q": "avg:m{*}"}]}}]}
    _, dash, _ = raw(fake_dd, "POST", "/api/v1/dashboard", sent)
    assert {"id", "author_handle", "author_name", "url", "is_read_only", "created_at", "modified_at"} <= set(dash) and dash["restricted_roles"] == []
    assert (dash["description"], dash["template_variables"], dash["notify_list"]) == (None, None, None)
    assert isinstance(dash["widgets"][0]["id"], int) and dash["widgets"][0]["definition"]["requests"] == [{"q": "avg:m{*}"}]
    first_page = raw(fake_dd, "GET", "/api/v1/dashboard")[1]["dashboards"]
    assert len(first_page) == 100 and "t" not in [d["title"] for d in first_page]  # oldest first: the new one is not there
    assert [d["title"] for d in raw(fake_dd, "GET", "/api/v1/dashboard?start=100")[1]["dashboards"]][-1] == "t"


def downtime_answers(fake_dd):
    _, mon, _ = raw(fake_dd, "POST", "/api/v1/monitor", {"type": "query alert", "query": "avg(last_5m):avg:m{*} > 2", "options": {"thresholds": {"critical": 2}}})
    schedule = {"timezone": "Europe/Paris", "recurrences": [{"start": "2026-12-07T19:00", "duration": "14h", "rrule": "FREQ=WEEKLY;BYDAY=MO"}, {"start": None, "duration": "1h", "rrule": "FREQ=DAILY"}]}
    sent = {"data": {"type": "downtime", "attributes": {"monitor_identifier": {"monitor_id": mon["id"]}, "scope": "*", "display_timezone": "", "schedule": schedule}}}
    _, created, _ = raw(fake_dd, "POST", "/api/v2/downtime", sent)
    attrs = created["data"]["attributes"]
    assert {"created", "modified", "canceled", "status"} <= set(attrs) and created["data"]["relationships"] and created["included"][0]["type"] == "users"
    assert (attrs["notify_end_types"], attrs["mute_first_recovery_notification"], attrs["display_timezone"]) == (["expired"], False, "UTC")
    recs = attrs["schedule"]["recurrences"]
    assert recs[0] == {"start": "2026-12-07T19:00:00", "duration": "14h", "rrule": "FREQ=WEEKLY;BYDAY=MO"}
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", recs[1]["start"])  # a null start became "now"
    assert attrs["schedule"]["current_downtime"]["start"].endswith("+00:00")
    dt = created["data"]["id"]
    orders = {tuple(raw(fake_dd, "GET", f"/api/v2/downtime/{dt}")[1]["data"]["attributes"]["notify_end_states"]) for _ in range(3)}
    assert len(orders) > 1 and {frozenset(o) for o in orders} == {frozenset(["alert", "no data", "warn"])}
    patched = raw(fake_dd, "PATCH", f"/api/v2/downtime/{dt}", {"data": {"id": dt, "type": "downtime", "attributes": {"message": "m"}}})[1]
    assert (patched["data"]["attributes"]["message"], patched["data"]["attributes"]["scope"]) == ("m", "*")
    assert [raw(fake_dd, "DELETE", f"/api/v2/downtime/{dt}")[0] for _ in range(2)] == [204, 204]
    raw(fake_dd, "POST", "/api/v2/downtime", sent)
    page = raw(fake_dd, "GET", "/api/v2/downtime?page%5Blimit%5D=1&page%5Boffset%5D=1")[1]
    assert len(page["data"]) == 1 and page["meta"]["page"]["total_filtered_count"] == 2


def notebook_answers(fake_dd):
    markdown = {"type": "notebook_cells", "attributes": {"definition": {"type": "markdown", "text": "# n"}}}
    graph = {"type": "notebook_cells", "attributes": {"definition": {"type": "timeseries", "requests": [{"q": "avg:m{*}", "display_type": "line"}]},
                                                      "graph_size": "m", "split_by": {"keys": [], "tags": []}, "time": None}}
    sent = {"data": {"type": "notebooks", "attributes": {"name": "n", "time": {"live_span": "1h"}, "cells": [markdown, graph]}}}
    status, made, _ = raw(fake_dd, "POST", "/api/v1/notebooks", sent)
    data = made["data"]
    attrs = data["attributes"]
    assert status == 200 and data["type"] == "notebooks" and isinstance(data["id"], int)
    assert [re.fullmatch(r"[a-z0-9]{8}", cell["id"]) is not None for cell in attrs["cells"]] == [True, True]
    assert [{k: v for k, v in cell.items() if k != "id"} for cell in attrs["cells"]] == [markdown, graph]  # echoed as sent
    assert attrs["metadata"] == {"take_snapshots": False, "is_template": False, "is_favorite": False, "type": None}
    assert (attrs["template_variables"], attrs["status"], attrs["created"] == attrs["modified"]) == ([], "published", True)
    assert {"handle", "email", "verified"} <= set(attrs["author"])
    assert raw(fake_dd, "GET", f"/api/v1/notebooks/{data['id']}")[1] == made
    kept = dict(attrs["cells"][0])
    put = raw(fake_dd, "PUT", f"/api/v1/notebooks/{data['id']}", {"data": {"type": "notebooks", "attributes": {
        "name": "n-updated", "time": {"live_span": "1h"}, "cells": [kept, graph]}}})[1]["data"]["attributes"]
    assert put["name"] == "n-updated" and put["created"] == attrs["created"] and put["modified"] > attrs["modified"]
    assert put["cells"][0]["id"] == kept["id"] and put["cells"][1]["id"] != attrs["cells"][1]["id"]  # sent without an id: a new one
    seed_notebooks(fake_dd, 2)
    listed = raw(fake_dd, "GET", "/api/v1/notebooks?count=2")[1]
    assert [n["attributes"]["name"] for n in listed["data"]][0] == "n-updated"  # last modified first, whole, with cells
    assert listed["data"][0]["attributes"]["cells"] and listed["meta"]["page"] == {"total_count": 3, "total_filtered_count": 2}
    assert len(raw(fake_dd, "GET", "/api/v1/notebooks?count=2&start=2")[1]["data"]) == 1
    seed_notebooks(fake_dd, 60)
    assert len(raw(fake_dd, "GET", "/api/v1/notebooks")[1]["data"]) == 50  # no count: 50 a page
    assert raw(fake_dd, "DELETE", f"/api/v1/notebooks/{data['id']}")[:2] == (204, None)
    assert raw(fake_dd, "DELETE", f"/api/v1/notebooks/{data['id']}")[:2] == (404, {"errors": ["Notebook not found"]})


def fault_answers(fake_dd):
    fake_dd.inject("GET", "/api/v1/dashboard", status=429, reset=3)
    status, _, headers = raw(fake_dd, "GET", "/api/v1/dashboard")
    assert status == 429 and headers["x-ratelimit-reset"] == "3" and {"x-ratelimit-limit", "x-ratelimit-period", "x-ratelimit-remaining", "x-ratelimit-name"} <= set(headers)
    fake_dd.inject("POST", "/api/v1/dashboard", status=502, after=True)
    before = len(fake_dd.state.dashboards)
    status, _, _ = raw(fake_dd, "POST", "/api/v1/dashboard", {"title": "late", "layout_type": "ordered", "widgets": []})
    assert status == 502 and len(fake_dd.state.dashboards) == before + 1


def telemetry_answers(fake_dd):
    now = int(time.time())
    seed_account(fake_dd, host="h1", tags=["env:dev"], now=now)
    hosts = raw(fake_dd, "GET", f"/api/v1/hosts?filter=h1&from={now - 600}")[1]
    assert (hosts["total_matching"], hosts["host_list"][0]["tags_by_source"]["Datadog"]) == (1, ["host:h1", "env:dev"])
    assert raw(fake_dd, "GET", f"/api/v1/hosts?from={now + 60}")[1]["host_list"] == []  # none reported since
    query = urllib.parse.quote("avg:my_metric{host:h1}.rollup(sum, 3600)")
    rolled = raw(fake_dd, "GET", f"/api/v1/query?from={now - 3 * 3600}&to={now}&query={query}")[1]
    stamps = [p[0] for p in rolled["series"][0]["pointlist"]]
    assert rolled["res_type"] == "time_series" and all(ms % 3_600_000 == 0 for ms in stamps) and len(stamps) >= 2
    query = urllib.parse.quote("sum:trace.flask.request.hits{service:flask} by {resource_name}")
    split = raw(fake_dd, "GET", f"/api/v1/query?from={now - 600}&to={now}&query={query}")[1]["series"]
    assert sorted(s["tag_set"][0] for s in split) == ["resource_name:get_/", "resource_name:get_/api/apm", "resource_name:get_/api/trace"]
    assert raw(fake_dd, "GET", f"/api/v1/query?from={now - 600}&to={now}&query=nonsense")[0] == 400
    found = raw(fake_dd, "POST", "/api/v2/logs/events/search", {"filter": {"query": "host:h1 source:mysql", "from": "now-1h"}, "page": {"limit": 2}})[1]
    assert len(found["data"]) == 2 and found["meta"]["page"]["after"] and found["data"][0]["attributes"]["timestamp"].endswith("Z")
    events = raw(fake_dd, "GET", f"/api/v1/events?start={now - 86400}&end={now}")[1]["events"]
    assert [e["date_happened"] for e in events] == sorted((e["date_happened"] for e in events), reverse=True)
    assert events[0]["title"].startswith("[Triggered on {host:h1}] ")


def snapshot_answers(fake_dd):
    now = int(time.time())
    query = urllib.parse.quote("avg:my_metric{*}")
    status, shot, _ = raw(fake_dd, "GET", f"/api/v1/graph/snapshot?metric_query={query}&start={now - 300}&end={now}")
    assert status == 200 and set(shot) == {"graph_def", "metric_query", "snapshot_url"}
    assert raw(fake_dd, "GET", f"/api/v1/graph/snapshot?metric_query={query}")[0] == 400
    view = shot["snapshot_url"].removeprefix(fake_dd.url)
    assert [raw_status(fake_dd, view) for _ in range(2)] == [403, 200]
    status, posted, _ = raw(fake_dd, "POST", "/api/v1/events", {"title": "t", "text": "x @a@b.c", "tags": ["k:v"]})
    assert status == 202 and posted["status"] == "ok" and posted["event"]["url"].endswith(str(posted["event"]["id"]))
    listed = raw(fake_dd, "GET", f"/api/v1/events?start={now - 60}&end={now + 60}&tags=k:v")[1]["events"]
    assert [e["id"] for e in listed] == [posted["event"]["id"]]


def raw_status(fake, path: str) -> int:
    try:
        with urllib.request.urlopen(fake.url + path, timeout=5) as answer:
            return answer.status if answer.read().startswith(b"\x89PNG") else -1
    except urllib.error.HTTPError as err:
        return err.code


ANSWERS = {"monitors": monitor_answers, "dashboards": dashboard_answers, "downtimes": downtime_answers, "notebooks": notebook_answers, "faults": fault_answers, "telemetry": telemetry_answers, "snapshots": snapshot_answers}


@pytest.mark.parametrize("kind", ANSWERS)
def test_the_fake_answers_as_the_recorded_api_against_the_fake_api(fake_dd, kind):
    ANSWERS[kind](fake_dd)


def test_every_behaviour_the_fake_copies_is_exercised_against_the_fake_api(fake_dd):
    before = [rule.used for rule in RULES]
    for check in ANSWERS.values():
        check(fake_dd)
    assert [f"{rule.module}.{rule.name}" for rule, used in zip(RULES, before) if rule.used == used] == []
