"""The VM half of APM: the exercise's Flask app under ddtrace-run as a service (apm-app), and stopping it (apm-stop)."""

from __future__ import annotations

import re
import shlex
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from recipes.taskdef import task

from recipes import ROOT
from recipes.errors import Refused
from recipes.lazy import lazy
from recipes.vm.options import HOST_HELP
from recipes.vm.hostrun import HostRun, StepFailed
from recipes.vm.packages import PackageGroup, ensure_packages
from recipes.vm.plan import host_plan
from recipes.vm.reads import Read, succeeded
from recipes.vm.rendering import render

if TYPE_CHECKING:
    from recipes.settings import ApmSettings

hosts = lazy("recipes.vm.hosts")  # the runner (Fabric, threads): imported when a task runs, not to list them
secrets = lazy("secrets")
tomllib = lazy("tomllib")
schema = lazy("recipes.settings")

APP_FILES = ("my_app.py", "gunicorn_conf.py")  # shipped from app/ as they are
LOCKED = ("flask", "ddtrace", "gunicorn")  # pinned, with their dependencies, from uv.lock
VENV_PACKAGE = PackageGroup(("python3-venv",))
PIP_MIN = (24, 0)  # pitfall 13: an old pip (9.x) cannot install ddtrace; upgrade below this
SYSTEMD = Read("test -d /run/systemd/system", succeeded)
PYTHON = Read("python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
APT_PROXY = Read("apt-config dump Acquire::http::Proxy")
CHANGED = "apm app changed"  # handed to the running step: a step changed what the service runs


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
    lines = [f"# Managed by this runbook (./run apm-app): {', '.join(roots)} and their dependencies, from uv.lock."]
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


class AppReads(NamedTuple):
    """What the plan's steps need to know about the host, read in one round trip by its first step that needs it."""

    systemd: Read[bool]
    python: Read
    user: Read[bool]
    pip: Read
    freeze: Read
    apt_proxy: Read
    wheels: Read


def app_reads(app: ApmSettings) -> AppReads:
    venv = shlex.quote(app.venv)
    return AppReads(SYSTEMD, PYTHON, Read(f"id -u {app.user}", succeeded), Read(f"{venv}/bin/python -m pip --version"),
                    Read(f"{venv}/bin/python -m pip freeze --all"), APT_PROXY, Read(f"ls {shlex.quote(app.remote_wheels)}"))


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


def user_step(run: HostRun, app: ApmSettings) -> None:
    reads = app_reads(app)
    run.read_all(reads)
    with run.step(f"system user {app.user}") as step:
        if run.read(reads.user):
            return
        step.changed(f"{'would create' if run.dry_run else 'created'} {app.user}")
        if not run.dry_run:
            run.root(f"useradd --system --home-dir {shlex.quote(app.home)} --no-create-home "
                     f"--shell /usr/sbin/nologin {app.user}", changes=[reads.user])


def files_step(run: HostRun, app: ApmSettings, requirements: str) -> None:
    """The app, its gunicorn settings and the pinned requirements in app_dir."""
    wanted = {f"{app.home}/{name}": app_file(name) for name in APP_FILES}
    wanted[f"{app.home}/requirements.txt"] = requirements
    with run.step(f"app files in {app.home}") as step:
        states = run.files(list(wanted))
        changed = [run.put_file(step, states[path], text, "root", "root", "0644") for path, text in wanted.items()]
    if any(changed):
        run.handed[CHANGED] = True


def venv_step(run: HostRun, app: ApmSettings, requirements: str) -> None:
    """A venv with a current pip and the locked packages; installs only what differs."""
    reads = app_reads(app)
    with run.step(f"venv {app.venv}: pip >= {'.'.join(map(str, PIP_MIN))}, {', '.join(LOCKED)} from uv.lock") as step:
        python, pip, freeze = run.read_all([reads.python, reads.pip, reads.freeze])
        if not python.ok and run.dry_run:
            step.changed("would create the venv (python3 comes with python3-venv)")
            run.handed[CHANGED] = True
            return
        version = python.output.strip()
        if not python.ok or tuple(map(int, version.split("."))) < (3, 9):
            raise StepFailed(f"python3 is {version or 'missing'}; ddtrace 4 needs 3.9 or later")
        script = []
        if not pip.ok:
            step.changed("venv created")
            script.append(f"python3 -m venv {shlex.quote(app.venv)}")
        if not pip.ok or pip_version(pip.output) < PIP_MIN:
            step.changed("pip upgraded")
            script.append(f"{shlex.quote(app.venv)}/bin/python -m pip install -q --upgrade 'pip>={PIP_MIN[0]}'")
        missing = pins_missing(requirements, freeze.output if freeze.ok else "")
        if missing:
            step.changed(f"installed {len(missing)} pinned package(s)")
            script.append(f"{shlex.quote(app.venv)}/bin/python -m pip install -q --no-input "
                          f"-r {shlex.quote(app.home)}/requirements.txt")
        if script:
            run.handed[CHANGED] = True
        if not script or run.dry_run:
            return
        run.root("set -e\n" + pip_env(app, run.read(reads.apt_proxy).output) + "\n".join(script) + "\n",
                 changes=[reads.pip, reads.freeze])


def pip_env(app: ApmSettings, apt_dump: str) -> str:
    """pip's settings for the install: the uploaded wheelhouse only, or PyPI (through a proxy if needed)."""
    env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if app.local_wheels:
        env |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": app.remote_wheels}
    elif proxy := pip_proxy(app, apt_dump):
        env["PIP_PROXY"] = proxy
    return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items())


def wheels_step(run: HostRun, app: ApmSettings) -> None:
    """Upload the wheels the VM's wheelhouse lacks (only when apm.wheelhouse is set)."""
    local = {path.name: path for path in sorted(Path(app.local_wheels).glob("*.whl"))}
    with run.step(f"wheelhouse {app.remote_wheels} from {app.local_wheels}") as step:
        wheels = app_reads(app).wheels
        listed = run.read(wheels)
        there = set(listed.output.split()) if listed.ok else set()
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
                 f"install -m 0644 {q(staging)}/*.whl {q(app.remote_wheels)}/\n", changes=[wheels])


def pip_version(text: str) -> tuple[int, int]:
    match = re.match(r"pip (\d+)\.(\d+)", text.strip())
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def service_files_step(run: HostRun, app: ApmSettings) -> None:
    """/etc/default/<unit> plus a systemd unit (or an init script where systemd does not run)."""
    systemd = run.read(SYSTEMD)
    values = {"name": app.unit, "app_dir": app.home, "user": app.user}
    default = render("apm/flask-app.default", "apm", **values, service=app.service, env=app.env,
                     version=app.version, bind=app.vm_bind, port=app.port)
    if systemd:
        definition = (f"/etc/systemd/system/{app.unit}.service", render("apm/flask-app.service", "apm", **values), "0644")
    else:
        definition = (f"/etc/init.d/{app.unit}", render("apm/flask-app.init", "apm", **values), "0755")
    with run.step(f"service {app.unit} ({'systemd unit' if systemd else 'init script + pidfile'})") as step:
        paths = [f"/etc/default/{app.unit}", definition[0]]
        states = run.files(paths)
        env_changed = run.put_file(step, states[paths[0]], default, "root", "root", "0644")
        def_changed = run.put_file(step, states[paths[1]], definition[1], "root", "root", definition[2])
        if def_changed and systemd and not run.dry_run:
            run.root("systemctl daemon-reload", changes=[])
    if env_changed or def_changed:
        run.handed[CHANGED] = True


def running_step(run: HostRun, app: ApmSettings) -> None:
    """Enabled at boot and running; restarted only when something it runs changed."""
    unit = app.unit
    restart = bool(run.handed.get(CHANGED))
    if run.read(SYSTEMD):
        check = f"systemctl is-enabled --quiet {unit} && systemctl is-active --quiet {unit}"
        start = f"systemctl enable --quiet {unit} && systemctl {'restart' if restart else 'start'} {unit}"
    else:
        check = f"/etc/init.d/{unit} status >/dev/null && ls /etc/rc2.d/S*{unit} >/dev/null 2>&1"
        start = f"update-rc.d {unit} defaults >/dev/null && /etc/init.d/{unit} {'restart' if restart else 'start'}"
    with run.step(f"{unit} running{' (restart: it changed)' if restart else ''}") as step:
        up = run.read(Read(check, succeeded))
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
        body = run.read(Read(fetch))
        if not body.ok or body.output.strip() != "Entrypoint to the Application":
            raise StepFailed(f"{url} did not answer as expected ({body.output.strip()[-200:] or 'no answer'})")


def venv_package_step(run: HostRun) -> None:
    with run.step("package python3-venv") as step:
        ensure_packages(run, step, VENV_PACKAGE)


def app_plan(app: ApmSettings, requirements: str):
    """The steps of apm-app (the wheelhouse's only when apm.wheelhouse is set)."""
    wheels = [partial(wheels_step, app=app)] if app.local_wheels else []
    return host_plan([venv_package_step, partial(user_step, app=app),
                      partial(files_step, app=app, requirements=requirements), *wheels,
                      partial(venv_step, app=app, requirements=requirements), partial(service_files_step, app=app),
                      partial(running_step, app=app), partial(answers_step, app=app)],
                     packages=[VENV_PACKAGE])


def stop_plan(app: ApmSettings):
    """The one step of apm-stop."""
    unit = app.unit
    systemd_up = Read(f"systemctl is-active --quiet {unit}", succeeded)
    init_up = Read(f"test -x /etc/init.d/{unit} && /etc/init.d/{unit} status", succeeded)

    def stopped(run: HostRun) -> None:
        with run.step(f"{unit} stopped") as step:
            systemd, *up = run.read_all([SYSTEMD, systemd_up, init_up])
            if not up[0 if systemd else 1]:
                return
            step.changed(f"{'would stop' if run.dry_run else 'stopped'} (apm-app starts it again)")
            if not run.dry_run:
                run.root(f"systemctl disable --quiet --now {unit}" if systemd
                         else f"/etc/init.d/{unit} stop && update-rc.d {unit} remove >/dev/null")

    return host_plan([stopped])


@task(iterable=["host"], help={**HOST_HELP, "bind": "address gunicorn binds on the VM (default: apm.vm_bind)"})
def apm_app(c, host=None, dry_run=False, bind=None):
    """Install the Flask app in a venv on the VM and run it under ddtrace-run as a service."""
    app = with_bind(schema.of(c).apm, bind)
    return hosts.run_on_hosts(c, host, dry_run, "apm-app", app_plan(app, locked_requirements()))


@task(iterable=["host"], help=HOST_HELP)
def apm_stop(c, host=None, dry_run=False):
    """Stop the Flask app service on the VM."""
    return hosts.run_on_hosts(c, host, dry_run, "apm-stop", stop_plan(schema.of(c).apm))
