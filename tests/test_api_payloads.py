"""The payloads in payloads/: what the exercise asks, and offline validation that catches bad ones.

No network: datadog-api-client's models and this runbook's checks only.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from recipes.api import messages, payloads as P
from recipes.api.kinds import downtime

VALUES = {"HOST": "vagrant", "NOTIFY": "@oncall@example.com", "TIMEZONE": "Europe/Paris", "SERVICE": "flask", "ENV": "dev", "MONITOR_ID": 4242,
          "SITE": "https://runbook.example/"}


def rendered(key: str, **extra) -> dict:
    return P.render(P.spec(key), {**VALUES, **extra})


def queries(dashboard: dict) -> list[str]:
    return [r["q"] for w in dashboard["widgets"] for r in w["definition"]["requests"]]


@pytest.mark.parametrize("spec", P.SPECS, ids=lambda s: s.key)
def test_every_payload_is_plain_json_and_valid_once_filled(spec):
    raw = json.loads((P.PAYLOAD_DIR / spec.file).read_text())  # plain JSON before filling too
    assert P.placeholders(raw), f"{spec.file} uses no placeholder at all"
    assert P.validate(spec, rendered(spec.key)) == []


def test_timeboard_has_the_three_exercise_graphs_in_order():
    assert queries(rendered("timeboard")) == [
        "avg:my_metric{host:vagrant}",
        "anomalies(avg:mysql.performance.cpu_time{host:vagrant}, 'basic', 3)",
        "avg:my_metric{host:vagrant}.rollup(sum, 3600)",
    ]
    assert rendered("timeboard")["layout_type"] == "ordered"


def test_monitor_thresholds_no_data_and_grouping_match_the_exercise():
    monitor = rendered("monitor")
    assert monitor["query"] == "avg(last_5m):avg:my_metric{*} by {host} > 800"
    assert monitor["options"]["thresholds"] == {"critical": 800, "warning": 500}
    assert monitor["options"]["notify_no_data"] is True
    assert monitor["options"]["no_data_timeframe"] == 10
    assert "managed-by:dd-runbook" in monitor["tags"]


def test_monitor_message_has_four_blocks_each_notifying_and_the_alert_carries_value_and_ip():
    message = rendered("monitor")["message"]
    blocks = dict(re.findall(r"\{\{#(is_\w+)\}\}(.*?)\{\{/\1\}\}", message, re.S))
    assert set(blocks) == {"is_alert", "is_warning", "is_no_data", "is_recovery"}
    for state in messages.STATES:
        assert messages.recipients(message, state) == ["@oncall@example.com"], f"{state} would notify no one"
    assert "{{value}}" in blocks["is_alert"] and "{{host.ip}}" in blocks["is_alert"]


def test_at_least_once_variant_only_changes_the_aggregation():
    normal, once = rendered("monitor"), P.render(P.spec("monitor"), VALUES, at_least_once=True)
    assert once["query"] == "max(last_5m):avg:my_metric{*} by {host} > 800"
    assert {**once, "query": normal["query"]} == normal


def windows(key: str, first: date, zone: str = "Europe/Paris", days: int = 28):
    """(start, end) in UTC of each window of a downtime payload over `days` days from `first`, every
    recurrence of it, the duration counted as elapsed time (a 14h window is 14 real hours, DST or not)."""
    schedule = rendered(key, START_DATE=first.isoformat(), TIMEZONE=zone)["data"]["attributes"]["schedule"]
    tz = ZoneInfo(schedule["timezone"])
    spans = []
    for rec in schedule["recurrences"]:
        begin = datetime.fromisoformat(rec["start"])
        length = timedelta(hours=int(rec["duration"].rstrip("h")))
        for local in rrulestr(rec["rrule"], dtstart=begin).between(begin, begin + timedelta(days=days), inc=True):
            start = local.replace(tzinfo=tz).astimezone(timezone.utc)
            spans.append((start, start + length))
    return spans


def assert_nights_and_weekends_exactly(zone: str, monday: date, step: timedelta):
    """From `monday` for 8 days: muted exactly outside Mon-Fri 09:00-19:00 local, checked every `step`."""
    tz = ZoneInfo(zone)
    spans = windows("downtime-weeknights", monday - timedelta(days=14), zone) + windows("downtime-weekends", monday - timedelta(days=14), zone)
    t = datetime.combine(monday, time(0), tz).astimezone(timezone.utc)
    end = t + timedelta(days=8)
    checked = 0
    while t < end:
        local = t.astimezone(tz)
        covered = any(start <= t < stop for start, stop in spans)
        working = local.weekday() < 5 and 9 <= local.hour < 19
        assert covered == (not working), f"{zone} {local:%a %d %b %H:%M %Z} muted={covered}"
        t += step
        checked += 1
    return checked


def test_downtimes_cover_nights_and_weekends_with_no_gap_and_leave_working_hours_alone():
    assert assert_nights_and_weekends_exactly("Europe/Paris", date(2026, 12, 7), timedelta(minutes=15)) == 8 * 96


# The weeks holding 2026's daylight-saving changes (Sunday), from the Monday before to the Monday after.
DST_WEEKS = [
    ("Europe/Paris", date(2026, 3, 23)),      # clocks forward Sun 29 Mar
    ("Europe/Paris", date(2026, 10, 19)),     # clocks back Sun 25 Oct
    ("America/New_York", date(2026, 3, 2)),   # clocks forward Sun 8 Mar
    ("America/New_York", date(2026, 10, 26)), # clocks back Sun 1 Nov
]


@pytest.mark.parametrize("zone, monday", DST_WEEKS, ids=lambda v: str(v))
def test_dst_weeks_have_no_gap_and_no_muted_business_hour_with_elapsed_time_durations(zone, monday):
    tz = ZoneInfo(zone)
    offsets = {datetime.combine(monday + timedelta(days=d), time(12), tz).utcoffset() for d in range(8)}
    assert len(offsets) == 2, "the week must hold a daylight-saving change"
    assert assert_nights_and_weekends_exactly(zone, monday, timedelta(hours=1)) == 8 * 24
    # each UTC hour boundary above is also a local hour boundary, so no partial hour goes unchecked


@pytest.mark.parametrize("zone, monday", DST_WEEKS, ids=lambda v: str(v))
def test_the_old_single_57h_weekend_window_fails_in_dst_weeks(zone, monday):
    """Why the weekend is two recurrences: Saturday 00:00 + 57 elapsed hours misses Monday 09:00 by the DST hour."""
    tz = ZoneInfo(zone)
    saturday = datetime.combine(monday + timedelta(days=5), time(0), tz)
    end = (saturday.astimezone(timezone.utc) + timedelta(hours=57)).astimezone(tz)
    assert end.date() == monday + timedelta(days=7)
    assert end.hour == (10 if monday.month == 3 else 8)


def test_downtime_payloads_use_v2_shape_monitor_id_as_integer_and_timezone():
    for key in ("downtime-weeknights", "downtime-weekends"):
        attrs = rendered(key)["data"]["attributes"]
        assert attrs["monitor_identifier"] == {"monitor_id": 4242}
        assert attrs["schedule"]["timezone"] == "Europe/Paris"
        assert "@oncall@example.com" in attrs["message"]
        for rec in attrs["schedule"]["recurrences"]:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", rec["start"])


def test_start_date_is_the_next_day_each_recurrence_allows():
    saturday_rule, sunday_rule = P.load_template(P.spec("downtime-weekends"))["data"]["attributes"]["schedule"]["recurrences"]
    assert downtime.next_start_date(saturday_rule, "Europe/Paris", today=date(2026, 12, 2)) == "2026-12-05"  # Wed -> Sat
    assert downtime.next_start_date(sunday_rule, "Europe/Paris", today=date(2026, 12, 2)) == "2026-12-06"  # Wed -> Sun
    (weeknights,) = P.load_template(P.spec("downtime-weeknights"))["data"]["attributes"]["schedule"]["recurrences"]
    assert downtime.next_start_date(weeknights, "Europe/Paris", today=date(2026, 12, 5)) == "2026-12-07"  # Sat -> Mon
    assert downtime.next_start_date(weeknights, "Europe/Paris", today=date(2026, 12, 2)) == "2026-12-02"


def test_each_weekend_recurrence_gets_its_own_start_date_in_the_filled_body():
    recs = rendered("downtime-weekends", START_DATE="2026-12-02")["data"]["attributes"]["schedule"]["recurrences"]
    assert [(r["start"], r["duration"]) for r in recs] == [("2026-12-05T00:00", "45h"), ("2026-12-06T19:00", "14h")]
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    starts = [datetime.fromisoformat(r["start"]) for r in rendered("downtime-weekends")["data"]["attributes"]["schedule"]["recurrences"]]
    assert [s.weekday() for s in starts] == [5, 6] and all(0 <= (s.date() - today).days < 7 for s in starts)


def test_a_start_date_that_is_not_a_date_is_refused_with_the_file():
    with pytest.raises(P.PayloadError, match=r"downtime-weekends.json: START_DATE 'next week' is not a date"):
        rendered("downtime-weekends", START_DATE="next week")


def test_apm_dashboard_shows_requests_errors_latency_cpu_and_network_of_the_service():
    text = "\n".join(queries(rendered("apm-dashboard")))
    for needle in ("trace.flask.request.hits{service:flask,env:dev}", "trace.flask.request.errors", "p95:trace.flask.request", "system.cpu", "system.net.bytes_rcvd{host:vagrant}"):
        assert needle in text


# --- bad payloads: each caught offline, naming the file and the field ---------------------------------
@pytest.fixture
def bad_dir(tmp_path):
    for path in P.PAYLOAD_DIR.glob("*.json"):
        shutil.copy(path, tmp_path)
    return tmp_path


def edit(folder, file, change):
    body = json.loads((folder / file).read_text())
    change(body)
    (folder / file).write_text(json.dumps(body))


def problems(folder, key, **extra):
    spec = P.spec(key)
    return "\n".join(P.validate(spec, P.render(spec, {**VALUES, **extra}, folder)))


def test_unknown_widget_type_is_refused_by_the_client_models(bad_dir):
    edit(bad_dir, "timeboard.json", lambda b: b["widgets"][1]["definition"].update(type="timeserie"))
    assert "timeboard.json: widgets[1].definition: not a known WidgetDefinition (got 'timeserie')" in problems(bad_dir, "timeboard")


def test_missing_required_field_is_named_with_its_path(bad_dir):
    edit(bad_dir, "apm-dashboard.json", lambda b: b["widgets"][2]["definition"].pop("requests"))
    assert "apm-dashboard.json: widgets[2].definition.requests: required field is missing" in problems(bad_dir, "apm-dashboard")


def test_bad_query_is_refused(bad_dir):
    edit(bad_dir, "timeboard.json", lambda b: b["widgets"][2]["definition"]["requests"][0].update(q="avg:my_metric{host:${HOST}.rollup(sum, 3600)"))
    assert "timeboard.json: widgets[2].definition.requests[0].q: unclosed '{'" in problems(bad_dir, "timeboard")


def test_bad_anomaly_algorithm_is_refused(bad_dir):
    edit(bad_dir, "timeboard.json", lambda b: b["widgets"][1]["definition"]["requests"][0].update(q="anomalies(avg:mysql.performance.cpu_time{*}, 'magic', 2)"))
    assert "widgets[1].definition.requests[0].q: anomalies() needs" in problems(bad_dir, "timeboard")


def test_missing_critical_threshold_is_refused(bad_dir):
    edit(bad_dir, "monitor.json", lambda b: b["options"]["thresholds"].pop("critical"))
    assert "monitor.json: options.thresholds.critical: required" in problems(bad_dir, "monitor")


def test_warning_above_critical_is_refused(bad_dir):
    edit(bad_dir, "monitor.json", lambda b: b["options"]["thresholds"].update(warning=900))
    assert "payloads/monitor.json: options.thresholds.warning (900) is above critical (800)" in problems(bad_dir, "monitor")


def test_a_below_alert_warns_above_its_critical(bad_dir):
    edit(bad_dir, "monitor.json", lambda b: (b.update(query=b["query"].replace("> 800", "< 800")), b["options"]["thresholds"].update(warning=700)))
    assert "options.thresholds.warning (700) is below critical (800)" in problems(bad_dir, "monitor")


@pytest.mark.parametrize("where, change, expected", [
    ("monitor.json", lambda b: b["options"].update(notify_nodata=True), "monitor.json: options.notify_nodata: unknown field (not in the MonitorOptions schema)"),
    ("monitor.json", lambda b: b.update(colour="red"), "monitor.json: colour: unknown field (not in the Monitor schema)"),
    ("downtime-weekends.json", lambda b: b["data"]["attributes"].update(mesage="x"), "downtime-weekends.json: data.attributes.mesage: unknown field"),
    ("downtime-weekends.json", lambda b: b["data"]["attributes"]["schedule"]["recurrences"][1].update(rule="FREQ=DAILY"),
     "downtime-weekends.json: data.attributes.schedule.recurrences[1].rule: unknown field (not in the DowntimeScheduleRecurrenceCreateUpdateRequest schema)"),
    ("timeboard.json", lambda b: b["widgets"][0]["definition"].update(titel="x"), "timeboard.json: widgets[0].definition.titel: unknown field (not in the TimeseriesWidgetDefinition schema)"),
])
def test_unknown_fields_are_refused_with_their_path(bad_dir, where, change, expected):
    edit(bad_dir, where, change)
    key = where.removesuffix(".json")
    assert expected in problems(bad_dir, key) and P.validate(P.spec(key), rendered(key)) == []


def test_a_message_that_notifies_nobody_is_refused(bad_dir):
    edit(bad_dir, "monitor.json", lambda b: b.update(message=b["message"].replace("${NOTIFY}", "")))
    assert "payloads/monitor.json: message: notifies nobody (no @-handle in it)" in problems(bad_dir, "monitor")


def test_a_state_without_a_handle_is_named(bad_dir):
    edit(bad_dir, "monitor.json", lambda b: b.update(message=b["message"].replace("10 minutes on {{host.name}}. ${NOTIFY}", "10 minutes.")))
    assert "message: notifies nobody on no_data (no @-handle reaches that state)" in problems(bad_dir, "monitor")


def test_a_downtime_starting_in_the_past_is_refused(bad_dir):
    edit(bad_dir, "downtime-weeknights.json", lambda b: b["data"]["attributes"]["schedule"]["recurrences"][0].update(start="2020-01-06T19:00"))
    found = problems(bad_dir, "downtime-weeknights")
    assert "payloads/downtime-weeknights.json: data.attributes.schedule.recurrences[0].start: 2020-01-06T19:00 is in the past" in found


def test_two_dashboards_with_one_title_are_refused_naming_both_files(bad_dir):
    edit(bad_dir, "apm-dashboard.json", lambda b: b.update(title="Exercise timeboard: my_metric on ${HOST}"))
    found = P.problems_by_file(VALUES, bad_dir)
    assert found["timeboard"] == []
    (problem,) = found["apm-dashboard"]
    assert problem.endswith("apm-dashboard.json: title: 'Exercise timeboard: my_metric on vagrant' is also in "
                            f"{bad_dir / 'timeboard.json'} (objects are found again by it: give each payload its own)")


def test_two_downtimes_with_one_marker_are_refused(bad_dir):
    edit(bad_dir, "downtime-weekends.json", lambda b: b["data"]["attributes"].update(message="[dd-runbook:weeknights] copy ${NOTIFY}"))
    (problem,) = P.problems_by_file(VALUES, bad_dir)["downtime-weekends"]
    assert "data.attributes.message: '[dd-runbook:weeknights]' is also in" in problem


def test_average_of_a_trace_duration_is_refused_as_latency(bad_dir):
    edit(bad_dir, "apm-dashboard.json", lambda b: b["widgets"][3]["definition"]["requests"][0].update(q="avg:trace.flask.request.duration{service:${SERVICE}}"))
    assert ("widgets[3].definition.requests[0].q: avg:trace.flask.request.duration is the total span time, not the average latency: "
            "use avg:trace.flask.request{service:flask}") in problems(bad_dir, "apm-dashboard")


def test_the_apm_dashboard_average_latency_reads_the_request_distribution():
    (widget,) = [w["definition"] for w in rendered("apm-dashboard")["widgets"] if w["definition"]["title"].startswith("Average latency")]
    assert [r["q"] for r in widget["requests"]] == ["avg:trace.flask.request{service:flask,env:dev}"]


@pytest.mark.parametrize("live, want, rule, expected", [
    ("2026-12-07T19:00:00", "2026-12-07T19:00", "FREQ=WEEKLY;BYDAY=MO", "2026-12-07T19:00"),  # seconds added by the server
    ("2026-11-30T19:00:00", "2026-12-07T19:00", "FREQ=WEEKLY;BYDAY=MO", "2026-12-07T19:00"),  # an earlier allowed day
    ("2026-12-01T20:00:00", "2026-12-07T19:00", "FREQ=WEEKLY;BYDAY=MO,TU", "2026-12-07T20:00"),  # only the time is a change
    ("2026-12-02T19:00:00", "2026-12-07T19:00", "FREQ=WEEKLY;BYDAY=MO", "2026-12-02T19:00:00"),  # a day the rule does not allow
])
def test_a_recurrence_start_is_compared_in_the_payloads_terms(live, want, rule, expected):
    assert downtime.recurrence_start(live, want, rule) == expected


def test_mistyped_threshold_is_refused_by_the_client_models(bad_dir):
    edit(bad_dir, "monitor.json", lambda b: b["options"]["thresholds"].update(critical="800"))
    assert "monitor.json: Invalid type for variable 'critical'" in problems(bad_dir, "monitor")


def test_host_variables_without_by_host_are_refused(bad_dir):
    edit(bad_dir, "monitor.json", lambda b: b.update(query="avg(last_5m):avg:my_metric{*} > 800"))
    assert "monitor.json: message: uses {{host.*}} but the query is not grouped" in problems(bad_dir, "monitor")


def test_handle_missing_from_one_block_is_refused(bad_dir):
    edit(bad_dir, "monitor.json", lambda b: b.update(message=b["message"].replace("back to normal on {{host.name}}. ${NOTIFY}", "back.")))
    assert "payloads/monitor.json: message: notifies nobody on recovery (no @-handle reaches that state)" in problems(bad_dir, "monitor")


def test_downtime_start_with_an_offset_is_refused(bad_dir):
    edit(bad_dir, "downtime-weeknights.json", lambda b: b["data"]["attributes"]["schedule"]["recurrences"][0].update(start="${START_DATE}T19:00+01:00"))
    assert "downtime-weeknights.json: data.attributes.schedule.recurrences[0].start:" in problems(bad_dir, "downtime-weeknights")


@pytest.mark.parametrize("rule, expected", [
    ("FREQ=FORTNIGHTLY;BYDAY=SA", "is not a valid RRULE"),
    ("FREQ=WEEKLY;BYDAY=XX", "is not a valid RRULE"),
    ("DTSTART:20260101T000000\nRRULE:FREQ=WEEKLY;BYDAY=SA", "DTSTART, DTEND and DURATION are not accepted"),
])
def test_invalid_rrule_is_refused(bad_dir, rule, expected):
    edit(bad_dir, "downtime-weekends.json", lambda b: b["data"]["attributes"]["schedule"]["recurrences"][0].update(rrule=rule))
    found = problems(bad_dir, "downtime-weekends", START_DATE="2026-12-05")
    assert "downtime-weekends.json: data.attributes.schedule.recurrences[0].rrule:" in found and expected in found


def test_unfilled_placeholder_names_file_field_and_how_to_set_it():
    with pytest.raises(P.PayloadError) as caught:
        P.render(P.spec("timeboard"), {**VALUES, "HOST": ""})
    assert str(caught.value) == "payloads/timeboard.json: title: placeholder ${HOST} is not filled (set api.host or pass --define HOST=...)"


def test_unknown_placeholder_in_a_payload_is_an_error(bad_dir):
    edit(bad_dir, "monitor.json", lambda b: b.update(name="${TEAM} monitor"))
    with pytest.raises(P.PayloadError, match=r"monitor.json: name: placeholder \$\{TEAM\} is not filled"):
        P.render(P.spec("monitor"), VALUES, bad_dir)


def test_invalid_json_names_the_file(bad_dir):
    (bad_dir / "timeboard.json").write_text('{"title": ')
    with pytest.raises(P.PayloadError, match=r"timeboard.json: not valid JSON \(line 1"):
        P.render(P.spec("timeboard"), VALUES, bad_dir)


# Every conditional block and variable of Datadog's variables page (DataDog/documentation,
# content/en/monitors/notify/variables.md), each in a message of a monitor grouped by host.
DOCUMENTED_IN_A_MESSAGE = [
    *(f"{{{{{sigil}{block}}}}}x @a{{{{/{block}}}}}" for block in (
        "is_alert", "is_match", "is_exact_match", "is_no_data", "is_warning", "is_recovery", "is_warning_recovery",
        "is_alert_recovery", "is_alert_to_warning", "is_no_data_recovery", "is_unknown", "is_renotify")
      for sigil in "#^"),
    "{{#is_priority 'P1'}}first @a{{/is_priority}}",
    '{{#is_match "role.name" "db" "database"}}db @a{{else}}other @b{{/is_match}}',
    '{{#is_exact_match "host.name" "production"}}prod @a{{/is_exact_match}}',
    *(f"{{{{{name}}}}} @a" for name in (
        "value", "threshold", "warn_threshold", "ok_threshold", "comparator", "first_triggered_at",
        "first_triggered_at_epoch", "last_triggered_at", "last_triggered_at_epoch", "triggered_duration_sec",
        "check_message", "host.name", "host.ip", "host.metadata_agent_version", "host.metadata_machine",
        "host.metadata_platform", "host.metadata_processor", "env.name", "[dot.key.test].name",
        "log.attributes.key", "log.tags.env", "log.attributes.[error.message]", "log.message", "log.link",
        "span.attributes.key", "span.tags.key", "span.resource_name", "span.link", "rum.attributes.key",
        "rum.tags.key", "rum.service", "rum.link")),
    "{{local_time 'last_triggered_at' 'Asia/Tokyo'}} @a",
]


@pytest.mark.parametrize("message", DOCUMENTED_IN_A_MESSAGE)
def test_the_linter_accepts_every_block_and_variable_datadog_documents(message):
    query = "avg(last_5m):avg:my_metric{*} by {host} > 800"
    assert [f.message for f in messages.lint(message, query) if f.level == "error"] == []


@pytest.mark.parametrize("message, error", [
    ("{{#is_alrt}}x @a{{/is_alrt}}", "Unknown block {{#is_alrt}}."),
    ("{{#is_warning_to_alert}}x @a{{/is_warning_to_alert}}", "Unknown block {{#is_warning_to_alert}}."),
    ("{{valu}} @a", "Unknown template variable {{valu}}."),
    ("{{priority}} @a", "Unknown template variable {{priority}}."),
    ("{{host.metadata_kernel}} @a", "Unknown template variable {{host.metadata_kernel}}."),
    ("{{local_time 'nope' 'Asia/Tokyo'}} @a", "Unknown template variable {{local_time 'nope' 'Asia/Tokyo'}}."),
    ("{{else}} @a", "{{else}} outside a block."),
])
def test_the_linter_still_refuses_what_datadog_does_not_document(message, error):
    query = "avg(last_5m):avg:my_metric{*} by {host} > 800"
    assert error in [f.message for f in messages.lint(message, query) if f.level == "error"]


def test_else_shows_the_other_branch_of_a_match():
    message = '{{#is_match "role.name" "db"}}db @a{{else}}other @b{{/is_match}}'
    assert messages.render(message, "alert", {"role.name": "db_cassandra"}) == "db @a"
    assert messages.render(message, "alert", {"role.name": "web"}) == "other @b"


# --- the notebook -------------------------------------------------------------------------------------------------
def notebook_cells() -> list[dict]:
    return rendered("notebook")["data"]["attributes"]["cells"]


def test_every_notebook_cell_is_the_clients_own_model_of_its_kind():
    from datadog_api_client.v1.model.notebook_create_request import NotebookCreateRequest
    from recipes.api.models import to_model

    model = to_model(rendered("notebook"), NotebookCreateRequest)
    kinds = [type(cell.attributes.get_oneof_instance()).__name__ for cell in model.data.attributes.cells]
    assert kinds == ["NotebookMarkdownCellAttributes"] * 3 + ["NotebookTimeseriesCellAttributes", "NotebookLogStreamCellAttributes",
                     "NotebookMarkdownCellAttributes"] + ["NotebookTimeseriesCellAttributes"] * 2 + ["NotebookMarkdownCellAttributes"] * 2 \
        + ["NotebookTimeseriesCellAttributes"] * 2 + ["NotebookMarkdownCellAttributes"] * 2


def test_the_notebooks_sections_follow_the_site_and_link_its_pages():
    nav = re.findall(r"^\s+- [^:]+: ([\w-]+)\.md$", (P.PAYLOAD_DIR.parent / "mkdocs.yml").read_text(), re.M)
    texts = [c["attributes"]["definition"]["text"] for c in notebook_cells() if c["attributes"]["definition"]["type"] == "markdown"]
    linked = [page for text in texts[1:] for page in re.findall(r"\]\(https://runbook\.example/([\w-]+)/\)", text)]
    sections = linked[:-1]  # the scorecard closes the notebook: it is the one cell verify-account --publish writes
    assert sections == [page for page in nav if page in sections] and len(linked) == len(texts) - 1  # one page a section
    assert linked[-1] == "check-your-account"
    assert set(linked) == {"prerequisites", "collecting-metrics", "visualizing-data", "monitoring-data", "collecting-apm-data",
                           "check-your-account", "final-question"}
    assert texts[-1].startswith("## Scorecard\n") and "Managed by dd-runbook." in texts[0]


def test_the_notebooks_graphs_are_the_dashboards_own_widgets_written_once(bad_dir):
    widgets = {w["definition"]["title"]: w["definition"] for key in ("timeboard", "apm-dashboard") for w in rendered(key)["widgets"]}
    graphs = [c["attributes"]["definition"] for c in notebook_cells() if c["attributes"]["definition"]["type"] == "timeseries"]
    assert graphs == [widgets[g["title"]] for g in graphs] and len(graphs) == 5
    assert [g["requests"][0]["q"] for g in graphs][:3] == queries(rendered("timeboard"))  # my_metric, anomalies, rollup
    raw = (P.PAYLOAD_DIR / "notebook.json").read_text()
    assert "my_metric{" not in raw and "trace.flask.request{" not in raw  # no query copied into the notebook's file
    timeboard = bad_dir / "timeboard.json"
    timeboard.write_text(timeboard.read_text().replace("rollup(sum, 3600)", "rollup(sum, 7200)"))
    edited = P.render(P.spec("notebook"), VALUES, bad_dir)
    assert "rollup(sum, 7200)" in json.dumps(edited) and "rollup(sum, 3600)" not in json.dumps(edited)


def test_a_widget_reference_that_names_no_widget_says_which_titles_there_are(bad_dir):
    notebook = bad_dir / "notebook.json"
    notebook.write_text(notebook.read_text().replace('"timeboard: my_metric on ${HOST}"', '"timeboard: my metric"'))
    with pytest.raises(P.PayloadError) as caught:
        P.render(P.spec("notebook"), VALUES, bad_dir)
    assert str(caught.value) == (f"{bad_dir / 'notebook.json'}: data.attributes.cells[3].attributes.definition.$widget: timeboard has "
                                 "no widget titled 'my metric' (its titles: 'my_metric on ${HOST}'; 'MySQL CPU time with anomalies "
                                 "(basic, 3 bounds)'; 'my_metric summed per hour (view at least the past 2 hours)')")


def test_a_notebook_without_its_mark_is_refused(bad_dir):
    notebook = bad_dir / "notebook.json"
    notebook.write_text(notebook.read_text().replace("Managed by dd-runbook.", "Ours."))
    found = P.problems_by_file(VALUES, bad_dir)["notebook"]
    assert found == [f"{bad_dir / 'notebook.json'}: data.attributes.cells: the first markdown cell must say 'Managed by dd-runbook.' "
                     "(the notebook is found again by it)"]


def test_the_notebooks_links_wait_for_their_objects_then_take_their_addresses():
    body = json.dumps(rendered("notebook"))
    assert body.count("](#not-created-yet)") == 5  # the timeboard, the monitor, two downtimes, the APM dashboard
    linked = P.PayloadSet(VALUES).body("notebook", links={"timeboard": "https://app.example/dashboard/abc-def-ghi"})
    assert "[the timeboard](https://app.example/dashboard/abc-def-ghi)" in json.dumps(linked)
    assert P.PayloadSet(VALUES).links("notebook") == ["timeboard", "apm-dashboard", "monitor", "downtime-weeknights", "downtime-weekends"]
