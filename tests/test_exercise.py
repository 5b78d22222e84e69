"""doctor and exercise, the whole walk: against a real test host (sshd, the stand-in Agent repository, the app's
locked wheels) and the fake Datadog API (a local stand-in for the SaaS, whose account data is seeded: the walk
test proves the walk, not what a real account would receive)."""

import json
import re
import time

import pytest

from recipes.api import account as scorecard
from tests.fakedd.account import seed_account
from tests.fakedd.fixtures import FAKE_API_KEY, FAKE_APP_KEY
from tests.inprocess import run_task
from tests.testhost_fixtures import guest_python, requires_root
from tests.vm_run import DATADOG_YAML, invoke, write_config

STAGES = ["doctor", "setup", "apm-app", "traffic", "apply", "snapshot", "verify-account"]
TAGS = ["env:dev", "role:database", "owner:runbook"]


def stage_rows(output: str) -> dict[str, str]:
    """stage -> result, from the walk's closing table."""
    table = output.rsplit("The exercise", 1)[-1]
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if len(cells) >= 2 and cells[0] in STAGES:
            rows[cells[0]] = cells[1]
    return rows


def fake_api(fake, **extra) -> dict:
    return {"base_url": fake.url, "notify": "@oncall@example.com", "timezone": "Europe/Paris", "timeout": 5,
            "max_retries": 2, "backoff": 0.01, "backoff_max": 0.05, "poll_interval": 0.2, "snapshot_poll": 0.1,
            **extra}


# --- without a host -----------------------------------------------------------------------------------------
def test_doctor_names_every_missing_need_and_how_to_fix_it(tmp_path):
    code, out, _ = run_task(["doctor", "--offline"], {"PATH": str(tmp_path), "HOME": str(tmp_path)}, merged=True)
    flat = " ".join(out.split())
    assert code == 1, out
    for need in ("a host for the VM steps", "DD_API_KEY in the environment", "DD_APP_KEY in the environment",
                 "api.notify is yours", "api.timezone is yours"):
        assert need in flat.split("error: doctor:", 1)[1], f"{need} not named in the verdict:\n{out}"
    assert "https://developer.hashicorp.com/vagrant/install" in flat and "export DD_API_KEY=..." in flat
    assert re.search(r"the keys, accepted by Datadog\s*│\s*skipped\s*│\s*--offline", out), out


def test_a_stage_that_fails_stops_the_walk_and_says_how_to_resume(tmp_path):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"apm": {"port": 1}}))  # nothing listens there: traffic cannot reach the app
    code, out, _ = run_task(["-f", str(config), "exercise", "--start", "traffic", "--host", "vagrant@127.0.0.1:1"],
                            {"PATH": str(tmp_path), "HOME": str(tmp_path)}, merged=True)
    flat = " ".join(out.split())
    assert code == 1, out
    assert stage_rows(out) == {"traffic": "failed"}
    assert "exercise stopped at traffic" in flat
    assert "resume with: ./run exercise --start traffic --host vagrant@127.0.0.1:1" in flat


def test_an_unknown_stage_is_refused_with_the_stages():
    code, out, _ = run_task(["exercise", "--start", "monitor"], {}, merged=True)
    assert code == 2 and "--start 'monitor': no such stage; the stages are doctor, setup, apm-app" in out


# --- against a test host and the fake API -------------------------------------------------------------------
@requires_root
@pytest.mark.e2e
def test_exercise_dry_run_previews_every_stage_and_changes_nothing_against_a_test_host_and_the_fake_api(
        tmp_path, test_host, standin_repo, fake_dd, dd_keys):
    config = write_config(tmp_path, test_host, standin_repo, api=fake_api(fake_dd))
    result = invoke(config, "exercise", "--dry-run", "--host", test_host.target, api_key=FAKE_API_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert stage_rows(result.stdout) == {"doctor": "dry run", "setup": "dry run", "apm-app": "dry run",
                                         "traffic": "dry run", "apply": "dry run", "snapshot": "dry run",
                                         "verify-account": "skipped"}
    assert "would create timeboard" in " ".join(result.stdout.split())
    assert "would create notebook" in " ".join(result.stdout.split())
    assert fake_dd.writes() == []
    assert test_host.root(f"test -e {DATADOG_YAML} || test -e /opt/flask-app").returncode != 0, "a dry run wrote"


@requires_root
@pytest.mark.e2e
def test_exercise_walks_from_doctor_to_verify_account_against_a_test_host_and_the_seeded_fake_api(
        tmp_path, test_host, standin_repo, fake_dd, dd_keys, wheels_for, monkeypatch):
    moment = int(time.time()) // 3600 * 3600 - 20 * 60  # forty minutes into an hour: the rollup has two buckets
    monkeypatch.setattr(scorecard, "clock", lambda: moment)
    seed_account(fake_dd, test_host.name, TAGS, now=moment)  # what the Agent and the app would have sent
    config = write_config(tmp_path, test_host, standin_repo, api=fake_api(fake_dd),
                          apm={"wheelhouse": str(wheels_for(guest_python(test_host)))})
    monkeypatch.setenv("DD_APP_KEY", FAKE_APP_KEY)
    result = invoke(config, "exercise", "--host", test_host.target, "--wait", "5", api_key=FAKE_API_KEY)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert stage_rows(out) == dict.fromkeys(STAGES, "ok")
    flat = " ".join(out.split())
    for stage in STAGES:
        assert f"/{len(STAGES)}] {stage}" in flat  # a progress line per stage
    assert re.search(rf"Your answers in the Datadog account, section by section with the scorecard: {fake_dd.url}/notebook/\d+/", flat)
    assert "the host reports" in flat and "APM: three resources traced" in flat  # verify-account's table
    assert test_host.root(f"test -s {DATADOG_YAML}").returncode == 0
    kinds = sorted(path for method, path in ((r.method, r.path) for r in fake_dd.writes()) if method == "POST")
    assert kinds.count("/api/v1/dashboard") == 2 and kinds.count("/api/v1/monitor") == 1
    assert kinds.count("/api/v2/downtime") == 2 and kinds.count("/api/v1/notebooks") == 1
    (notebook,) = fake_dd.state.notebooks.values()  # verify-account published its scorecard there
    assert "| the host reports | pass |" in notebook["attributes"]["cells"][-1]["attributes"]["definition"]["text"]
