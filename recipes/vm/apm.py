"""The VM half of APM: the exercise's Flask app under ddtrace-run as a service (apm-app), and stopping it (apm-stop)."""

from __future__ import annotations

import re
import secrets
import shlex
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from invoke import task

from recipes import ROOT
from recipes.errors import Refused
from recipes.lazy import lazy
from recipes.vm.hosts import run_on_hosts
from recipes.vm.options import HOST_HELP
from recipes.vm.packages import PackageGroup, ensure_packages
from recipes.vm.steps import HostRun, StepFailed, host_plan, render

if TYPE_CHECKING:
    from recipes.settings import ApmSettings

schema = lazy("recipes.settings")

APP_FILES = ("my_app.py", "gunicorn_conf.py")  # shipped from app/ as they are
LOCKED = ("flask", "ddtrace", "gunicorn")  # pinned, with their dependencies, from uv.lock
VENV_PACKAGE = PackageGroup(("python3-venv",))
PIP_MIN = (24, 0)  # pitfall 13: an old pip (9.x) cannot install ddtrace; upgrade below this


def with_bind(app: ApmSettings, bind: str | None) -> ApmSettings:
    """The apm settings with --bind (checked as an IP address) in place of apm.vm_bind."""
    if bind is None:
        return app
    return app.model_copy(update={"vm_bind": schema.option("--bind", bind, schema.IpAddress)})


def locked_requirements(lock_path: Path = ROOT / "uv.lock", roots=LOCKED) -> str:
    """requirements.txt pinning ``roots`` and everything they pull in, at the lock file's versions."""
    try:
        lock = tomllib.loads(lock_path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise Refused(f"cannot read {lock_path}: {error}") from error
    packages = {p["name"]: p for p in lock.get("package", [])}
    markers: dict[str, set] = {}
    pending = [(name, None) for name in roots]
    while pending:
        name, marker = pending.pop()
        if name not in packages:
            raise Refused(f"{lock_path}: no [[package]] named {name!r}; run `uv lock`")
        if marker in markers.setdefault(name, set()):
            continue
        markers[name].add(marker)
        package = packages[name]
        deps = list(package.get("dependencies", []))
        for dep in package.get("dependencies", []):
            for extra in dep.get("extra", []):
                deps += packages.get(dep["name"], {}).get("optional-dependencies", {}).get(extra, [])
        for dep in deps:
            pending.append((dep["name"], both(marker, dep.get("marker"))))
    lines = [f"# Managed by this runbook (invoke apm-app): {', '.join(roots)} and their dependencies, from uv.lock."]
    for name in sorted(markers):
        found = markers[name]
        when = "" if None in found else " ; " + " or ".join(f"({m})" for m in sorted(found))
        lines.append(f"{name}=={packages[name]['version']}{when}")
    return "\n".join(lines) + "\n"


def both(first: str | None, second: str | None) -> str | None:
    if first and second:
        return f"({first}) and ({second})"
    return first or second


def app_file(name: str) -> str:
    return (ROOT / "app" / name).read_text()


def probe_facts(run: HostRun, app: ApmSettings) -> dict[str, tuple[int, str]]:
    """Everything the plan needs to know about the host, in one round trip."""
    venv = shlex.quote(app.venv)
    return run.probe({
        "systemd": "test -d /run/systemd/system",
        "python": "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'",
        "user": f"id -u {app.user}",
        "pip": f"{venv}/bin/python -m pip --version",
        "freeze": f"{venv}/bin/python -m pip freeze --all",
        "apt_proxy": "apt-config dump Acquire::http::Proxy",
        "wheels": f"ls {shlex.quote(app.remote_wheels)}",
    })


def pip_proxy(app: ApmSettings, apt_dump: str) -> str:
    """The proxy pip should use: explicit, none, or (auto) the one apt already uses."""
    if app.pip_proxy != "auto":
        return app.pip_proxy
    match = re.search(r'^Acquire::http::Proxy "([^"]+)";', apt_dump, re.MULTILINE)
    return match.group(1) if match and match.group(1).lower() not in ("false", "direct") else ""


def pins_missing(requirements: str, freeze: str) -> list[str]:
    """Pinned ``name==version`` lines (for this Linux Python) that ``pip freeze`` does not show."""
    have = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
            for line in freeze.splitlines() if "==" in line}
    missing = []
    for line in requirements.splitlines():
        pin, _, marker = line.partition(" ; ")
        if line.startswith("#") or "==" not in pin or ("win32" in marker or "darwin" in marker):
            continue
        name, version = pin.split("==")
        if have.get(name.lower().replace("_", "-")) != version:
            missing.append(pin)
    return missing


def user_step(run: HostRun, app: ApmSettings, facts) -> None:
    with run.step(f"system user {app.user}") as step:
        if facts["user"][0] == 0:
            return
        step.changed(f"{'would create' if run.dry_run else 'created'} {app.user}")
        if not run.dry_run:
            run.root(f"useradd --system --home-dir {shlex.quote(app.home)} --no-create-home "
                     f"--shell /usr/sbin/nologin {app.user}")


def files_step(run: HostRun, app: ApmSettings, requirements: str) -> bool:
    """The app, its gunicorn settings and the pinned requirements in app_dir; True if any changed."""
    wanted = {f"{app.home}/{name}": app_file(name) for name in APP_FILES}
    wanted[f"{app.home}/requirements.txt"] = requirements
    with run.step(f"app files in {app.home}") as step:
        states, _ = run.files(list(wanted))
        changed = [run.put_file(step, states[path], text, "root", "root", "0644") for path, text in wanted.items()]
    return any(changed)


def venv_step(run: HostRun, app: ApmSettings, facts, requirements: str) -> bool:
    """A venv with a current pip and the locked packages; installs only what differs."""
    with run.step(f"venv {app.venv}: pip >= {'.'.join(map(str, PIP_MIN))}, {', '.join(LOCKED)} from uv.lock") as step:
        if facts["python"][0] != 0 and run.dry_run:
            step.changed("would create the venv (python3 comes with python3-venv)")
            return True
        version = facts["python"][1].strip()
        if facts["python"][0] != 0 or tuple(map(int, version.split("."))) < (3, 9):
            raise StepFailed(f"python3 is {version or 'missing'}; ddtrace 4 needs 3.9 or later")
        script = []
        if facts["pip"][0] != 0:
            step.changed("venv created")
            script.append(f"python3 -m venv {shlex.quote(app.venv)}")
        if facts["pip"][0] != 0 or pip_version(facts["pip"][1]) < PIP_MIN:
            step.changed("pip upgraded")
            script.append(f"{shlex.quote(app.venv)}/bin/python -m pip install -q --upgrade 'pip>={PIP_MIN[0]}'")
        missing = pins_missing(requirements, facts["freeze"][1] if facts["freeze"][0] == 0 else "")
        if missing:
            step.changed(f"installed {len(missing)} pinned package(s)")
            script.append(f"{shlex.quote(app.venv)}/bin/python -m pip install -q --no-input "
                          f"-r {shlex.quote(app.home)}/requirements.txt")
        if not script or run.dry_run:
            return bool(script)
        run.root("set -e\n" + pip_env(app, facts) + "\n".join(script) + "\n")
        return True


def pip_env(app: ApmSettings, facts) -> str:
    """pip's settings for the install: the uploaded wheelhouse only, or PyPI (through a proxy if needed)."""
    env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if app.local_wheels:
        env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": app.remote_wheels}
    elif proxy := pip_proxy(app, facts["apt_proxy"][1]):
        env["PIP_PROXY"] = proxy
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())


def wheels_step(run: HostRun, app: ApmSettings, facts) -> None:
    """Upload the wheels the VM's wheelhouse lacks (only when apm.wheelhouse is set)."""
    local = {path.name: path for path in sorted(Path(app.local_wheels).glob("*.whl"))}
    with run.step(f"wheelhouse {app.remote_wheels} from {app.local_wheels}") as step:
        there = set(facts["wheels"][1].split()) if facts["wheels"][0] == 0 else set()
        missing = [name for name in local if name not in there]
        if not missing:
            return
        step.changed(f"{'would upload' if run.dry_run else 'uploaded'} {len(missing)} wheel(s)")
        if run.dry_run:
            return
        staging = f"/tmp/.runbook-wheels-{secrets.token_hex(6)}"
        sftp = run.conn.sftp()
        sftp.mkdir(staging, 0o700)
        for name in missing:
            sftp.put(str(local[name]), f"{staging}/{name}")
        q = shlex.quote
        run.root(f"trap 'rm -rf {q(staging)}' EXIT\ninstall -d -m 0755 {q(app.remote_wheels)}\n"
                 f"install -m 0644 {q(staging)}/*.whl {q(app.remote_wheels)}/\n")


def pip_version(text: str) -> tuple[int, int]:
    match = re.match(r"pip (\d+)\.(\d+)", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def service_files_step(run: HostRun, app: ApmSettings, systemd: bool) -> bool:
    """/etc/default/<unit> plus a systemd unit (or an init script where systemd does not run)."""
    values = {"name": app.unit, "app_dir": app.home, "user": app.user}
    default = render("apm/flask-app.default", "apm", **values, service=app.service, env=app.env,
                     version=app.version, bind=app.vm_bind, port=app.port)
    if systemd:
        definition = (f"/etc/systemd/system/{app.unit}.service", render("apm/flask-app.service", "apm", **values), "0644")
    else:
        definition = (f"/etc/init.d/{app.unit}", render("apm/flask-app.init", "apm", **values), "0755")
    with run.step(f"service {app.unit} ({'systemd unit' if systemd else 'init script + pidfile'})") as step:
        paths = [f"/etc/default/{app.unit}", definition[0]]
        states, _ = run.files(paths)
        env_changed = run.put_file(step, states[paths[0]], default, "root", "root", "0644")
        def_changed = run.put_file(step, states[paths[1]], definition[1], "root", "root", definition[2])
        if def_changed and systemd and not run.dry_run:
            run.root("systemctl daemon-reload")
    return env_changed or def_changed


def running_step(run: HostRun, app: ApmSettings, systemd: bool, restart: bool) -> None:
    """Enabled at boot and running; restarted only when something it runs changed."""
    unit = app.unit
    if systemd:
        check = f"systemctl is-enabled --quiet {unit} && systemctl is-active --quiet {unit}"
        start = f"systemctl enable --quiet {unit} && systemctl {'restart' if restart else 'start'} {unit}"
    else:
        check = f"/etc/init.d/{unit} status >/dev/null && ls /etc/rc2.d/S*{unit} >/dev/null 2>&1"
        start = f"update-rc.d {unit} defaults >/dev/null && /etc/init.d/{unit} {'restart' if restart else 'start'}"
    with run.step(f"{unit} running{' (restart: it changed)' if restart else ''}") as step:
        up = run.probe({"up": check})["up"][0] == 0
        if up and not restart:
            return
        step.changed(f"{'would ' if run.dry_run else ''}{'restart' if up else 'start'}")
        if not run.dry_run:
            run.root(start)


def answers_step(run: HostRun, app: ApmSettings) -> None:
    """The app answers on its port with the exercise's text (retries while gunicorn boots)."""
    addr = "127.0.0.1" if app.vm_bind in ("0.0.0.0", "::", "") else app.vm_bind
    url = f"http://{addr}:{app.port}/"
    with run.step(f"answers on {url}") as step:
        if run.dry_run:
            step.note("not checked in a dry run")
            return
        python = f"{shlex.quote(app.venv)}/bin/python"
        fetch = (f"for i in $(seq 1 60); do {python} -c 'import sys, urllib.request; "
                 f"sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode())' "
                 f"{shlex.quote(url)} 2>/dev/null && exit 0; sleep 0.5; done; exit 1")
        body = run.probe({"get": fetch})["get"]
        if body[0] != 0 or body[1].strip() != "Entrypoint to the Application":
            raise StepFailed(f"{url} did not answer as expected ({body[1].strip()[-200:] or 'no answer'})")


def app_plan(app: ApmSettings, requirements: str):
    def plan(run: HostRun) -> None:
        with run.step("package python3-venv") as step:
            ensure_packages(run, step, VENV_PACKAGE)
        facts = probe_facts(run, app)
        systemd = facts["systemd"][0] == 0
        user_step(run, app, facts)
        changed = files_step(run, app, requirements)
        if app.local_wheels:
            wheels_step(run, app, facts)
        changed = venv_step(run, app, facts, requirements) or changed
        changed = service_files_step(run, app, systemd) or changed
        running_step(run, app, systemd, restart=changed)
        answers_step(run, app)

    return host_plan(plan, 8 if app.local_wheels else 7, packages=[VENV_PACKAGE])


def stop_plan(app: ApmSettings):
    def plan(run: HostRun) -> None:
        unit = app.unit
        with run.step(f"{unit} stopped") as step:
            found = run.probe({
                "systemd": "test -d /run/systemd/system",
                "systemd_up": f"systemctl is-active --quiet {unit}",
                "init_up": f"test -x /etc/init.d/{unit} && /etc/init.d/{unit} status",
            })
            systemd = found["systemd"][0] == 0
            up = found["systemd_up" if systemd else "init_up"][0] == 0
            if not up:
                return
            step.changed(f"{'would stop' if run.dry_run else 'stopped'} (apm-app starts it again)")
            if not run.dry_run:
                run.root(f"systemctl disable --quiet --now {unit}" if systemd
                         else f"/etc/init.d/{unit} stop && update-rc.d {unit} remove >/dev/null")

    return host_plan(plan, 1)


@task(iterable=["host"], help={**HOST_HELP, "bind": "address gunicorn binds on the VM (default: apm.vm_bind)"})
def apm_app(c, host=None, dry_run=False, bind=None):
    """Install the Flask app in a venv on the VM and run it under ddtrace-run as a service."""
    app = with_bind(schema.of(c).apm, bind)
    return run_on_hosts(c, host, dry_run, "apm-app", app_plan(app, locked_requirements()))


@task(iterable=["host"], help=HOST_HELP)
def apm_stop(c, host=None, dry_run=False):
    """Stop the Flask app service on the VM."""
    return run_on_hosts(c, host, dry_run, "apm-stop", stop_plan(schema.of(c).apm))
