"""Bad input of every kind is refused by name before anything happens: settings (through `-f FILE`), config files,
INVOKE_* variables, the Datadog keys and task options. Each row runs the real task entry (invoke's Program over
tasks.ns, in-process) and checks: exit 2, the message fragment, `(nothing was changed)`, no traceback, and no
file written in the folders tasks write to. VM tasks aim at 127.0.0.1:1, where a connection attempt would fail
at once with exit 1 instead of 2.
"""

import json
import os
from pathlib import Path

import pytest

from tests import inprocess

ROOT = Path(__file__).resolve().parent.parent
NOWHERE = "vagrant@127.0.0.1:1"
VM = ["setup", "--dry-run", "--host", NOWHERE]
KEY = "0123456789abcdef0123456789abcdef"
WRITTEN_BY_TASKS = ("docs/img/generated", "artifacts", "payloads", "site")


def run_task(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """`invoke ARGV` as a user runs it, with exactly `env` (plus PATH and HOME); exit code and all output."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    code, out, _ = inprocess.run_task(argv, {**base, **env}, merged=True)
    return code, out


def listing() -> dict[str, float]:
    found = {}
    for folder in WRITTEN_BY_TASKS:
        for path in (ROOT / folder).rglob("*"):
            found[str(path)] = path.stat().st_mtime
    return found


# (config set with -f, task, fragment of the message)
SETTINGS = [
    ({"agent": {"tagz": ["env:dev"]}}, VM, "agent.tagz: unknown setting (did you mean 'tags'?)"),
    ({"mysqll": {"port": 3306}}, VM, "mysqll: unknown section (did you mean 'mysql'?)"),
    ({"ssh": {"trust_unknown_hosts": "no"}}, VM, "ssh.trust_unknown_hosts: Input should be a valid boolean"),
    ({"ssh": {"trust_unknown_hosts": 1}}, VM, "ssh.trust_unknown_hosts: Input should be a valid boolean"),
    ({"ssh": {"connect_timeout": 0}}, VM, "ssh.connect_timeout: Input should be greater than 0"),
    ({"ssh": {"connect_timeout": "fast"}}, VM, "ssh.connect_timeout: Input should be a valid number"),
    ({"ssh": {"key_file": "/nonexistent/id_ed25519"}}, VM, "ssh.key_file: '/nonexistent/id_ed25519': no such file"),
    ({"ssh": {"user": "root;id"}}, VM, "ssh.user: 'root;id' is not a user name"),
    ({"agent": {"site": "datadoghq.eu"}}, VM, "agent.site: not a setting: the Datadog site is DD_SITE"),
    ({"agent": {"tags": ["env dev"]}}, VM, "agent.tags.0: 'env dev' is not a key:value tag"),
    ({"agent": {"tags": []}}, VM, "agent.tags: List should have at least 1 item"),
    ({"agent": {"repo_url": "http://apt.example.com/'; reboot"}}, VM, "agent.repo_url: "),
    ({"agent": {"key_urls": "https://keys.datadoghq.com/x"}}, VM, "agent.key_urls: Input should be a valid list"),
    ({"agent": {"packages": ["datadog-agent; reboot"]}}, VM, "agent.packages.0: 'datadog-agent; reboot' is not a Debian package name"),
    ({"mysql": {"port": "<3306>"}}, VM, "mysql.port: '<3306>' is a placeholder"),
    ({"mysql": {"port": "33o6"}}, VM, "mysql.port: Input should be a valid integer"),
    ({"mysql": {"port": 70000}}, VM, "mysql.port: Input should be less than or equal to 65535"),
    ({"mysql": {"port": True}}, VM, "mysql.port: Input should be a valid integer"),
    ({"mysql": {"service_name": "<SERVICE_NAME>"}}, VM, "mysql.service_name: '<SERVICE_NAME>' is a placeholder"),
    ({"mysql": {"username": "data dog"}}, VM, "mysql.username: 'data dog' is not a MySQL user name"),
    ({"mysql": {"error_log": "var/log/mysql/error.log"}}, VM, "mysql.error_log: 'var/log/mysql/error.log' is not an absolute path"),
    ({"mysql": {"slow_log": "/var/log/$(reboot).log"}}, VM, "mysql.slow_log: '/var/log/$(reboot).log' is not an absolute path"),
    ({"mysql": {"host": "db;rm -rf /"}}, VM, "mysql.host: 'db;rm -rf /' is not a host name"),
    ({"mysql": {"server_package": "mysql-server reboot"}}, VM, "mysql.server_package: "),
    ({"check": {"min_collection_interval": "<45>"}}, VM, "check.min_collection_interval: '<45>' is a placeholder"),
    ({"check": {"min_collection_interval": 0}}, VM, "check.min_collection_interval: Input should be greater than or equal to 1"),
    ({"check": {"min_collection_interval": "forty"}}, VM, "check.min_collection_interval: Input should be a valid integer"),
    ({"check": {"name": "my-check"}}, VM, "check.name: 'my-check' is not a check name"),
    ({"api": {"timeout": "thirty"}}, ["validate"], "api.timeout: Input should be a valid number"),
    ({"api": {"timezone": "Mars/Base"}}, ["validate"], "api.timezone: 'Mars/Base' is not an IANA time zone"),
    ({"api": {"notify": "nobody"}}, ["validate"], "api.notify: 'nobody' is not one or more @handles"),
    ({"api": {"base_url": "ftp://127.0.0.1/"}}, ["validate"], "api.base_url: 'ftp://127.0.0.1/' is not an http:// or https:// URL"),
    ({"api": {"max_retries": -1}}, ["validate"], "api.max_retries: Input should be greater than or equal to 0"),
    ({"api": {"at_least_once": "yes"}}, ["validate"], "api.at_least_once: Input should be a valid boolean"),
    ({"api": {"payload_dir": "/nonexistent/payloads"}}, ["validate"], "api.payload_dir: '/nonexistent/payloads': no such folder"),
    ({"api": {"host": None}}, ["validate"], "api.host: Input should be a valid string"),
    ({"api": {"hostt": "web-1"}}, ["validate"], "api.hostt: unknown setting (did you mean 'host'?)"),
    ({"api": {"verify_minutes": 0}}, ["verify-account"], "api.verify_minutes: Input should be greater than or equal to 1"),
    ({"api": {"poll_interval": "soon"}}, ["verify-account"], "api.poll_interval: Input should be a valid number"),
    ({"api": {"snapshot_wait": 0}}, ["snapshot"], "api.snapshot_wait: Input should be greater than 0"),
    ({"apm": {"bind": "0.0.0.0;touch /tmp/pwned"}}, VM, "apm.bind: '0.0.0.0;touch /tmp/pwned' is not an IP address"),
    ({"apm": {"vm_bind": "localhost"}}, VM, "apm.vm_bind: 'localhost' is not an IP address"),
    ({"apm": {"user": "Flask App"}}, VM, "apm.user: 'Flask App' is not a user name"),
    ({"apm": {"unit": "flask app"}}, VM, "apm.unit: 'flask app' is not a service name"),
    ({"apm": {"app_dir": "opt/flask-app"}}, VM, "apm.app_dir: 'opt/flask-app' is not an absolute path"),
    ({"apm": {"service": "My Service"}}, VM, "apm.service: 'My Service' is not a tag value"),
    ({"apm": {"version": "1.0 beta"}}, VM, "apm.version: '1.0 beta' is not a version"),
    ({"apm": {"pip_proxy": "socks5://127.0.0.1:1080"}}, VM, "apm.pip_proxy: 'socks5://127.0.0.1:1080' is not an http://"),
    ({"apm": {"port": "<5050>"}}, VM, "apm.port: '<5050>' is a placeholder"),
    ({"apm": {"wheelhouse": "/nonexistent/wheels"}}, VM, "apm.wheelhouse: '/nonexistent/wheels': no such folder"),
    ({"hosts": "vagrant@host"}, VM, "hosts: Input should be a valid list"),
    ({"hosts": ["vagrant@host;reboot"]}, VM, "hosts.0: 'vagrant@host;reboot' is not user@addr[:port]"),
    ({"site": {"port": 0}}, ["validate"], "site.port: Input should be greater than or equal to 1"),
    ({"site": {"addr": "localhost"}}, ["validate"], "site.addr: 'localhost' is not an IP address"),
    ({"site": {"engine": "hugo"}}, ["validate"], "site.engine: 'hugo' is not mkdocs or zensical"),
    ({"vagrant": {"machine": "my box"}}, VM, "vagrant.machine: 'my box' is not a Vagrant machine name"),
    ({"previews": {"simulation": {"interval_s": 0}}}, ["validate"], "previews.simulation.interval_s: Input should be greater"),
    ({"previews": {"calendar_week": "2026-13-45"}}, ["validate"], "previews.calendar_week: '2026-13-45' is not a date"),
    ({"previews": {"calendar_week": "2026-06-02"}}, ["validate"], "previews.calendar_week: 2026-06-02 is a Tuesday, not a Monday"),
    ({"previews": {"business_hours": {"opens": "9am"}}}, ["validate"], "previews.business_hours.opens: '9am' is not a time"),
    ({"previews": {"sample": {"host_ip": "10.0.2"}}}, ["validate"], "previews.sample.host_ip: '10.0.2' is not an IP address"),
    ({"previews": {"check_run": {"runs": 0}}}, ["validate"], "previews.check_run.runs: Input should be greater"),
]

# (text of the -f file or None for a missing one, file name, fragment)
FILES = [
    (None, "missing.yaml", "-f {path}: no such file"),
    ("agent: [\n", "broken.yaml", "{path}: malformed config file"),
    ('{"agent": {"tags": ["env:dev"],}}', "broken.json", "{path}: malformed config file"),
    ("- agent\n- mysql\n", "list.yaml", "{path}: the top level must be a mapping of sections, not list"),
    ("agent:\n  tags: [env:dev]\n  tagz: [role:db]\n", "typo.yaml", "-f {path}: agent.tagz: unknown setting"),
    ("agent:\n  tags: [env:dev]\n", "settings.txt", "-f {path}: a config file must end in .yaml, .yml or .json"),
]

# (environment, task, fragment)
ENVIRONMENT = [
    ({"INVOKE_SSH_CONNECT_TIMEOUT": "abc"}, VM, "environment: INVOKE_SSH_CONNECT_TIMEOUT (ssh.connect_timeout): 'abc' is not an integer"),
    ({"INVOKE_SSH_TRUST_UNKNOWN_HOSTS": "no"}, VM, "INVOKE_SSH_TRUST_UNKNOWN_HOSTS (ssh.trust_unknown_hosts): 'no' is not 1 or 0"),
    ({"INVOKE_SSH_TRUST_UNKNOWN_HOSTS": "false"}, VM, "'false' is not 1 or 0 (invoke would read it as true)"),
    ({"INVOKE_AGENT_TAGZ": "env:dev"}, VM, "INVOKE_AGENT_TAGZ: no such setting (did you mean 'INVOKE_AGENT_TAGS'?)"),
    ({"INVOKE_AGENT_TAGS": "env:dev"}, VM, "INVOKE_AGENT_TAGS (agent.tags): 'env:dev' cannot be set from the environment"),
    ({"INVOKE_API_TIMEZONE": "Mars/Base"}, ["validate"], "environment INVOKE_API_TIMEZONE: api.timezone: 'Mars/Base'"),
    ({"INVOKE_API_TIMEOUT": "thirty"}, ["validate"], "INVOKE_API_TIMEOUT (api.timeout): 'thirty' is not an integer"),
    ({"INVOKE_MYSQL_PORT": "<3306>"}, VM, "INVOKE_MYSQL_PORT (mysql.port): '<3306>' is not an integer"),
    ({"DD_API_KEY": "abc\ndef0123456789"}, VM, "environment: DD_API_KEY: contains whitespace or control characters"),
    ({"DD_API_KEY": "abc def0123456789"}, ["validate"], "environment: DD_API_KEY: contains whitespace"),
    ({"DD_APP_KEY": "abc\tdef0123456789"}, ["validate"], "environment: DD_APP_KEY: contains whitespace"),
    ({"DD_SITE": "datadoghq.moon"}, ["install-agent", "--dry-run", "--host", NOWHERE], "DD_SITE='datadoghq.moon' is not a Datadog site"),
]

# (task with options, fragment)
OPTIONS = [
    (["serve", "--port", "abc"], "option --port: Input should be a valid integer, not 'abc'"),
    (["serve", "--port", "70000"], "option --port: Input should be less than or equal to 65535"),
    (["serve", "--addr", "1.2.3"], "option --addr: '1.2.3' is not an IP address"),
    (["setup", "--host"], "option --host: given without a value"),  # `--host $UNSET`: never the Vagrant box instead
    (["plan", "-D"], "option --define: given without a value"),
    (["plan", "--define", "NOPE=1"], "--define 'NOPE=1': no payload holds ${{NOPE}}; the names are ENV, HOST,"),
    (["apply", "--dry-run", "--define", "HOSTNAME=vm"], "no payload holds ${{HOSTNAME}}; the names are"),
    (["traffic", "-c", "abc"], "option --concurrency: 'abc' is not an integer"),
    (["traffic", "-r", "many"], "option --requests: 'many' is not an integer"),
    (["traffic", "--duration", "long"], "option --duration: 'long' is not a number"),
    (["apm-demo", "-r", "-1"], "option --requests: Input should be greater than or equal to 1"),
    (["apm-demo", "-c", "0"], "option --concurrency: Input should be greater than or equal to 1"),
    (["apm-app", "--bind", "0.0.0.0;touch /tmp/pwned", "--dry-run", "--host", NOWHERE],
     "option --bind: '0.0.0.0;touch /tmp/pwned' is not an IP address"),
    (["tag-host", "--tag", "env dev", "--dry-run", "--host", NOWHERE], "--tag: bad tag 'env dev'"),
    (["validate", "--define", "HOST"], "--define 'HOST': expected NAME=VALUE"),
    (["export", "--out-dir", "{file}"], "option --out-dir {file}: is a file, not a folder"),
    (["verify-account", "--wait", "-1"], "option --wait: Input should be greater than or equal to 0"),
    (["verify-account", "--minutes", "2000"], "option --minutes: Input should be less than or equal to 1440"),
    (["verify-account", "--wait", "soon"], "option --wait: 'soon' is not an integer"),
    (["build", "--engine", "hugo"], "option --engine: 'hugo' is not mkdocs or zensical"),
    (["snapshot", "--minutes", "0", "--dry-run"], "option --minutes: Input should be greater than or equal to 1"),
    (["bench-vm", "--flavour", "ubuntu"], "option --flavour: 'ubuntu' is not one of bookworm, systemd, mysql"),
    (["bench-vm", "--rounds", "0"], "option --rounds: Input should be greater than or equal to 1"),
    (["snapshot", "--widget", "Nope", "--dry-run"], "option --widget: payloads/timeboard.json has no widget titled 'Nope'"),
]


def expect_refused(argv, env, fragment):
    before = listing()
    code, output = run_task(argv, {"DD_API_KEY": KEY, **env})
    assert code == 2, f"exit {code}:\n{output}"
    assert fragment in output and "(nothing was changed)" in output, output
    assert "Traceback" not in output, output
    assert listing() == before, "a refused task wrote a file"


@pytest.mark.parametrize("setting, argv, fragment", SETTINGS, ids=[row[2].split(":")[0] + f"-{i}" for i, row in enumerate(SETTINGS)])
def test_a_bad_setting_is_refused_by_name(tmp_path, setting, argv, fragment):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps(setting))
    expect_refused(["-f", str(config), *argv], {}, f"-f {config}: {fragment}")


@pytest.mark.parametrize("text, name, fragment", FILES, ids=[row[1] for row in FILES])
def test_a_bad_config_file_is_refused_by_name(tmp_path, text, name, fragment):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    expect_refused(["-f", str(path), "validate"], {}, fragment.format(path=path))


@pytest.mark.parametrize("env, argv, fragment", ENVIRONMENT, ids=[next(iter(row[0])) + f"-{i}" for i, row in enumerate(ENVIRONMENT)])
def test_a_bad_environment_variable_is_refused_by_name(env, argv, fragment):
    expect_refused(argv, env, fragment)
    assert all(value not in run_task(argv, {"DD_API_KEY": KEY, **env})[1] for key, value in env.items()
               if key.startswith("DD_") and key != "DD_SITE")


@pytest.mark.parametrize("argv, fragment", OPTIONS, ids=[row[0][0] + f"-{i}" for i, row in enumerate(OPTIONS)])
def test_a_bad_option_is_refused_by_name(tmp_path, argv, fragment):
    file = tmp_path / "a-file"
    file.write_text("")
    expect_refused([arg.format(file=file) for arg in argv], {}, fragment.format(file=file))


def test_the_table_covers_at_least_sixty_bad_inputs():
    assert len(SETTINGS) + len(FILES) + len(ENVIRONMENT) + len(OPTIONS) >= 60


def test_the_defaults_pass_the_schema():
    from recipes import settings
    from recipes.defaults import CONFIG

    assert settings.check(json.loads(json.dumps(CONFIG)), set()).mysql.port == CONFIG["mysql"]["port"]


# --- keys never printed ----------------------------------------------------------------------------------
KEY_VALUES = [KEY, "k3y-with space-0123456789", "line-one-0123\nline-two-4567", "\x1b[31mred-0123456789abc",
              "'; echo pwned-0123456789 #", "ünïcødé-kéy-0123456789"]
TASKS_THAT_TOUCH_KEYS = [
    ["validate"], ["plan"], ["apply", "--dry-run"], ["export", "--out-dir", "{tmp}"], ["destroy", "--dry-run"],
    ["install-agent", "--dry-run", "--host", NOWHERE], ["setup", "--dry-run", "--host", NOWHERE],
    ["traffic", "--url", "http://127.0.0.1:1", "-r", "1"], ["apm-app", "--dry-run", "--host", NOWHERE],
    ["verify-account"], ["snapshot"],
]


@pytest.mark.parametrize("value", KEY_VALUES, ids=range(len(KEY_VALUES)))
def test_no_task_prints_a_datadog_key_whatever_it_is_set_to(tmp_path, value):
    config = tmp_path / "fast.json"  # a closed local port as the API, no retries: every API task fails at once
    config.write_text(json.dumps({"api": {"base_url": "http://127.0.0.1:1", "max_retries": 0, "timeout": 2}}))
    for argv in TASKS_THAT_TOUCH_KEYS:
        argv = [arg.format(tmp=tmp_path / "out") for arg in argv]
        code, output = run_task(["-f", str(config), *argv], {"DD_API_KEY": value, "DD_APP_KEY": value[::-1]})
        assert code != 0 or argv[0] == "validate" or "--dry-run" in argv, (argv, output)
        for secret in (value, value[::-1], *value.split()):
            assert len(secret) < 8 or secret not in output, f"{argv} printed a key:\n{output}"


# --- SSH failures are one line each, never a traceback ----------------------------------------------------
def test_an_ssh_port_that_accepts_and_never_answers_says_timed_out_without_a_traceback(tmp_path):
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # the kernel accepts; nothing ever sends a banner
    config = tmp_path / "fast.json"
    config.write_text(json.dumps({"ssh": {"connect_timeout": 1, "trust_unknown_hosts": True}}))
    try:
        code, output = run_task(["-f", str(config), "custom-check", "--dry-run", "--host",
                                 f"vagrant@127.0.0.1:{silent.getsockname()[1]}"], {})
    finally:
        silent.close()
    assert code == 1 and "timed out: the port accepts connections but sends no SSH banner" in output, output
    assert "Traceback" not in output and "Exception (client)" not in output, output


# --- tasks that write files check every input first --------------------------------------------------------
CORRUPT_INPUTS = [
    # (task, file placed in its input folder, content, fragment)
    (["previews", "--only", "messages"], "out/manifest.json", b"{not json", "manifest.json: corrupt manifest"),
    (["previews", "--only", "monitor"], "out/manifest.json", b'{"alert-monitor": {"file": "x.svg"}}', "corrupt manifest (each entry needs"),
    (["previews", "--only", "captures", "--source", "{tmp}/caps"], "caps/tags-yaml.txt", bytes(range(256)) * 4, "not UTF-8 text"),
    (["previews", "--only", "captures", "--source", "{tmp}/caps"], "caps/tags-yaml.txt", b"$ invoke tag-host\n\x00\x01\x02 ok\n",
     "control character '\\x00' at offset 18 is not terminal output"),
]


@pytest.mark.parametrize("argv, name, content, fragment", CORRUPT_INPUTS, ids=[f"{r[0][0]}-{i}" for i, r in enumerate(CORRUPT_INPUTS)])
def test_a_corrupt_input_stops_a_writing_task_before_its_first_write(tmp_path, argv, name, content, fragment):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_bytes(content)
    (tmp_path / "out").mkdir(exist_ok=True)
    before = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    expect_refused([arg.format(tmp=tmp_path) for arg in argv] + ["--out", str(tmp_path / "out")], {}, fragment)
    after = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    assert after == before, "a picture or the manifest was written"


def every_task() -> list[str]:
    import tasks

    return sorted(tasks.ns.task_names)


def test_a_short_flag_means_one_option_on_every_task():
    import tasks
    from recipes.taskdef import SHORT

    meanings: dict[str, set[str]] = {}
    for name in every_task():
        for argument in tasks.ns[name].get_arguments():
            for flag in argument.names[1:]:
                meanings.setdefault(flag, set()).add(argument.names[0])
    assert {flag: names for flag, names in meanings.items() if len(names) > 1} == {}
    assert "h" not in meanings  # -h is help everywhere
    assert set(meanings) <= set(SHORT.values())


@pytest.mark.parametrize("name", every_task())
def test_dash_h_shows_a_tasks_help_and_runs_nothing(name):
    before = listing()
    code, out = run_task([name, "-h"], {})
    assert code == 0, out
    assert out.startswith("Usage: ") and f"[--core-opts] {name} " in out.splitlines()[0], out[:300]
    assert "-h, --" not in out  # no option of any task takes -h from help
    assert listing() == before


NOTIFY_SHIPPED = "api.notify: '@you@example.com' is the shipped example"
TIMEZONE_UNSET = "api.timezone: 'Europe/Paris' is the shipped example"
# The fake API's address is never reached: the refusal comes first. (task argv, setting, what is refused)
SHIPPED = [
    (["apply"], {}, [NOTIFY_SHIPPED, TIMEZONE_UNSET]),
    (["monitor"], {}, [NOTIFY_SHIPPED]),
    (["downtimes"], {}, [NOTIFY_SHIPPED, TIMEZONE_UNSET]),  # a downtime's message mentions the handle too
    (["timeboard"], {}, []),
    (["apply"], {"api": {"notify": "@me@mycompany.com"}}, [TIMEZONE_UNSET]),
    (["apply", "--define", "NOTIFY=@me@mycompany.com"], {}, [TIMEZONE_UNSET]),
]


@pytest.mark.parametrize("argv, setting, refused", SHIPPED, ids=[f"{' '.join(r[0])}-{i}" for i, r in enumerate(SHIPPED)])
def test_a_task_that_would_send_a_shipped_example_refuses_it_by_setting(tmp_path, argv, setting, refused):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"api": {"base_url": "http://127.0.0.1:1", "max_retries": 0, **setting.get("api", {})}}))
    env = {"DD_APP_KEY": KEY}
    for fragment in refused:
        expect_refused(["-f", str(config), *argv], env, fragment)
    code, output = run_task(["-f", str(config), *argv], {"DD_API_KEY": KEY, **env})
    for fragment in {NOTIFY_SHIPPED, TIMEZONE_UNSET} - set(refused):
        assert fragment not in output
    if not refused:
        assert code == 1 and "127.0.0.1:1" in output  # nothing shipped to refuse: it went on to the absent API


def test_a_time_zone_set_on_purpose_is_sent_even_when_it_is_the_examples(tmp_path):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"api": {"base_url": "http://127.0.0.1:1", "max_retries": 0, "notify": "@me@mycompany.com",
                                          "timezone": "Europe/Paris"}}))
    code, output = run_task(["-f", str(config), "apply"], {"DD_API_KEY": KEY, "DD_APP_KEY": KEY})
    assert "shipped example" not in output
    assert code == 1 and "127.0.0.1:1" in output  # it went on to the API, which is not there


def test_a_dry_run_shows_what_a_real_run_would_refuse_and_changes_nothing():
    before = listing()
    code, output = run_task(["apply", "--dry-run"], {})
    assert code == 0, output
    assert f"would be refused without --dry-run: {NOTIFY_SHIPPED}" in " ".join(output.split())
    assert listing() == before


def test_without_vagrant_a_vm_task_says_how_to_install_it_or_use_another_host(tmp_path):
    code, output = run_task(["verify"], {"PATH": str(tmp_path)})  # a PATH where no vagrant is
    assert code == 2, output
    assert "vagrant is not installed (https://developer.hashicorp.com/vagrant/install" in " ".join(output.split())
    assert "or pass --host user@addr[:port]" in " ".join(output.split())


PREVIEW_OPTIONS = [
    (["previews", "--only", "charts"], "option --only: 'charts' is not a kind of picture; the kinds are messages,"),
    (["previews", "--only", "monitor", "--source", "x"], "option --source: only with --only captures"),
    (["previews", "--start", "2026-06-01"], "option --start: only with --only downtimes"),
    (["previews", "--check", "--only", "monitor"], "option --check: draws nothing, so it takes no --only or --out"),
    (["previews", "--only", "dashboard", "--no-captures"], "option --no-captures: only without --only"),
]


@pytest.mark.parametrize("argv, fragment", PREVIEW_OPTIONS, ids=[f"previews-{i}" for i in range(len(PREVIEW_OPTIONS))])
def test_an_option_of_another_kind_of_picture_is_refused_by_name(argv, fragment):
    expect_refused(argv, {}, fragment)
