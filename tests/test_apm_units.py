"""apm recipe pieces that need no host: lock-file pins, settings validation, templates, pip's proxy."""

import copy
import subprocess

import pytest
from invoke import Config
from invoke.config import merge_dicts
from invoke.exceptions import Exit

from recipes import boundary, settings as schema
from recipes.vm import apm
from recipes.defaults import CONFIG
from recipes.vm.rendering import render

LOCK = """
version = 1
[[package]]
name = "flask"
version = "3.1.3"
dependencies = [{ name = "click" }, { name = "colorama", marker = "sys_platform == 'win32'" }]
[[package]]
name = "click"
version = "8.0.0"
dependencies = [{ name = "colorama", marker = "platform_system == 'Windows'" }, { name = "extra-user", extra = ["fast"] }]
[[package]]
name = "colorama"
version = "0.4.6"
[[package]]
name = "extra-user"
version = "1.0"
[package.optional-dependencies]
fast = [{ name = "speedup" }]
[[package]]
name = "speedup"
version = "2.0"
[[package]]
name = "unrelated"
version = "9.9"
"""


def config(**apm_overrides):
    cfg = Config(defaults=merge_dicts(Config.global_defaults(), copy.deepcopy(CONFIG)))
    cfg.load_overrides({"apm": apm_overrides})
    return cfg


def test_locked_requirements_pin_the_closure_with_markers_and_extras(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text(LOCK)
    lines = apm.locked_requirements(lock, roots=("flask",)).splitlines()[1:]
    assert lines == [
        "click==8.0.0",
        "colorama==0.4.6 ; (platform_system == 'Windows') or (sys_platform == 'win32')",
        "extra-user==1.0",
        "flask==3.1.3",
        "speedup==2.0",
    ]


def test_the_real_lock_file_pins_flask_ddtrace_gunicorn_at_the_project_versions():
    text = apm.locked_requirements()
    assert {"flask==3.1.3", "ddtrace==4.16.0", "gunicorn==27.0.1"} <= set(text.splitlines())


def test_a_package_missing_from_the_lock_is_named(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text(LOCK)
    with pytest.raises(Exit, match="no \\[\\[package\\]\\] named 'nope'"):
        boundary.checked(apm.locked_requirements)(lock, roots=("nope",))


def test_pins_missing_compares_freeze_output_by_normalized_name():
    requirements = "# header\nflask==3.1.3\ntyping-extensions==4.16.0\ncolorama==0.4.6 ; (sys_platform == 'win32')\n"
    assert apm.pins_missing(requirements, "Flask==3.1.3\ntyping_extensions==4.16.0\n") == []
    assert apm.pins_missing(requirements, "flask==3.1.2\n") == ["flask==3.1.3", "typing-extensions==4.16.0"]


@pytest.mark.parametrize("dump, setting, expected", [
    ('Acquire::http::Proxy "http://10.200.0.1:8888/";\n', "auto", "http://10.200.0.1:8888/"),
    ("", "auto", ""),
    ('Acquire::http::Proxy "DIRECT";\n', "auto", ""),
    ('Acquire::http::Proxy "http://a:1/";\n', "", ""),
    ("", "http://proxy:3128", "http://proxy:3128"),
])
def test_pip_uses_the_proxy_apt_uses_when_auto(dump, setting, expected):
    settings = schema.of(config(pip_proxy=setting)).apm
    assert apm.pip_proxy(settings, dump) == expected


def test_a_wheelhouse_without_wheels_stops_before_anything_is_written(tmp_path):
    # The schema refuses it (recipes/settings.py) before any VM task reads its settings.
    with pytest.raises(Exit, match="apm.wheelhouse: .*no \\*.whl files"):
        boundary.checked(schema.of)(config(wheelhouse=str(tmp_path)))


def test_the_vm_binds_beyond_loopback_by_default_and_bind_option_wins():
    assert apm.with_bind(schema.of(config()).apm, None).vm_bind == "0.0.0.0"
    assert apm.with_bind(schema.of(config()).apm, "127.0.0.1").vm_bind == "127.0.0.1"


def test_the_init_script_renders_to_valid_sh_with_the_settings(tmp_path):
    script = render("apm/flask-app.init", name="flask-app", app_dir="/opt/flask-app", user="flaskapp")
    path = tmp_path / "flask-app"
    path.write_text(script)
    assert subprocess.run(["sh", "-n", str(path)], capture_output=True, check=False).returncode == 0
    assert "PIDFILE=/run/$NAME.pid" in script and "--chuid \"$RUN_AS\"" in script and "RUN_AS=flaskapp" in script
    assert "# Required-Start:    $remote_fs $network" in script


def test_the_systemd_unit_runs_gunicorn_under_ddtrace_run_as_the_app_user():
    unit = render("apm/flask-app.service", name="flask-app", app_dir="/opt/flask-app", user="flaskapp")
    assert "ExecStart=/opt/flask-app/venv/bin/ddtrace-run /opt/flask-app/venv/bin/gunicorn -c gunicorn_conf.py" in unit
    assert "User=flaskapp" in unit and "EnvironmentFile=/etc/default/flask-app" in unit
    env = render("apm/flask-app.default", name="flask-app", app_dir="/opt/flask-app", user="flaskapp",
                 service="flask", env="dev", version="1.0.0", bind="0.0.0.0", port=5050)
    assert {"DD_SERVICE=flask", "DD_ENV=dev", "DD_VERSION=1.0.0", "APM_PORT=5050"} <= set(env.splitlines())


def test_apm_demo_rejects_an_unknown_server():
    from app.demo import DemoSettings

    with pytest.raises(ValueError, match="server"):
        DemoSettings(server="uwsgi")
