"""The numbers behind the site's pictures: monitor simulation, downtime windows, message lint, and staleness."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from invoke import Config, Context

from recipes.api import messages
from recipes.site.previews import capture, downtimes as preview_downtimes, plan as preview_plan, simulation as sim
from recipes.defaults import CONFIG
from recipes.site.previews.inputs import PreviewInputError, ROOT, load_monitor, load_payload, sample_values
from recipes.site.previews.downtimes import expand_and_check

PARIS = ZoneInfo("Europe/Paris")
from tests.captures import SESSION_STARTED


def make_config(**previews_changes) -> Config:
    raw = copy.deepcopy(CONFIG)
    raw["previews"].update(previews_changes)
    return Config(overrides=raw)


# --- monitor behaviour -------------------------------------------------------------------------
def test_irwin_hall_closed_form_matches_a_hand_computed_value():
    # P(sum of 6 uniforms <= 1.2) = (1.2^6 - 6 * 0.2^6) / 6!
    assert sim.irwin_hall_cdf(1.2, 6) == pytest.approx((1.2**6 - 6 * 0.2**6) / math.factorial(6))
    assert sim.irwin_hall_cdf(3.0, 6) == pytest.approx(0.5)


def test_a_five_minute_window_holds_six_or_seven_points_at_45_seconds():
    assert sim.points_per_window(300, 45) == pytest.approx({6: 1 / 3, 7: 2 / 3})


def test_evaluation_matches_a_brute_force_window_scan():
    series = sim.simulate(seed=11, duration_s=3 * 3600, interval_s=45)
    ev = sim.evaluate(series, "avg", 300, 60, 500, 800)
    for now, reduced in zip(ev.times, ev.reduced):
        window = [v for t, v in zip(series.times, series.values) if now - 300 < t <= now]
        assert reduced == pytest.approx(sum(window) / len(window))


@pytest.mark.parametrize(("aggregator", "threshold", "tolerance"), [
    ("avg", 800, 0.0012),   # rare: about 0.28 % of evaluations
    ("avg", 500, 0.01),
    ("max", 800, 0.01),
])
def test_simulated_share_above_threshold_matches_the_closed_form(aggregator, threshold, tolerance):
    series = sim.simulate(seed=2026, duration_s=60 * 86400, interval_s=45)
    ev = sim.evaluate(series, aggregator, 300, 60, warning=threshold, critical=threshold)
    simulated = 1 - ev.fraction(sim.OK)
    assert simulated == pytest.approx(sim.expected_fraction_above(aggregator, threshold, 300, 45), abs=tolerance)


def test_the_monitor_as_written_almost_never_alerts_and_at_least_once_mostly_does():
    """Pitfall 10 in numbers, on the configured simulated day and the real monitor payloads."""
    values = sample_values(make_config())
    mon, variant = load_monitor(values), load_monitor(values, at_least_once=True)
    from recipes.site.previews.monitor import evaluations
    from recipes.settings import SimulationSettings

    _, (as_written, at_least_once) = evaluations(SimulationSettings(**CONFIG["previews"]["simulation"]), mon, variant["query"])
    assert as_written.aggregator == "avg" and at_least_once.aggregator == "max"
    assert as_written.fraction(sim.ALERT) < 0.01
    assert at_least_once.fraction(sim.ALERT) > 0.7
    assert at_least_once.alert_notifications() > 10 * max(1, as_written.alert_notifications())


# --- downtimes -----------------------------------------------------------------------------------
def windows_between(first: date, days: int, wall_clock: bool = False):
    return expand_and_check(make_config(), first, days, wall_clock)


def test_weeknight_windows_are_the_hand_computed_dates():
    windows, gaps, over = windows_between(date(2026, 6, 1), 14)
    nights = [w for w in windows if w.name == "downtime-weeknights"]
    assert len(nights) == 10
    assert (nights[0].start, nights[0].end) == (datetime(2026, 6, 1, 19, tzinfo=PARIS), datetime(2026, 6, 2, 9, tzinfo=PARIS))
    assert (nights[4].start, nights[4].end) == (datetime(2026, 6, 5, 19, tzinfo=PARIS), datetime(2026, 6, 6, 9, tzinfo=PARIS))
    weekends = [(w.start, w.end) for w in windows if w.name == "downtime-weekends"]
    assert (datetime(2026, 6, 6, 0, tzinfo=PARIS), datetime(2026, 6, 7, 21, tzinfo=PARIS)) in weekends
    assert (datetime(2026, 6, 7, 19, tzinfo=PARIS), datetime(2026, 6, 8, 9, tzinfo=PARIS)) in weekends
    assert gaps == [] and over == []


def weekend_windows(windows, saturday: date):
    return sorted((w.start, w.end) for w in windows
                  if w.name == "downtime-weekends" and saturday <= w.start.date() <= saturday + timedelta(days=1))


def test_spring_dst_weekend_saturday_window_ends_later_and_the_sunday_one_reaches_monday_0900():
    # Sat 28 Mar 2026 00:00 CET = Fri 23:00 UTC; + 45 h = Sun 20:00 UTC = 22:00 CEST.
    windows, gaps, over = windows_between(date(2026, 3, 23), 14)
    assert weekend_windows(windows, date(2026, 3, 28)) == [
        (datetime(2026, 3, 28, 0, tzinfo=PARIS), datetime(2026, 3, 29, 22, tzinfo=PARIS)),
        (datetime(2026, 3, 29, 19, tzinfo=PARIS), datetime(2026, 3, 30, 9, tzinfo=PARIS))]
    assert gaps == [] and over == []


def test_autumn_dst_weekend_saturday_window_ends_earlier_but_still_overlaps_sunday_1900():
    # Sat 24 Oct 2026 00:00 CEST = Fri 22:00 UTC; + 45 h = Sun 19:00 UTC = 20:00 CET.
    windows, gaps, over = windows_between(date(2026, 10, 19), 14)
    assert weekend_windows(windows, date(2026, 10, 24)) == [
        (datetime(2026, 10, 24, 0, tzinfo=PARIS), datetime(2026, 10, 25, 20, tzinfo=PARIS)),
        (datetime(2026, 10, 25, 19, tzinfo=PARIS), datetime(2026, 10, 26, 9, tzinfo=PARIS))]
    assert gaps == [] and over == []


@pytest.fixture
def old_weekend_shape(monkeypatch):
    """The weekend payload as it was: one Saturday 00:00 + 57 h recurrence."""
    real = preview_downtimes.load_payload

    def load(key, values, at_least_once=False):
        body = real(key, values, at_least_once)
        if key == "downtime-weekends":
            saturday = body["data"]["attributes"]["schedule"]["recurrences"][0]
            body["data"]["attributes"]["schedule"]["recurrences"] = [{**saturday, "duration": "57h"}]
        return body

    monkeypatch.setattr(preview_downtimes, "load_payload", load)


def test_old_single_57h_weekend_window_left_a_gap_in_autumn_and_muted_business_in_spring(old_weekend_shape):
    _, gaps, over = windows_between(date(2026, 10, 19), 14)
    assert [(g.start.astimezone(PARIS), g.end.astimezone(PARIS)) for g in gaps] == [
        (datetime(2026, 10, 26, 8, tzinfo=PARIS), datetime(2026, 10, 26, 9, tzinfo=PARIS))]
    assert over == []
    _, gaps, over = windows_between(date(2026, 3, 23), 14)
    assert gaps == []
    assert [(o.start.astimezone(PARIS), o.end.astimezone(PARIS)) for o in over] == [
        (datetime(2026, 3, 30, 9, tzinfo=PARIS), datetime(2026, 3, 30, 10, tzinfo=PARIS))]


def test_wall_clock_durations_close_both_dst_gaps():
    for first in (date(2026, 3, 23), date(2026, 10, 19)):
        _, gaps, over = windows_between(first, 14, wall_clock=True)
        assert gaps == [] and over == []


def test_a_bad_duration_is_reported_with_file_and_field():
    body = load_payload("downtime-weeknights", sample_values(make_config(), START_DATE="2026-06-01"))
    body["data"]["attributes"]["schedule"]["recurrences"][0]["duration"] = "14 hours"
    since = datetime(2026, 6, 1, tzinfo=PARIS)
    with pytest.raises(PreviewInputError, match=r"downtime-weeknights: schedule.recurrences\[0\].duration"):
        preview_downtimes.expand("downtime-weeknights", body, since, since + timedelta(days=7))


def test_quiet_hours_are_the_complement_of_business_hours():
    needed = preview_downtimes.quiet_hours(PARIS, date(2026, 6, 1), 7, time(9), time(19), {0, 1, 2, 3, 4})
    hours = sum((i.end - i.start).total_seconds() for i in needed) / 3600
    assert hours == 7 * 24 - 5 * 10


# --- monitor message lint and rendering ------------------------------------------------------------
GOOD = ("{{#is_alert}}ALERT {{value}} on {{host.name}} ({{host.ip}}) above {{threshold}} @ops@example.com{{/is_alert}}\n"
        "{{#is_warning}}WARN {{value}} above {{warn_threshold}} @ops@example.com{{/is_warning}}\n"
        "{{#is_recovery}}back to normal @ops@example.com{{/is_recovery}}")
GROUPED = "avg(last_5m):avg:my_metric{*} by {host} > 800"


def test_a_good_message_has_no_finding():
    assert messages.lint(GOOD, GROUPED) == []


def test_the_payload_message_is_clean():
    mon = load_monitor(sample_values(make_config()))
    assert messages.lint(mon["message"], mon["query"]) == []


def test_a_handle_missing_from_recovery_gets_the_editor_warning():
    message = "{{#is_warning}}warn @ops@example.com{{/is_warning}}{{#is_alert}}alert @ops@example.com{{/is_alert}}"
    texts = [f.message for f in messages.lint(message, GROUPED)]
    assert ("In message: @ops@example.com is used in is_warning but not in is_recovery. "
            "No recovery notification will be sent.") in texts
    assert any("is_alert but not in is_recovery" in t for t in texts)


def test_a_handle_outside_blocks_is_notified_in_every_state():
    message = "{{#is_alert}}alert{{/is_alert}} @ops@example.com"
    assert messages.lint(message, GROUPED) == []
    assert messages.recipients(message, "recovery") == ["@ops@example.com"]


def test_host_ip_without_grouping_is_flagged():
    findings = messages.lint(GOOD, "avg(last_5m):avg:my_metric{*} > 800")
    assert [f.level for f in findings] == ["warning", "warning"]
    assert "{{host.ip}} is empty unless the monitor is grouped by host" in findings[1].message


def test_unknown_variables_and_blocks_are_errors():
    findings = messages.lint("{{#is_alrt}}x{{/is_alrt}} {{valu}} @a", GROUPED)
    assert {f.message for f in findings} >= {"Unknown block {{#is_alrt}}.", "Unknown template variable {{valu}}."}


@pytest.mark.parametrize(("message", "expected"), [
    ("{{#is_alert}}x @a", "{{#is_alert}} is never closed"),
    ("x{{/is_alert}} @a", "closes a block that was never opened"),
    ("{{#is_alert}}{{#is_warning}}x{{/is_alert}}{{/is_warning}} @a", "closes {{#is_warning}}"),
])
def test_unbalanced_blocks_are_errors(message, expected):
    findings = messages.lint(message, GROUPED)
    assert any(f.level == "error" and expected in f.message for f in findings), findings


def test_render_keeps_only_the_state_blocks_and_fills_values():
    values = {"value": "873.4", "threshold": "800", "warn_threshold": "500", "host.name": "vagrant",
              "host.ip": "10.0.2.15"}
    assert messages.render(GOOD, "alert", values) == \
        "ALERT 873.4 on vagrant (10.0.2.15) above 800 @ops@example.com"
    assert messages.render(GOOD, "warning", values) == "WARN 873.4 above 500 @ops@example.com"
    assert messages.render("{{^is_alert}}calm{{/is_alert}}", "warning", {}) == "calm"
    assert messages.render("{{^is_alert}}calm{{/is_alert}}", "alert", {}) == ""


# --- captures ---------------------------------------------------------------------------------------
def test_ansi_output_becomes_an_offline_svg(tmp_path):
    path = capture.text_to_svg("\x1b[31mPermission denied\x1b[0m: /var/log/mysql\n", tmp_path / "x.svg", "t")
    svg = path.read_text()
    assert svg.startswith("<svg") and "Permission" in svg and "denied" in svg
    assert "#cc555a" in svg  # the red of the ANSI escape survived
    assert "cdnjs" not in svg and "url(" not in svg.replace("url(#", "")


def test_a_real_command_is_captured(tmp_path):
    path = capture.capture_command(Context(), "printf 'tags:\\n  - env:dev\\n'", tmp_path / "c.svg")
    svg = path.read_text()
    assert "env:dev" in svg and "tags:" in svg


# --- staleness ------------------------------------------------------------------------------------------
def test_committed_pictures_match_their_inputs():
    """Fails when a payload, the generator code or a setting changed without `./run previews`. Captures this
    session writes (the end-to-end tests, perhaps on another worker) are converted when it ends, not yet."""
    assert preview_plan.check_stale(make_config(), captured_since=SESSION_STARTED) == []


def test_every_previews_figure_has_a_committed_picture():
    declared = preview_plan.figure_files()
    for picture in preview_plan.full_plan(make_config(), captures=False):
        if picture.figure:
            assert declared[picture.figure], f"docs/figures.yml: {picture.figure}.file is not set"
            assert (ROOT / "docs" / declared[picture.figure]).is_file()


def test_regenerated_pictures_are_byte_identical_to_the_committed_ones(tmp_path):
    config = make_config()
    manifest = json.loads((ROOT / "docs/img/generated/manifest.json").read_text())
    pictures = [p for p in preview_plan.full_plan(config, captures=False)
                if not manifest.get(p.key, {}).get("params", {}).get("capture")]
    preview_plan.generate(config, pictures, str(tmp_path))
    for picture in pictures:
        fresh = (tmp_path / picture.file).read_bytes()
        committed = (ROOT / "docs/img/generated" / picture.file).read_bytes()
        assert fresh == committed, f"{picture.file} differs from a fresh drawing: run `./run previews`"


TERMINALS = {
    "dumb": {"TERM": "dumb"},
    "narrow-xterm": {"TERM": "xterm-256color", "COLUMNS": "80", "LINES": "10", "NO_COLOR": "1", "FORCE_COLOR": "1",
                     "TZ": "Pacific/Chatham", "LANG": "C", "LC_ALL": "C"},
}


@pytest.mark.parametrize("terminal", TERMINALS)
def test_pictures_and_captures_do_not_depend_on_the_terminal_that_drew_them(tmp_path, terminal):
    """`./run previews` and `./run previews --only captures` in a child process under another TERM/COLUMNS/TZ/locale."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TERM", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TZ", "LANG", "LC_ALL")}
    env.update(TERMINALS[terminal])
    captures = tmp_path / "captures"
    captures.mkdir()
    (captures / "tags-yaml.txt").write_text("$ ./run tag-host --dry-run\n" + "\x1b[33mchanged\x1b[0m " + "x" * 150 + "\n")
    for args in (["previews", "--no-captures", "--out", str(tmp_path / "drawn")],
                 ["previews", "--only", "captures", "--source", str(captures), "--out", str(tmp_path / "converted")]):
        done = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr
    drawn = sorted(str(p.relative_to(tmp_path / "drawn")) for p in (tmp_path / "drawn").rglob("*.svg"))
    assert drawn == sorted(p.file for p in preview_plan.full_plan(make_config(), captures=False))
    for name in drawn:
        committed = ROOT / "docs/img/generated" / name
        assert (tmp_path / "drawn" / name).read_bytes() == committed.read_bytes(), f"{name} differs under {terminal}"
    here = capture.text_to_svg((captures / "tags-yaml.txt").read_text(), tmp_path / "here.svg", "captured run: tags-yaml")
    assert (tmp_path / "converted/captures/tags-yaml.svg").read_bytes() == here.read_bytes()


def test_the_check_catches_a_changed_input_and_a_hand_edited_picture(tmp_path):
    copy_dir = tmp_path / "generated"
    shutil.copytree(ROOT / "docs/img/generated", copy_dir)
    config = make_config(out_dir=str(copy_dir))
    assert preview_plan.check_stale(config, captured_since=SESSION_STARTED) == []
    manifest = json.loads((copy_dir / "manifest.json").read_text())
    manifest["alert-monitor"]["inputs"]["payloads/monitor.json"] = "0" * 64
    (copy_dir / "manifest.json").write_text(json.dumps(manifest))
    (copy_dir / "dashboard/five-min.svg").write_text("<svg/>")
    problems = preview_plan.check_stale(config)
    assert "alert-monitor: input payloads/monitor.json changed since the picture was drawn" in problems
    assert "five-min: dashboard/five-min.svg was changed by hand or by another tool" in problems
    changed = make_config(out_dir=str(copy_dir), calendar_week="2026-06-08")
    assert "nightly-downtime: parameters changed since the picture was drawn" in preview_plan.check_stale(changed)


def test_preview_downtimes_task_finds_no_gap_in_the_autumn_dst_week(tmp_path):
    result = subprocess.run([sys.executable, "-m", "invoke", "previews", "--only", "downtimes", "--start", "2026-10-19",
                             "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "Sun 2026-10-25 20:00 CET" in result.stdout  # the Saturday window's end, an hour earlier than usual
    assert "no gap:" in result.stdout and "gap (monitor live" not in result.stdout
    assert "muted during business hours" not in result.stdout
    assert (tmp_path / "downtimes/weekend-downtime.svg").is_file()


def test_a_new_capture_is_converted_once_by_the_session_hook(tmp_path):
    from tests.previews_fixtures import changed_captures

    captures, out = tmp_path / "captures", tmp_path / "generated"
    captures.mkdir()
    (captures / "permissions-error.txt").write_text("$ sudo -u dd-agent ls /var/log/mysql\nPermission denied\n")
    config = make_config(captures_dir=str(captures), out_dir=str(out))
    todo = changed_captures(config)
    assert {p.key for p in todo} == {"permissions-error"}  # each picture has its own capture
    preview_plan.generate(config, todo)
    assert "Permission" in (out / "captures/permissions-error.svg").read_text()
    assert changed_captures(config) == []
    (captures / "permissions-error.txt").write_text("$ sudo -u dd-agent ls /var/log/mysql\nmysql_error.log\n")
    assert {p.key for p in changed_captures(config)} == {"permissions-error"}


def test_is_match_blocks_take_arguments_and_render_on_the_value():
    message = '{{#is_match "host.name" "db"}}database host @dba@example.com{{/is_match}}{{#is_alert}}x{{/is_alert}} @a'
    assert not [f for f in messages.lint(message, GROUPED) if f.level == "error"]
    assert messages.render(message, "alert", {"host.name": "db-1"}).startswith("database host")
    assert messages.render(message, "alert", {"host.name": "web-1"}) == "x @a"


def test_a_capture_holding_a_datadog_key_is_refused_without_printing_it(tmp_path, monkeypatch):
    secret = "0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("DD_API_KEY", secret)
    (tmp_path / "tags-yaml.txt").write_text(f"api_key: {secret}\n")
    with pytest.raises(PreviewInputError, match=r"tags-yaml.txt: contains the value of \$DD_API_KEY") as caught:
        preview_plan.captures_plan(make_config(), str(tmp_path))
    assert secret not in str(caught.value)


def test_a_bad_setting_stops_the_task_with_the_setting_named(tmp_path):
    result = subprocess.run([sys.executable, "-m", "invoke", "previews", "--only", "downtimes", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "INVOKE_API_TIMEZONE": "Mars/Base"})
    assert result.returncode == 2
    assert ("error: environment INVOKE_API_TIMEZONE: api.timezone: 'Mars/Base' is not an IANA time zone"
            in result.stderr) and "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_an_apm_summary_without_latency_is_reported_with_the_field():
    from recipes.site.previews import dashboard as preview_dashboard

    summary = {"services": {"flask": {"resources": {"GET /": {"hits": 3, "errors": 0}}}}}
    with pytest.raises(ValueError, match=r"apm-demo.json: services.flask.resources\['GET /'\] has no 'latency_ms'"):
        preview_dashboard.apm_resources(summary, "flask", "apm-demo.json")
    simulated = preview_dashboard.simulated_apm_summary(6, "flask")
    assert set(preview_dashboard.apm_resources(simulated, "flask", "x")) == {"GET /", "GET /api/apm", "GET /api/trace"}


def test_the_manifest_names_generator_code_by_module_and_a_missing_module_stops_the_plan():
    manifest = json.loads((ROOT / "docs" / "img" / "generated" / "manifest.json").read_text())
    names = {name for entry in manifest.values() for name in entry["inputs"]}
    assert not [name for name in names if name.startswith("recipes/site/") and name.endswith(".py")], \
        "generator code is named by module, not by path"
    assert "recipes.site.previews.plan" in names
    with pytest.raises(PreviewInputError, match="generator module recipes.site.previews.nope does not exist"):
        preview_plan.module_source("recipes.site.previews.nope")


def test_the_apm_latency_panel_plots_the_percentiles_its_widget_queries():
    from recipes.site.previews import dashboard as preview_dashboard

    board = load_payload("apm-dashboard", sample_values(make_config()))
    (latency,) = [w["definition"] for w in board["widgets"] if "Latency" in w["definition"]["title"]]
    assert preview_dashboard.queried_quantiles(latency) == ["p50", "p95"]
    assert "p50 and p95" in latency["title"]  # the title says what the panel plots
    summary = preview_dashboard.simulated_apm_summary(6, "flask")
    resources = preview_dashboard.apm_resources(summary, "flask", "x")
    for row in resources.values():
        del row["latency_ms"]["p95"]
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    with pytest.raises(ValueError, match="no p95 latency"):
        preview_dashboard._panel_latency(axes, list(resources), resources, ["p50", "p95"])
    plt.close(figure)


def test_the_weekend_downtime_email_card_is_drawn_from_its_payload(tmp_path):
    from recipes.site.previews import downtimes as preview_downtimes

    values = sample_values(make_config())
    body = load_payload("downtime-weekends", values)
    card = preview_downtimes.draw_email("downtime-weekends", body, tmp_path / "card.svg").read_text()
    attributes = body["data"]["attributes"]
    assert "Downtime scheduled: dd-runbook:weekends" in card
    assert f"To: {values['NOTIFY'].lstrip('@')}<" in card
    assert "Saturday 00:00 for 45h; Sunday 19:00 for 14h (" + attributes["schedule"]["timezone"] + ")" in card
    assert f"Mutes monitor {attributes['monitor_identifier']['monitor_id']}" in card
    assert "not a Datadog email" in card
