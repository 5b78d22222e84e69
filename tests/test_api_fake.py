"""The runbook's API tasks with the real datadog-api-client against FakeDatadog, a local stand-in server.

FakeDatadog (tests/fakedd) keeps state, answers in the documented shapes and records every request,
so these tests count writes; it injects 429/500/403 and slow answers for the fault tests.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from invoke.exceptions import Exit

from recipes import api
from recipes import payloads as P
from tests.fakedd.fixtures import FAKE_API_KEY, FAKE_APP_KEY, api_context

pytestmark = pytest.mark.fake_api

EXPECTED = {"dashboards": 2, "monitors": 1, "downtimes": 2}


def counts(fake) -> dict:
    return {"dashboards": len(fake.state.dashboards), "monitors": len(fake.state.monitors), "downtimes": len(fake.active_downtimes())}


def writes(fake) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.writes()]


def the_monitor(fake) -> dict:
    (monitor,) = fake.state.monitors.values()
    return monitor


# --- create, re-apply, edit, export -----------------------------------------------------------------
def test_first_apply_creates_each_object_once_in_dependency_order(dd, capsys):
    fake, c = dd
    api.apply(c)
    assert counts(fake) == EXPECTED
    assert writes(fake) == [("POST", "/api/v1/dashboard")] * 2 + [("POST", "/api/v1/monitor")] + [("POST", "/api/v2/downtime")] * 2
    monitor = the_monitor(fake)
    assert monitor["query"] == "avg(last_5m):avg:my_metric{*} by {host} > 800"
    assert "@oncall@example.com" in monitor["message"]
    for downtime in fake.active_downtimes():
        assert downtime["attributes"]["monitor_identifier"] == {"monitor_id": monitor["id"]}
        assert downtime["attributes"]["schedule"]["timezone"] == "Europe/Paris"
    titles = sorted(d["title"] for d in fake.state.dashboards.values())
    assert titles == ["Exercise timeboard: my_metric on datadog-exercise", "Flask service flask (dev): APM and host metrics"]


def test_second_apply_sends_no_write_and_keeps_one_of_each(dd, capsys):
    fake, c = dd
    api.apply(c)
    first_total, first_writes = len(fake.requests), len(fake.writes())
    fake.clear_log()
    changes = api.apply(c)
    assert fake.writes() == []
    assert {ch.action for ch in changes} == {"unchanged"}
    assert counts(fake) == EXPECTED
    with capsys.disabled():
        print(f"\n[fake_api] request counts: first apply {first_total} requests / {first_writes} writes; second apply {len(fake.requests)} requests / 0 writes")


def test_plan_after_a_live_edit_shows_a_readable_diff_and_apply_fixes_it_in_place(dd, capsys):
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


def test_plan_after_a_payload_edit_shows_the_change(dd, tmp_path, capsys):
    fake, c = dd
    api.apply(c)
    for path in P.PAYLOAD_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text().replace("3600", "7200"))
    edited = api_context(fake, payload_dir=str(tmp_path))
    fake.clear_log()
    capsys.readouterr()
    changes = api.plan(edited)
    shown = capsys.readouterr().out
    assert [ch.spec.key for ch in changes if ch.action == "update"] == ["timeboard"]
    assert "rollup(sum, 7200)" in shown and "rollup(sum, 3600)" in shown
    assert fake.writes() == []
    api.apply(edited)
    (dash_id,) = [d["id"] for d in fake.state.dashboards.values() if d["title"].startswith("Exercise timeboard")]
    assert writes(fake) == [("PUT", f"/api/v1/dashboard/{dash_id}")]
    assert "rollup(sum, 7200)" in json.dumps(fake.state.dashboards[dash_id]["widgets"])


def test_an_edited_downtime_window_is_patched_in_place(dd, tmp_path):
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


def test_fake_monitor_search_answers_in_the_documented_shape(dd):
    from recipes.ddapi import connect

    fake, c = dd
    api.apply(c)
    with connect(c.config.api) as apis:
        found = apis.monitors.search_monitors(query="tag:managed-by:dd-runbook")
    assert [m.id for m in found.monitors] == [the_monitor(fake)["id"]]


def test_plan_before_anything_exists_lists_creations_without_writing(dd, capsys):
    fake, c = dd
    changes = api.plan(c)
    assert [ch.action for ch in changes] == ["create"] * 5
    assert fake.writes() == []


def test_downtimes_recurring_start_in_the_past_is_not_a_change(dd):
    fake, c = dd
    api.apply(c)
    earlier = {"BYDAY=SA": "2026-01-03T00:00", "BYDAY=SU": "2026-01-04T19:00", "BYDAY=MO": "2026-01-05T19:00"}
    for downtime in fake.active_downtimes():  # each window started weeks ago on a day its own rule allows
        for rec in downtime["attributes"]["schedule"]["recurrences"]:
            rec["start"] = next(start for day, start in earlier.items() if day in rec["rrule"])
    fake.clear_log()
    api.apply(c)
    assert fake.writes() == []


def test_a_recurrence_moved_to_another_weekday_is_a_change(dd):
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


def test_export_round_trip_restores_placeholders_and_plan_stays_clean(dd, tmp_path):
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


def test_export_over_matching_files_rewrites_nothing(dd, tmp_path):
    fake, c = dd
    api.apply(c)
    for path in P.PAYLOAD_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    assert api.export(c, out_dir=str(tmp_path)) == []
    the_monitor(fake)["options"]["no_data_timeframe"] = 20
    assert [p.name for p in api.export(c, out_dir=str(tmp_path))] == ["monitor.json"]
    assert json.loads((tmp_path / "monitor.json").read_text())["options"]["no_data_timeframe"] == 20


def test_a_look_alike_dashboard_that_is_not_ours_is_left_alone(dd):
    fake, c = dd
    keys = {"DD-API-KEY": FAKE_API_KEY, "DD-APPLICATION-KEY": FAKE_APP_KEY}
    theirs = fake.handle("POST", "/api/v1/dashboard", {}, {"title": "Exercise timeboard: my_metric on datadog-exercise", "layout_type": "ordered", "widgets": []}, keys)[1]
    api.apply(c)
    api.apply(c)
    assert fake.state.dashboards[theirs["id"]]["widgets"] == []
    assert counts(fake) == {**EXPECTED, "dashboards": 3}


def test_export_keeps_a_live_edit_with_placeholders_around_it(dd, tmp_path):
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


def test_at_least_once_updates_the_same_monitor_in_place(dd):
    fake, c = dd
    api.apply(c)
    first_id = the_monitor(fake)["id"]
    fake.clear_log()
    api.monitor(c, at_least_once=True)
    assert the_monitor(fake)["id"] == first_id
    assert the_monitor(fake)["query"].startswith("max(last_5m):")
    assert writes(fake) == [("PUT", f"/api/v1/monitor/{first_id}")]


def test_dry_run_validates_shows_the_body_and_sends_nothing(dd, capsys):
    fake, c = dd
    capsys.readouterr()
    api.apply(c, dry_run=True)
    shown = capsys.readouterr().out
    assert fake.writes() == []
    assert "would create" in shown and "avg:my_metric{host:datadog-exercise}.rollup(sum, 3600)" in shown
    assert '"monitor_id": "<new monitor id>"' in shown


def test_dry_run_without_keys_still_validates_and_shows_the_bodies(fake_dd, monkeypatch, capsys):
    monkeypatch.delenv("DD_API_KEY", raising=False)
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    changes = api.apply(api_context(fake_dd), dry_run=True)
    shown = capsys.readouterr().out
    assert [ch.spec.key for ch in changes] == [s.key for s in P.SPECS]
    assert "anomalies(avg:mysql.performance.cpu_time{host:datadog-exercise}, 'basic', 2)" in shown
    assert fake_dd.requests == []


def test_single_object_tasks_touch_only_their_object(dd):
    fake, c = dd
    api.timeboard(c)
    assert counts(fake) == {"dashboards": 1, "monitors": 0, "downtimes": 0}
    with pytest.raises(Exit, match="no monitor found"):
        api.downtimes(c)
    api.monitor(c)
    api.downtimes(c)
    api.apm_dashboard(c)
    assert counts(fake) == EXPECTED


# --- duplicates, strays, interrupted runs -----------------------------------------------------------------
def test_duplicate_and_stale_downtimes_carrying_our_mark_are_removed(dd):
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


def test_interrupted_apply_converges_on_rerun_without_duplicates(dd):
    fake, c = dd
    fake.inject("POST", "/api/v2/downtime", status=500, times=10)  # every retry of the first downtime fails
    with pytest.raises(Exit, match="create downtime-weeknights: .*500"):
        api.apply(c)
    assert counts(fake) == {"dashboards": 2, "monitors": 1, "downtimes": 0}
    fake.faults.clear()
    fake.clear_log()
    api.apply(c)
    assert writes(fake) == [("POST", "/api/v2/downtime")] * 2  # the monitor is found again, not re-created
    assert counts(fake) == EXPECTED


def test_a_create_whose_answer_times_out_is_found_instead_of_sent_twice(dd):
    fake, c = dd
    fake.inject("POST", "/api/v1/monitor", delay=2.5, after=True)  # created, but the answer comes too late
    started = time.monotonic()
    api.apply(c)
    assert time.monotonic() - started >= 1.0  # the client did wait for, and give up on, that answer
    assert counts(fake) == EXPECTED
    assert writes(fake).count(("POST", "/api/v1/monitor")) == 1


# --- faults -------------------------------------------------------------------------------------------------
def test_429_waits_for_the_announced_reset_then_succeeds(dd):
    fake, c = dd
    fake.inject("GET", "/api/v1/dashboard", status=429, reset=1, times=1)
    started = time.monotonic()
    api.apply(c)
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in fake.requests if r.path == "/api/v1/dashboard" and r.method == "GET"][:2] == [429, 200]
    assert counts(fake) == EXPECTED


def test_500_is_retried_with_backoff_and_then_succeeds(dd):
    fake, c = dd
    fake.inject("POST", "/api/v1/dashboard", status=500, times=2)
    api.apply(c)
    posts = [r.status for r in fake.requests if r.method == "POST" and r.path == "/api/v1/dashboard"]
    assert posts == [500, 500, 200, 200]
    assert counts(fake) == EXPECTED


def test_500_beyond_the_retry_budget_stops_with_one_line(dd):
    fake, c = dd
    fake.inject("GET", "/api/v1/dashboard", status=500, times=99)
    with pytest.raises(Exit) as caught:
        api.apply(c)
    assert "list dashboards: HTTP 500 Internal Server Error: Internal Server Error (after retries)" in str(caught.value)
    assert len([r for r in fake.requests if r.path == "/api/v1/dashboard"]) == 4  # 1 + max_retries
    assert fake.writes() == []


def test_slow_read_times_out_and_is_retried(dd):
    fake, c = dd
    fake.inject("GET", "/api/v1/monitor", delay=2.5, times=1)
    api.apply(c)
    assert counts(fake) == EXPECTED
    assert len([r for r in fake.requests if (r.method, r.path) == ("GET", "/api/v1/monitor")]) >= 2  # the slow one, then again


def test_403_names_the_application_key_without_showing_it(dd, capsys):
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
def test_missing_key_is_one_clear_line_and_nothing_is_sent(dd, monkeypatch, missing):
    fake, c = dd
    monkeypatch.delenv(missing)
    with pytest.raises(Exit) as caught:
        api.apply(c)
    assert str(caught.value) == f"error: {missing} is not set: export {missing}=... (Organization Settings > {'API' if missing == 'DD_API_KEY' else 'Application'} Keys)"
    assert fake.requests == []


def test_rejected_api_key_says_which_and_never_shows_it(dd, monkeypatch, capsys):
    fake, c = dd
    monkeypatch.setenv("DD_API_KEY", "wrong-key-0000000000000000")
    with pytest.raises(Exit) as caught:
        api.plan(c)
    message = str(caught.value)
    assert message.startswith("error: DD_API_KEY was rejected (403) when trying to check the API key")
    assert "wrong-key" not in message + capsys.readouterr().out
    assert [r.path for r in fake.requests] == ["/api/v1/validate"]


def test_rejected_application_key_says_which(dd, monkeypatch):
    fake, c = dd
    monkeypatch.setenv("DD_APP_KEY", "wrong-app-key-000000000000")
    with pytest.raises(Exit, match="DD_APP_KEY was rejected"):
        api.apply(c)
    assert fake.writes() == []


def test_bad_payload_stops_before_any_request(dd, tmp_path):
    fake, c = dd
    for path in P.PAYLOAD_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text().replace('"timeseries"', '"timeserie"', 1))
    with pytest.raises(Exit, match=r"timeboard.json: widgets\[0\].definition: not a known WidgetDefinition"):
        api.apply(api_context(fake, payload_dir=str(tmp_path)))
    assert fake.writes() == []


def test_unknown_site_is_refused_before_any_request(fake_dd, dd_keys, monkeypatch):
    monkeypatch.setenv("DD_SITE", "datad0ghq.example")
    c = api_context(fake_dd, base_url="")
    with pytest.raises(Exit, match="DD_SITE='datad0ghq.example' is not a Datadog site"):
        api.plan(c)


def test_every_datadog_site_maps_to_its_api_host(dd_keys, monkeypatch):
    from recipes.ddapi import configuration

    for site in ("datadoghq.com", "datadoghq.eu", "us3.datadoghq.com", "us5.datadoghq.com", "ap1.datadoghq.com", "ddog-gov.com"):
        monkeypatch.setenv("DD_SITE", site)
        assert configuration({}).host == f"https://api.{site}"


# --- destroy ----------------------------------------------------------------------------------------------------
def test_destroy_removes_only_what_carries_our_mark(dd):
    fake, c = dd
    api.apply(c)
    foreign_dash = fake.handle("POST", "/api/v1/dashboard", {}, {"title": "Someone else's", "layout_type": "ordered", "widgets": []}, {"DD-API-KEY": FAKE_API_KEY, "DD-APPLICATION-KEY": FAKE_APP_KEY})[1]
    same_title = fake.handle("POST", "/api/v1/dashboard", {}, {"title": "Exercise timeboard: my_metric on datadog-exercise", "description": "hand-made", "layout_type": "ordered", "widgets": []}, {"DD-API-KEY": FAKE_API_KEY, "DD-APPLICATION-KEY": FAKE_APP_KEY})[1]
    foreign_mon = fake.handle("POST", "/api/v1/monitor", {}, {"name": "my_metric is high (dd-runbook exercise)", "type": "query alert", "query": "avg(last_5m):avg:other{*} > 1", "options": {"thresholds": {"critical": 1}}, "tags": ["team:other"]}, {"DD-API-KEY": FAKE_API_KEY, "DD-APPLICATION-KEY": FAKE_APP_KEY})[1]
    fake.clear_log()
    api.destroy(c, dry_run=True)
    assert fake.writes() == []
    api.destroy(c)
    assert sorted(fake.state.dashboards) == sorted([foreign_dash["id"], same_title["id"]])
    assert list(fake.state.monitors) == [foreign_mon["id"]]
    assert fake.active_downtimes() == []
    assert [m for m, _ in writes(fake)] == ["DELETE"] * 5
    fake.clear_log()
    api.destroy(c)
    assert fake.writes() == []


# --- validate task ----------------------------------------------------------------------------------------------
def test_validate_checks_every_file_offline_without_keys(fake_dd, monkeypatch, capsys):
    monkeypatch.delenv("DD_API_KEY", raising=False)
    api.validate(api_context(fake_dd))
    shown = capsys.readouterr().out
    assert all(f"ok {spec.file}" in " ".join(shown.split()) for spec in P.SPECS)
    assert fake_dd.requests == []


def test_validate_with_keys_also_asks_the_monitor_validate_endpoint_and_writes_nothing(dd):
    fake, c = dd
    api.validate(c)
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/api/v1/validate"), ("POST", "/api/v1/monitor/validate")]
    assert fake.writes() == [] and counts(fake) == {"dashboards": 0, "monitors": 0, "downtimes": 0}


def test_validate_fails_listing_every_problem(fake_dd, tmp_path):
    for path in P.PAYLOAD_DIR.glob("*.json"):
        text = path.read_text().replace('"warning": 500', '"warning": 900').replace("INTERVAL=1;", "INTERVAL=x;")
        (tmp_path / path.name).write_text(text)
    with pytest.raises(Exit) as caught:
        api.validate(api_context(fake_dd, payload_dir=str(tmp_path)), offline=True)
    message = str(caught.value)
    assert "monitor.json: options.thresholds.warning: 900 must be below critical 800" in message
    assert "downtime-weeknights.json: data.attributes.schedule.recurrences[0].rrule:" in message
    assert "downtime-weekends.json: data.attributes.schedule.recurrences[0].rrule:" in message
