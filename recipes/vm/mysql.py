"""MySQL (MariaDB on Debian) and its Datadog integration on the VM."""

from __future__ import annotations

import re
import shlex
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from recipes.taskdef import task

from recipes.lazy import lazy
from recipes.vm.agent import RESTART_AGENT, merge_datadog_yaml
from recipes.vm.options import HOST_HELP
from recipes.vm.hostfiles import FileState, file_read
from recipes.vm.hostrun import HostRun, StepFailed
from recipes.vm.packages import PackageGroup, ensure_packages, work_of
from recipes.vm.plan import host_plan
from recipes.vm.reads import Read, succeeded, text
from recipes.vm.session import heredoc
from recipes.vm.rendering import render

if TYPE_CHECKING:
    from recipes.settings import MysqlSettings

hosts = lazy("recipes.vm.hosts")  # the runner (Fabric, threads): imported when a task runs, not to list them
secrets = lazy("secrets")
ruamel_yaml = lazy("ruamel.yaml")
schema = lazy("recipes.settings")

CONF_YAML = "/etc/datadog-agent/conf.d/mysql.d/conf.yaml"
# Earlier versions of this runbook wrote a rotation block here; the server package rotates the same files, and
# logrotate then refuses both ("duplicate log entry"). New files inherit the default ACL, so nothing is needed.
OLD_LOGROTATE = "/etc/logrotate.d/dd-agent_ACLs"
OURS_MARKER = "Managed by this runbook"
PASSWORD_RE = re.compile(r"^[A-Za-z0-9_\-]{16,}$")
DROPIN_DIRS = ("/etc/mysql/mariadb.conf.d", "/etc/mysql/mysql.conf.d", "/etc/mysql/conf.d")
# Option files of a folder are read in byte order and the last value wins: "zz-" sorts after the packages' own
# files (Oracle MySQL's mysqld.cnf sets log_error too, and "99-" sorts before it). Earlier runs wrote "99-".
DROPIN_NAME = "zz-datadog.cnf"
OLD_DROPIN_NAME = "99-datadog.cnf"
# The server's own binary, whichever server it is: a box that has one keeps it.
INSTALLED_SERVER = Read("for b in mariadbd mysqld; do p=$(command -v $b) && { echo $p; exit 0; }; done; exit 1")
EFFECTIVE_OPTIONS = "my_print_defaults mysqld 2>/dev/null || mysqld --print-defaults 2>/dev/null"
# The server's service name ('' when neither is there).
SERVICE = Read("for s in mariadb mysql; do if [ -x /etc/init.d/$s ] || systemctl cat $s.service >/dev/null 2>&1; "
               "then echo $s; break; fi; done", text)
SERVER_VERSION = Read("mysql -N -B -e 'SELECT VERSION()'")
LIVE_OPTIONS = Read("mysql -N -B -e 'SELECT @@performance_schema, @@slow_query_log, @@log_error'")
DROPIN_DIR = Read("for d in " + " ".join(DROPIN_DIRS) + "; do [ -d $d ] && { echo $d; break; }; done", text)


def render_conf(settings: MysqlSettings, password: str) -> str:
    """The integration's conf.yaml; refuses placeholders and checks the port is a YAML integer."""
    text = render("mysql/conf.yaml", "mysql", host=settings.host, port=settings.port, username=settings.username,
                  password=password, service=settings.service, error_log=settings.error_log, slow_log=settings.slow_log)
    instances = ruamel_yaml.YAML(typ="safe").load(text)["instances"]
    if len(instances) != 1 or type(instances[0]["port"]) is not int:
        raise StepFailed(f"{CONF_YAML}: port must be one integer in exactly one instance")
    return text


def password_from_conf(text: str) -> str | None:
    """The password of an existing conf.yaml (re-runs reuse it), or None if there is none usable."""
    try:
        data = ruamel_yaml.YAML(typ="safe").load(text) or {}
    except ruamel_yaml.YAMLError as error:
        raise StepFailed(f"{CONF_YAML}: malformed YAML ({str(error).splitlines()[0]}); fix or delete it") from error
    instances = data.get("instances") if isinstance(data, dict) else None
    password = instances[0].get("password") if isinstance(instances, list) and instances and isinstance(instances[0], dict) else None
    return str(password) if password and PASSWORD_RE.match(str(password)) else None


def client_options(username: str, password: str) -> str:
    """bash process substitution giving the mysql client an option file: the password never reaches argv."""
    return f"<(printf '[client]\\nuser=%s\\npassword=%s\\n' {shlex.quote(username)} {shlex.quote(password)})"


def as_user(settings: MysqlSettings, password: str, sql: str) -> str:
    """A shell command running one query as the integration's user over TCP, as the integration connects."""
    return (f"mysql --defaults-extra-file={client_options(settings.username, password)} --protocol=TCP "
            f"-h {shlex.quote(settings.host)} -P {settings.port} -N -B -e {shlex.quote(sql)}")


def server_kind(version: str) -> tuple[bool, tuple[int, ...]]:
    numbers = tuple(int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3])
    return "mariadb" in version.lower(), numbers


def replication_query(version: str) -> str:
    """SHOW REPLICA STATUS on MariaDB >= 10.5.1 and MySQL >= 8.0.22, SHOW SLAVE STATUS before."""
    mariadb, numbers = server_kind(version)
    return "SHOW REPLICA STATUS" if numbers >= ((10, 5, 1) if mariadb else (8, 0, 22)) else "SHOW SLAVE STATUS"


def needs_slave_monitor(version: str) -> bool:
    """MariaDB 10.5.9+ split SLAVE MONITOR from REPLICATION CLIENT: replication status needs it granted too."""
    mariadb, numbers = server_kind(version)
    return mariadb and numbers >= (10, 5, 9)


def grant_sql(settings: MysqlSettings, password: str, version: str) -> str:
    """Idempotent SQL for the user and the grants of the current docs (MySQL 8 and MariaDB)."""
    user = f"'{settings.username}'@'localhost'"
    lines = [
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED BY '{password}';",
        f"ALTER USER {user} IDENTIFIED BY '{password}';",
        f"GRANT REPLICATION CLIENT ON *.* TO {user};",  # shown as BINLOG MONITOR on MariaDB
        f"GRANT PROCESS ON *.* TO {user};",
        f"GRANT SELECT ON performance_schema.* TO {user};",
    ]
    if needs_slave_monitor(version):
        lines.append(f"GRANT SLAVE MONITOR ON *.* TO {user};")
    lines.append(f"ALTER USER {user} WITH MAX_USER_CONNECTIONS 5;")  # Datadog's docs cap it on both servers
    return "\n".join(lines) + "\n"


def grants_complete(grants: str, version: str, max_connections: str) -> bool:
    """Does SHOW GRANTS hold every privilege the integration needs?"""
    text = grants.upper().replace("`", "")
    global_line = next((line for line in text.splitlines() if " ON *.* " in line), "")
    replication = "BINLOG MONITOR" in global_line or "REPLICATION CLIENT" in global_line
    perf = re.search(r"GRANT [^\n]*SELECT[^\n]* ON PERFORMANCE_SCHEMA\.\*", text) is not None
    capped = max_connections.strip() == "5"
    monitor = "SLAVE MONITOR" in global_line or not needs_slave_monitor(version)
    return "PROCESS" in global_line and replication and perf and capped and monitor


def mysql_service(run: HostRun, configured: str) -> str:
    if configured:
        return configured
    return run.read(SERVICE) or "mysql"


def service_running(name: str) -> Read[bool]:
    return Read(f"running {shlex.quote(name)} >/dev/null 2>&1", succeeded)


def server_group(settings: MysqlSettings) -> PackageGroup:
    """The server package unless a server is installed (a box that has one keeps it), and acl."""
    return PackageGroup((settings.server_package, "acl"), unless=((settings.server_package, INSTALLED_SERVER),))


class LogDirReads(NamedTuple):
    agent: Read[bool]  # the Agent's user exists
    acl: Read  # the folder's ACL
    files: Read  # how many of its files the Agent's user may read, and how many there are


def log_dir_reads(settings: MysqlSettings) -> LogDirReads:
    q = shlex.quote(settings.log_dir)
    return LogDirReads(
        Read("id -u dd-agent", succeeded),
        Read(f"getfacl -cp {q}"),
        Read(f"find {q} -maxdepth 1 -type f -exec getfacl -cp {{}} + | grep -c '^user:dd-agent:r' ; "
             f"find {q} -maxdepth 1 -type f | wc -l"),
    )


class UserReads(NamedTuple):
    version: Read  # the server's version, as root
    grants: Read  # SHOW GRANTS for the integration's user
    max_connections: Read  # its max_user_connections


def user_reads(settings: MysqlSettings) -> UserReads:
    who = f"user='{settings.username}' AND host='localhost'"
    return UserReads(
        SERVER_VERSION,
        Read(f"mysql -N -B -e \"SHOW GRANTS FOR '{settings.username}'@'localhost'\""),
        Read(f"mysql -N -B -e \"SELECT max_user_connections FROM mysql.user WHERE {who}\""),
    )


def integration_queries(settings: MysqlSettings, password: str, version: str) -> dict[str, tuple[str, Read]]:
    """The integration's own queries, as its user: name -> (SQL, its read)."""
    queries = {
        "global_status": "SHOW GLOBAL STATUS LIKE 'Uptime'",
        "processlist": "SELECT COUNT(*) FROM information_schema.PROCESSLIST",
        "replication": replication_query(version),
        "digest": "SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest",
    }
    return {name: (sql, Read(as_user(settings, password, sql))) for name, sql in queries.items()}


def mysql_reads(settings: MysqlSettings) -> list[Read]:
    """Every read of the plan's steps, for the run's first session."""
    folders = [f"{d}/{name}" for d in DROPIN_DIRS for name in (DROPIN_NAME, OLD_DROPIN_NAME)]
    services = [settings.service_name] if settings.service_name else ["mariadb", "mysql"]
    return [file_read(CONF_YAML), SERVICE, *(service_running(name) for name in services), DROPIN_DIR,
            LIVE_OPTIONS, log_dir_stat(settings), *(file_read(path) for path in folders),
            *user_reads(settings), *log_dir_reads(settings), file_read(OLD_LOGROTATE)]


def log_dir_stat(settings: MysqlSettings) -> Read:
    return Read(f"stat -c '%U %G %a' {shlex.quote(settings.log_dir)}")


def server_step(run: HostRun, settings: MysqlSettings) -> None:
    with run.step(f"database server ({settings.server_package} unless one is installed), acl; running") as step:
        installed = run.read(INSTALLED_SERVER)
        if installed.ok and settings.server_package not in work_of(run).done:
            step.note(f"server already installed: {installed.output.strip()}")
        ensure_packages(run, step, server_group(settings))
        if run.dry_run and step.status != "ok":
            return
        name = mysql_service(run, settings.service_name)
        if not run.read(service_running(name)):
            # A restart starts a stopped server: one start, not a start and then the drop-in's restart.
            step.changed(f"not running: {'would start' if run.dry_run else 'started'} by the restart below")
            run.notify(*restart_handler(name, settings.error_log))


def dropin_step(run: HostRun, settings: MysqlSettings) -> None:
    with run.step("server drop-in: performance_schema=ON, error and slow logs") as step:
        log_dir = shlex.quote(settings.log_dir)
        folder, live, logdir = run.read_all([DROPIN_DIR, LIVE_OPTIONS, log_dir_stat(settings)])
        folder = folder or DROPIN_DIRS[-1]
        path, old_path = f"{folder}/{DROPIN_NAME}", f"{folder}/{OLD_DROPIN_NAME}"
        states = run.files([path, old_path])
        wanted = render("mysql/server.cnf", "mysql", error_log=settings.error_log, slow_log=settings.slow_log)
        restart = restart_handler(mysql_service(run, settings.service_name), settings.error_log)
        if not logdir.ok:  # MariaDB 10.11 on Debian logs to the journal and ships no /var/log/mysql
            step.changed(f"{'would create' if run.dry_run else 'created'} {settings.log_dir}")
            if not run.dry_run:
                run.queue(f"create {settings.log_dir}", f"install -d -o mysql -g adm -m 2750 {log_dir}",
                          changes=[log_dir_stat(settings), *log_dir_reads(settings)])
        changed = run.put_file(step, states[path], wanted, "root", "root", "0644")
        changed = remove_if_ours(run, step, states[old_path], f"renamed {DROPIN_NAME}") or changed
        if changed:
            run.notify(*restart)
        elif live.ok and live.output.split() != ["1", "1", settings.error_log]:
            step.changed("the running server has not loaded it yet: restart")  # a run cut before the restart
            run.notify(*restart)
    run.flush(restart[0])


def restart_handler(name: str, error_log: str) -> tuple[str, str]:
    """Restart the server, unless another option file read after the drop-in still overrides its log_error
    (then the server would keep logging elsewhere): that stops the run, naming the value found."""
    expected = shlex.quote(error_log)
    return (f"restart {name}", (
        f"v=$({{ {EFFECTIVE_OPTIONS}; }} | sed -n 's/^--log[_-]error=//p' | tail -n 1)\n"
        f"if [ -n \"$v\" ] && [ \"$v\" != {expected} ]; then\n"
        f"  echo \"the server's effective log_error is '$v', not '\"{expected}\"': an option file read after the "
        "drop-in sets it (see my_print_defaults mysqld); not restarted\"; exit 3\n"
        "fi\n"
        f"svc {shlex.quote(name)} restart 2>&1\n"))


def user_step(run: HostRun, settings: MysqlSettings) -> None:
    """Create or repair the datadog user; hand its password (reused from conf.yaml when there is one) to the
    steps after it."""
    with run.step(f"user {settings.username}@localhost and grants") as step:
        conf = run.file(CONF_YAML)
        reads = user_reads(settings)
        version, grants, max_connections = run.read_all(reads)
        password = (password_from_conf(conf.content) if conf.exists else None) or secrets.token_urlsafe(24)
        run.handed[PASSWORD] = password
        if not version.ok:
            if run.dry_run:
                step.changed("would create it (server not installed yet)")
                return
            raise StepFailed(f"cannot query the server as root: {version.output.strip()[:200]}")
        version = version.output.strip()
        mariadb, _ = server_kind(version)
        # The login, and the integration's queries the last step runs, in one round trip.
        login = Read(as_user(settings, password, "SELECT 1"), succeeded)
        queries = [read for _, read in integration_queries(settings, password, version).values()]
        if grants.ok and grants_complete(grants.output, version, max_connections.output):
            if run.read_all([login, *queries])[0]:
                run.handed[USER_READY] = True
                return
        step.changed(f"{'would set' if run.dry_run else 'set'} password and grants ({'MariaDB' if mariadb else 'MySQL'} {version})")
        if not run.dry_run:
            run.queue(f"grants for {settings.username}", f"mysql {heredoc(grant_sql(settings, password, version))}",
                      changes=[reads.grants, reads.max_connections, login, *queries])


PASSWORD = "mysql password"  # handed by user_step to the steps after it
USER_READY = "mysql user ready"  # the user logs in and has its grants


def acl_step(run: HostRun, settings: MysqlSettings) -> None:
    with run.step(f"dd-agent read access to {settings.log_dir} (ACL + default ACL)") as step:
        q = shlex.quote(settings.log_dir)
        reads = log_dir_reads(settings)
        agent, acl, files = run.read_all(reads)
        with_acl, total = (files.output.split() + ["0", "0"])[:2]
        if acl.ok and "user:dd-agent:r-x" in acl.output and "default:user:dd-agent:r-x" in acl.output \
                and with_acl == total:
            return
        step.changed(f"{'would set' if run.dry_run else 'set'} ACLs for dd-agent")
        if run.dry_run:
            return
        if not agent:
            raise StepFailed("user dd-agent does not exist: run install-agent first")
        run.queue(f"ACLs on {settings.log_dir}", f"set -e\nsetfacl -m u:dd-agent:rx,d:u:dd-agent:rx {q}\n"
                  f"find {q} -maxdepth 1 -type f -exec setfacl -m u:dd-agent:r {{}} +\n", changes=reads)


def logrotate_step(run: HostRun) -> None:
    """Leave log rotation to the server package: remove the duplicate rotation block an earlier run wrote."""
    with run.step("log rotation left to the server package (new files inherit the default ACL)") as step:
        old = run.file(OLD_LOGROTATE)
        if old.exists and OURS_MARKER not in old.content:
            step.note(f"{OLD_LOGROTATE} is not ours: left as it is (check `logrotate -d /etc/logrotate.conf`)")
        remove_if_ours(run, step, old, "duplicated the package's rotation")


def remove_if_ours(run: HostRun, step, old: FileState, why: str) -> bool:
    """Remove a file an earlier version of the runbook wrote (it carries our marker); True if it was there."""
    if not old.exists or OURS_MARKER not in old.content:
        return False
    run.remove_file(step, old.path, why)
    return True


def conf_step(run: HostRun, settings: MysqlSettings) -> None:
    with run.step("integration config " + CONF_YAML) as step:
        current = run.file(CONF_YAML)
        if run.put_file(step, current, render_conf(settings, run.handed[PASSWORD]), "dd-agent", "dd-agent", "0640"):
            run.notify(*RESTART_AGENT)


def queries_step(run: HostRun, settings: MysqlSettings) -> None:
    """Run the integration's queries as its user: proves the grants and performance_schema work."""
    with run.step(f"integration queries as {settings.username} over TCP {settings.host}:{settings.port}") as step:
        if run.dry_run and USER_READY not in run.handed:
            step.note("skipped in a dry run: the user and its grants are not set up yet")
            return
        version = run.read(SERVER_VERSION).output.strip()
        queries = integration_queries(settings, run.handed[PASSWORD], version)
        answers = dict(zip(queries, run.read_all(read for _, read in queries.values())))
        failed = [f"{sql}: {(answers[n].output.strip().splitlines() or ['?'])[-1][:200]}"
                  for n, (sql, _) in queries.items() if not answers[n].ok]
        if failed:
            raise StepFailed("; ".join(failed))
        step.note(f"{len(queries)} queries ok ({queries['replication'][0]})")


def existing_conf_step(run: HostRun) -> None:
    """Read the integration's conf.yaml first: a malformed one stops the run before the server is touched."""
    with run.step(f"{CONF_YAML} on the host is well-formed (read before any change)") as step:
        conf = run.file(CONF_YAML)
        if conf.exists:
            password_from_conf(conf.content)
        else:
            step.note("not there yet")


def mysql_plan(settings: MysqlSettings):
    """The steps of setup-mysql; the integration's config is rendered once first, so a bad template fails now."""
    render_conf(settings, "validation-only-password")
    def on(step):
        return partial(step, settings=settings)

    return host_plan([on(server_step), on(dropin_step), on(user_step), on(conf_step),
                      partial(merge_datadog_yaml, name="datadog.yaml: logs_enabled", updates={"logs_enabled": True}),
                      on(acl_step), logrotate_step, on(queries_step)],
                     checks=[existing_conf_step], reads=mysql_reads(settings), packages=[server_group(settings)])


@task(iterable=["host"], help=HOST_HELP)
def setup_mysql(c, host=None, dry_run=False):
    """Install the database, create the datadog user and configure the MySQL integration with logs."""
    hosts.run_on_hosts(c, host, dry_run, "setup-mysql", mysql_plan(schema.of(c).mysql))
