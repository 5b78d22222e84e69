"""verify-account with the real datadog-api-client against the fake Datadog API (a stand-in for the SaaS):
a healthy exercise account passes every row; each of the write-up's failures, seeded into the fake, fails
the row it should with the hint it should, and the pitfall it links exists on the Troubleshooting page."""

import json
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from invoke.exceptions import Exit

from recipes.api import account as scorecard
from recipes.api.account import iso
from recipes import terminal
from recipes.api import requirements, tasks as api
from recipes.site.previews import capture as previews_capture
from tests.captures import capture
from tests.fakedd.account import WRONG, seed_account
from tests.fakedd.fixtures import api_context

pytestmark = pytest.mark.fake_api

TAGS = ["env:dev", "role:database", "owner:runbook"]
ROW_KEYS = ["requirement", "status", "evidence", "todo", "pitfall"]
ROOT = Path(__file__).resolve().parents[1]
TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"
REQUIREMENTS = ["the host reports", "host tags", "my_metric arrives", "hourly rollup has two buckets",
                "MySQL integration metrics", "MySQL logs", "timeboard, monitor and downtimes",
                "downtimes' next windows", "the monitor alerts", "APM: three resources traced"]


@pytest.fixture
def now(monkeypatch):
    """One moment for the seeded account and the scorecard: forty minutes into the last whole hour."""
    moment = int(time.time()) // 3600 * 3600 - 20 * 60
    monkeypatch.setattr(scorecard, "clock", lambda: moment)
    return moment


@pytest.fixture
def applied(fake_dd, dd_keys, now):
    """(fake, context): the runbook's objects applied, as after `./run apply`."""
    c = api_context(fake_dd, poll_interval=0.2)
    api.apply(c)
    fake_dd.clear_log()
    return fake_dd, c


def run(c, capsys, **options):
    capsys.readouterr()
    try:
        api.verify_account(c, json=True, **options)
        code = 0
    except Exit as stop:
        code = stop.code
    return code, json.loads(capsys.readouterr().out)


def row_of(report, requirement):
    return next(r for r in report["rows"] if r["requirement"] == requirement)


def test_a_healthy_account_passes_every_row_with_reads_only_against_the_fake_api(applied, now, capsys):
    fake, c = applied
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now)
    code, report = run(c, capsys)
    assert code == 0, report
    assert [(r["requirement"], r["status"]) for r in report["rows"]] == [(name, "pass") for name in REQUIREMENTS]
    assert fake.writes() == []
    asked = {(r.method, r.path) for r in fake.requests}
    assert {("GET", "/api/v1/hosts"), ("GET", "/api/v1/query"), ("POST", "/api/v2/logs/events/search"),
            ("GET", "/api/v1/events")} <= asked
    evidence = {r["requirement"]: r["evidence"] for r in report["rows"]}
    assert re.search(r"one every 4[0-9] s, values \d+\.\.\d+", evidence["my_metric arrives"])
    assert "get_/api/apm" in evidence["APM: three resources traced"]
    assert re.search(r"weeknights \w{3} \d\d \w{3} 19:00-\w{3} 09:00", evidence["downtimes' next windows"])


# failure kind -> (row that fails, its status, a fragment of what to do, the pitfall it links)
EXPECTED = {
    "hostname": ("the host reports", "fail", "the Agent reports as 'vagrant': set api.host", "hostname-mismatch"),
    "stopped": ("the host reports", "fail", "./run verify", ""),
    "tags": ("host tags", "fail", "restart the Agent", "tags-invisible-until-restart"),
    "conf_placeholder": ("MySQL integration metrics", "fail", "placeholder", "placeholder-left-in-a-config"),
    "unreadable_logs": ("MySQL logs", "fail", "readable by dd-agent", "mysql-logs-unreadable"),
    "interval": ("my_metric arrives", "fail", "belongs under instances:", "where-the-interval-goes"),
    "no_metric": ("my_metric arrives", "fail", "./run custom-check", ""),
    "young_metric": ("hourly rollup has two buckets", "not yet", "two hourly buckets", "hourly-rollup-looks-empty"),
    "payload_drift": ("timeboard, monitor and downtimes", "fail", "./run apply", ""),
    "downtime_timezone": ("downtimes' next windows", "fail", "./run downtimes", ""),
    "average_monitor": ("the monitor alerts", "not yet", "--at-least-once", "average-monitor-never-fires"),
    "no_apm": ("APM: three resources traced", "fail", "ddtrace-run", ""),
}


def test_every_failure_kind_has_an_expected_row():
    assert sorted(EXPECTED) == sorted(WRONG)


@pytest.mark.parametrize("wrong", list(WRONG))
def test_each_failure_fails_its_row_with_its_hint_against_the_fake_api(applied, now, capsys, wrong):
    fake, c = applied
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now, wrong=wrong)
    code, report = run(c, capsys)
    requirement, status, hint, pitfall = EXPECTED[wrong]
    row = row_of(report, requirement)
    assert code == 1 and report["passed"] is False
    assert (row["status"], row["pitfall"]) == (status, pitfall) and hint in row["todo"], row
    assert not pitfall or f"{{ #{pitfall} }}" in TROUBLESHOOTING.read_text()


def test_a_drifted_downtime_names_both_windows_against_the_fake_api(applied, now, capsys):
    fake, c = applied
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now, wrong="downtime_timezone")
    _, report = run(c, capsys)
    evidence = row_of(report, "downtimes' next windows")["evidence"]
    assert re.fullmatch(r"weeknights: scheduled in UTC, windows \w{3} \d\d \w{3} (\d\d:\d\d)-\w{3} (\d\d:\d\d) "
                        r"instead of \w{3} \d\d \w{3} 19:00-\w{3} 09:00", evidence), evidence
    assert "19:00" not in evidence.split("instead")[0]  # the UTC schedule's 19:00 is 20:00 in Paris


def test_objects_that_were_never_applied_fail_their_row_against_the_fake_api(fake_dd, dd_keys, now, capsys):
    c = api_context(fake_dd)
    seed_account(fake_dd, host=c.config.api.host, tags=TAGS, now=now)
    code, report = run(c, capsys)
    row = row_of(report, "timeboard, monitor and downtimes")
    assert code == 1 and row["status"] == "fail" and "timeboard: create" in row["evidence"]
    assert row_of(report, "the monitor alerts")["evidence"] == "no monitor carries the runbook's name and tag"
    assert fake_dd.writes() == []


def test_the_json_report_has_a_stable_shape_against_the_fake_api(applied, now, capsys):
    fake, c = applied
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now)
    _, report = run(c, capsys)
    assert sorted(report) == ["checked_at", "host", "passed", "rows", "site"]
    assert report["host"] == "datadog-exercise" and report["site"] == fake.url and report["passed"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["checked_at"])
    assert all(list(row) == ROW_KEYS and row["status"] in ("pass", "fail", "not yet") for row in report["rows"])


def test_the_rows_are_the_documented_requirements():
    assert [req.name for req in requirements.ALL] == REQUIREMENTS
    assert len({req.anchor for req in requirements.ALL}) == len(REQUIREMENTS)


def test_the_table_shows_every_row_and_links_the_pitfall_and_is_captured_against_the_fake_api(applied, now, capsys,
                                                                                             monkeypatch):
    """Also the site's picture of the scorecard: an account an hour into the exercise, tags not yet restarted. The
    picture's moment is fixed (a Wednesday morning, after the downtimes' first windows) so that its text is the
    same in every run."""
    fake, c = applied
    now = int(datetime(2030, 1, 9, 10, 40, tzinfo=timezone.utc).timestamp())
    monkeypatch.setattr(scorecard, "clock", lambda: now)
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now, wrong=("tags", "average_monitor"))
    capsys.readouterr()
    with pytest.raises(Exit):
        api.verify_account(c)
    out, err = capsys.readouterr()
    for name in REQUIREMENTS:
        assert name in out
    assert "troubleshooting#tags-invisible-until-restart" in out and "8 pass, 1 fail, 1 not yet" in err
    monkeypatch.setattr(terminal, "PIPE_WIDTH", previews_capture.WIDTH)  # as a terminal the site's width shows it
    with pytest.raises(Exit):
        api.verify_account(c)
    out, err = capsys.readouterr()
    assert max(len(line) for line in out.splitlines()) <= previews_capture.WIDTH
    shown = out.replace(fake.url, "127.0.0.1:<port> (fake API)")
    capture("verify-account.txt", f"$ ./run verify-account\n{shown}{err}")


def test_wait_polls_until_the_data_arrives_against_the_fake_api(applied, now, capsys):
    fake, c = applied
    later = threading.Timer(1.0, seed_account, kwargs={"fake": fake, "host": c.config.api.host, "tags": TAGS,
                                                        "now": now})
    later.start()
    started = time.monotonic()
    try:
        code, report = run(c, capsys, wait=20)
    finally:
        later.cancel()
    assert code == 0 and 1.0 <= time.monotonic() - started < 20, report
    validations = sum(r.path == "/api/v1/validate" for r in fake.requests)
    assert validations == 1 and sum(r.path == "/api/v1/hosts" for r in fake.requests) >= 2


def test_wait_gives_up_when_the_time_is_up_and_says_what_it_waited_for_against_the_fake_api(applied, capsys):
    fake, c = applied
    started = time.monotonic()
    code, report = run(c, capsys, wait=1)
    assert code == 1 and report["passed"] is False and 1.0 <= time.monotonic() - started < 10
    assert row_of(report, "the host reports")["status"] == "fail"


def test_a_rate_limited_read_waits_for_the_announced_reset_against_the_fake_api(applied, now, capsys):
    fake, c = applied
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now)
    fake.inject("GET", "/api/v1/query", status=429, reset=1, times=1)
    started = time.monotonic()
    code, _ = run(c, capsys)
    assert code == 0 and time.monotonic() - started >= 1.0
    assert [r.status for r in fake.requests if r.path == "/api/v1/query"][:2] == [429, 200]


def test_each_section_links_its_rows_in_what_you_should_see():
    for req in requirements.ALL:
        page = (ROOT / "docs" / req.section).read_text()
        seen = page.split("## What you should see", 1)
        assert len(seen) == 2 and f"(check-your-account.md#{req.anchor})" in seen[1].split("\n## ")[0], req


# --- the scorecard in the Notebook: verify-account --publish -----------------------------------------------------
def the_notebook(fake) -> dict:
    (notebook,) = fake.state.notebooks.values()
    return notebook


def test_publish_writes_the_scorecard_into_the_notebooks_last_cell_only_against_the_fake_api(applied, now, capsys):
    fake, c = applied
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now, wrong="no_apm")
    before = json.loads(json.dumps(the_notebook(fake)))
    code, report = run(c, capsys, publish=True)
    assert code == 1
    assert [(r.method, r.path) for r in fake.writes()] == [("PUT", f"/api/v1/notebooks/{before['id']}")]
    after = the_notebook(fake)
    old, new = before["attributes"]["cells"], after["attributes"]["cells"]
    assert [cell["id"] for cell in new] == [cell["id"] for cell in old]  # every cell kept, by its id
    assert new[:-1] == old[:-1]  # only the last cell changed
    text = new[-1]["attributes"]["definition"]["text"]
    assert text.startswith("## Scorecard\n") and f"at {report['checked_at']}" in text
    for row in report["rows"]:
        assert f"| {row['requirement']} | {row['status']} | " in text
    assert "| APM: three resources traced | fail | no trace.flask.request.hits" in text


def test_a_second_publish_with_the_same_statuses_writes_nothing_against_the_fake_api(applied, now, capsys, monkeypatch):
    fake, c = applied
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now)
    assert run(c, capsys, publish=True)[0] == 0
    written = the_notebook(fake)["attributes"]["cells"][-1]["attributes"]["definition"]["text"]
    fake.clear_log()
    monkeypatch.setattr(scorecard, "clock", lambda: now + 90)  # a later check: other times, other evidence
    capsys.readouterr()
    api.verify_account(c, publish=True)
    assert "the notebook's scorecard already holds these statuses" in " ".join(capsys.readouterr().err.split())
    assert fake.writes() == []
    assert the_notebook(fake)["attributes"]["cells"][-1]["attributes"]["definition"]["text"] == written
    assert iso(now + 90) not in written


def test_a_changed_status_is_published_again_and_apply_keeps_it_against_the_fake_api(applied, now, capsys):
    fake, c = applied
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now, wrong="no_apm")
    run(c, capsys, publish=True)
    seed_account(fake, host=c.config.api.host, tags=TAGS, now=now)  # the traces arrived
    fake.clear_log()
    assert run(c, capsys, publish=True)[0] == 0
    assert len(fake.writes()) == 1
    text = the_notebook(fake)["attributes"]["cells"][-1]["attributes"]["definition"]["text"]
    assert "| APM: three resources traced | pass |" in text
    fake.clear_log()
    assert {ch.action for ch in api.apply(c)} == {"unchanged"}  # the published scorecard is not a change
    assert fake.writes() == []
    assert the_notebook(fake)["attributes"]["cells"][-1]["attributes"]["definition"]["text"] == text


def test_publish_without_a_notebook_says_how_to_make_one_against_the_fake_api(fake_dd, dd_keys, now, capsys):
    c = api_context(fake_dd)
    api.timeboard(c)
    seed_account(fake_dd, host=c.config.api.host, tags=TAGS, now=now)
    fake_dd.clear_log()
    with pytest.raises(Exit) as stopped:
        api.verify_account(c, publish=True)
    assert stopped.value.code == 1
    assert "no notebook to publish the scorecard to: ./run notebook" in stopped.value.message
    assert fake_dd.writes() == []
