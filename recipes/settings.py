"""The settings schema: one typed model per section of ``recipes/defaults.py``.

Every task checks the merged invoke config (defaults, ``invoke.yaml``, ``-f FILE``, ``INVOKE_*`` variables)
against it before any connection, request or file write (see ``recipes/boundary.py``). The values stay in
``recipes/defaults.py``; this module says only what each one may be. Values that reach a shell or a file on
a host must match their format; every string is refused while it still holds a ``<placeholder>``.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from datetime import date, time
from typing import Annotated, Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from recipes.errors import Refused
from recipes.formats import PLACEHOLDER_RE, SITE_ENGINES, TAG_RE


def _matching(pattern: str, what: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    check.what = what
    return AfterValidator(check)


def _described(what: str, check):
    check.what = what
    return check


def _ip(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (such as 127.0.0.1 or 0.0.0.0)") from None
    return value


def _url(value: str) -> str:
    parts = urlparse(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"[\s'\"`$;|&<>\\]", value):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


def _optional(check):
    return lambda value: value if value == "" else check(value)


def _existing(kind: str):
    test = os.path.isfile if kind == "file" else os.path.isdir

    def check(value: str) -> str:
        if value and not test(os.path.expanduser(value)):
            raise ValueError(f"{value!r}: no such {kind}")
        return value

    return AfterValidator(_described(f"empty or an existing {kind}", check))


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (such as Europe/Paris)") from None
    return value


def _wheelhouse(value: str) -> str:
    folder = os.path.expanduser(value)
    if value and not os.path.isdir(folder):
        raise ValueError(f"{value!r}: no such folder")
    if value and not any(name.endswith(".whl") for name in os.listdir(folder)):
        raise ValueError(f"{value!r}: no *.whl files there")
    return value


def _monday(value: str) -> str:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date like 2026-06-01") from None
    if day.weekday() != 0:
        raise ValueError(f"{value} is a {day:%A}, not a Monday")
    return value


Port = Annotated[int, Field(ge=1, le=65535)]
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(gt=0, le=3600)]
Count = Annotated[int, Field(ge=1)]
WindowMinutes = Annotated[int, Field(ge=1, le=1440)]  # a look back over the account, up to a day
WaitSeconds = Annotated[int, Field(ge=0, le=86400)]
IpAddress = Annotated[str, AfterValidator(_described("an IP address", _ip))]
Url = Annotated[str, AfterValidator(_described("an http(s) URL", _url))]
OptionalUrl = Annotated[str, AfterValidator(_described("empty or an http(s) URL", _optional(_url)))]
Hostname = Annotated[str, _matching(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", "a host name")]
UnixName = Annotated[str, _matching(r"[a-z_][a-z0-9_-]{0,31}", "a user name (lowercase letters, digits, _ and -)")]
UnitName = Annotated[str, _matching(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", "a service name")]
OptionalUnitName = Annotated[str, _matching(r"|[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}", "a service name or empty")]
Package = Annotated[str, _matching(r"[a-z0-9][a-z0-9+.-]+", "a Debian package name")]
AbsolutePath = Annotated[str, _matching(r"/[A-Za-z0-9._/+-]*", "an absolute path (letters, digits, . _ - + /)")]
RelativeFolder = Annotated[str, _matching(r"[A-Za-z0-9._/-]+", "a path (letters, digits, . _ - /)")]
ExistingFile = Annotated[str, _existing("file")]
ExistingFolder = Annotated[str, _existing("folder")]
Wheelhouse = Annotated[str, AfterValidator(_described("empty or a folder of *.whl files", _wheelhouse))]
Tag = Annotated[str, _matching(TAG_RE.pattern.strip("^$"), "a key:value tag")]
TagValue = Annotated[str, _matching(r"[a-z0-9][a-z0-9_.:/-]*", "a tag value (lowercase letters, digits, _ . : / -)")]
ClockTime = Annotated[str, _matching(r"(?:[01]\d|2[0-3]):[0-5]\d", "a time like 09:00")]
SiteEngine = Annotated[str, _matching("|".join(SITE_ENGINES), " or ".join(SITE_ENGINES))]
TEST_HOST_FLAVOURS = ("bookworm", "systemd", "mysql")  # tests/testhost/flavours.py (a test checks they agree)
TestHostFlavour = Annotated[str, _matching("|".join(TEST_HOST_FLAVOURS), "one of " + ", ".join(TEST_HOST_FLAVOURS))]
HostSpec = Annotated[str, _matching(r"(?:[A-Za-z0-9_.-]+@)?[A-Za-z0-9.:\[\]-]+", "user@addr[:port]")]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SiteSettings(Section):
    addr: IpAddress
    port: Port
    build_dir: RelativeFolder
    engine: SiteEngine
    url: OptionalUrl

    @property
    def pages(self) -> str:
        """Where a reader opens the site's pages, ending in /: `url` when it is published, else `./run serve`'s address."""
        return (self.url or f"http://{self.addr}:{self.port}").rstrip("/") + "/"


class VagrantSettings(Section):
    machine: Annotated[str, _matching(r"[A-Za-z0-9_.-]+", "a Vagrant machine name")]
    ssh_config: ExistingFile


class SshSettings(Section):
    trust_unknown_hosts: bool
    connect_timeout: Annotated[float, Field(gt=0, le=300)]
    lock_wait: Annotated[float, Field(gt=0, le=86400)]
    user: UnixName
    key_file: ExistingFile
    known_hosts: Annotated[str, Field(min_length=1)]


class AgentSettings(Section):
    tags: Annotated[list[Tag], Field(min_length=1)]
    repo_url: Url
    repo_dist: Annotated[str, _matching(r"[a-z0-9][a-z0-9._-]*", "an apt suite name")]
    repo_components: Annotated[str, _matching(r"[a-z0-9][a-z0-9._ -]*", "apt component names")]
    key_urls: Annotated[list[Url], Field(min_length=1)]
    packages: Annotated[list[Package], Field(min_length=1)]


class MysqlSettings(Section):
    host: Hostname
    port: Port
    username: Annotated[str, _matching(r"[A-Za-z0-9_]{1,32}", "a MySQL user name (letters, digits, _)")]
    service: TagValue
    service_name: OptionalUnitName
    server_package: Package
    error_log: AbsolutePath
    slow_log: AbsolutePath

    @property
    def log_dir(self) -> str:
        """The folder of the server's logs (the Agent's user needs to read it)."""
        return self.error_log.rsplit("/", 1)[0]


class CheckSettings(Section):
    name: Annotated[str, _matching(r"[a-z_][a-z0-9_]*", "a check name (lowercase letters, digits, _)")]
    min_collection_interval: Annotated[int, Field(ge=1, le=86400)]


class ApiSettings(Section):
    host: Hostname
    notify: Annotated[str, _matching(r"@\S+(?: @\S+)*", "one or more @handles separated by spaces")]
    timezone: Annotated[str, AfterValidator(_described("an IANA time zone", _timezone))]
    at_least_once: bool
    base_url: OptionalUrl
    payload_dir: ExistingFolder
    timeout: Seconds
    max_retries: Annotated[int, Field(ge=0, le=10)]
    backoff: Annotated[float, Field(ge=0, le=60)]
    backoff_max: Annotated[float, Field(ge=0, le=600)]
    verify_minutes: WindowMinutes
    poll_interval: Seconds
    snapshot_wait: Seconds
    snapshot_poll: Seconds
    lock_wait: WaitSeconds


class ApmSettings(Section):
    service: TagValue
    env: TagValue
    version: Annotated[str, _matching(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", "a version such as 1.0.0")]
    bind: IpAddress
    port: Port
    vm_bind: IpAddress
    app_dir: AbsolutePath
    user: UnixName
    unit: UnitName
    pip_proxy: Annotated[str, AfterValidator(_described('"auto", empty or an http(s) URL',
                                                        lambda v: v if v in ("", "auto") else _url(v)))]
    wheelhouse: Wheelhouse

    @property
    def home(self) -> str:
        """The app's folder on the VM, without a trailing slash."""
        return self.app_dir.rstrip("/") or "/"

    @property
    def venv(self) -> str:
        return f"{self.home}/venv"

    @property
    def remote_wheels(self) -> str:
        """Where the local wheelhouse is uploaded on the VM."""
        return f"{self.home}/wheelhouse"

    @property
    def local_wheels(self) -> str:
        """The local wheelhouse with ~ expanded ("" when the app installs from PyPI)."""
        return os.path.expanduser(self.wheelhouse) if self.wheelhouse else ""


class SampleValues(Section):
    alert: float
    warning: float
    recovery: float


class SampleSettings(Section):
    monitor_id: Count
    host_ip: IpAddress
    values: SampleValues


class SimulationSettings(Section):
    seed: int
    duration_s: Count
    interval_s: Count
    window_s: Count
    every_s: Count


class DashboardPreviewSettings(Section):
    now: ClockTime
    rollup_windows_h: Annotated[list[Count], Field(min_length=1)]
    anomaly_seed: int
    anomaly_minutes: Count
    anomaly_lag: Annotated[int, Field(ge=0)]


class BusinessHours(Section):
    opens: ClockTime
    closes: ClockTime
    workdays: Annotated[str, _matching(r"(?:MO|TU|WE|TH|FR|SA|SU)(?:,(?:MO|TU|WE|TH|FR|SA|SU))*", "days like MO,TU,WE")]

    @property
    def opens_at(self) -> time:
        return time.fromisoformat(self.opens)

    @property
    def closes_at(self) -> time:
        return time.fromisoformat(self.closes)

    @property
    def workday_numbers(self) -> set[int]:
        """The workdays as weekday numbers (Monday is 0)."""
        return {WEEKDAY_CODES.index(day) for day in self.workdays.split(",")}


class CheckRunSettings(Section):
    runs: Annotated[int, Field(ge=1, le=100)]
    seed: int


class PreviewSettings(Section):
    out_dir: RelativeFolder
    captures_dir: RelativeFolder
    apm_summary: RelativeFolder
    sample: SampleSettings
    simulation: SimulationSettings
    dashboard: DashboardPreviewSettings
    business_hours: BusinessHours
    calendar_week: Annotated[str, AfterValidator(_described("a Monday, like 2026-06-01", _monday))]
    dst_week: Annotated[str, AfterValidator(_described("a Monday, like 2026-06-01", _monday))]
    check_run: CheckRunSettings


class Settings(Section):
    """The runbook's own sections; invoke's (run, sudo, tasks, ...) are invoke's to check."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)
    site: SiteSettings
    hosts: list[HostSpec]
    vagrant: VagrantSettings
    ssh: SshSettings
    agent: AgentSettings
    mysql: MysqlSettings
    check: CheckSettings
    api: ApiSettings
    apm: ApmSettings
    previews: PreviewSettings


WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # RFC 5545 BYDAY, Monday first

# Settings that moved, with what to use instead.
MOVED = {"agent.site": "the Datadog site is DD_SITE in the environment, for the Agent and the API alike"}


class SettingsError(Refused):
    """One or more settings are refused; ``problems`` holds (dotted key, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__(*(f"{key}: {message}" for key, message in problems))
        self.problems = problems


# --- where a value came from, and values still at the shipped example -------------------------------------------
LAYERS = (  # invoke's config layers, highest precedence first, and how to name them to the user
    ("_overrides", lambda c, path: "command line"),
    ("_runtime", lambda c, path: f"-f {c._runtime_path}"),
    ("_env", lambda c, path: "environment INVOKE_" + "_".join(path).upper()),
    ("_project", lambda c, path: c._project_path or "invoke.yaml"),
    ("_user", lambda c, path: c._user_path or "~/.invoke.yaml"),
    ("_system", lambda c, path: c._system_path or "/etc/invoke.yaml"),
    ("_collection", lambda c, path: "recipes/defaults.py"),
)


def where(config, path: tuple[str, ...]) -> str:
    """The layer that set a dotted key: the file, the environment or the command line."""
    for layer, name in LAYERS:
        data = getattr(config, layer, None) or {}
        for part in path:
            if isinstance(data, list):
                break  # the layer set the whole list
            if not isinstance(data, dict) or part not in data:
                break
            data = data[part]
        else:
            return name(config, path)
        if isinstance(data, list):
            return name(config, path)
    return "config"


# Settings whose shipped value is an example that would go wrong without a word if it were sent (an e-mail to
# nobody you know, downtimes in another zone's nights): dotted key -> what to set instead. The handle is
# refused while it is the example; the zone while nobody set it (the defaults layer gave it), since the
# example's zone may be the user's own.
EXAMPLES = {
    "api.notify": "your own @handle, such as '@you@yourcompany.com'",
    "api.timezone": "your IANA time zone, even when it is the example's Europe/Paris",
}


def examples_left(c) -> dict[str, str]:
    """The settings of ``EXAMPLES`` still at their shipped example: dotted key -> the refusal, naming what to set."""
    from recipes.defaults import CONFIG

    config = getattr(c, "config", c)
    settings = of(config)
    left = {}
    for dotted, instead in EXAMPLES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(settings, section), key)
        if value != CONFIG[section][key]:
            continue
        if dotted == "api.timezone" and where(config, (section, key)) != "recipes/defaults.py":
            continue
        left[dotted] = (f"{dotted}: {value!r} is the shipped example; set {instead} in invoke.yaml "
                        f"or INVOKE_{dotted.replace('.', '_').upper()}")
    return left


def of(c) -> Settings:
    """The checked settings of a task's context (or config): what every task reads its settings from.

    The boundary checks the merged configuration once before each task and keeps the result on the config;
    a config built elsewhere (a test's) is checked here on first use.
    """
    config = getattr(c, "config", c)
    kept = getattr(config, KEPT, None)
    if kept is None:
        kept = check(plain(config._config), set(type(config).global_defaults()))
        keep(config, kept)
    return kept


KEPT = "_runbook_settings"


def keep(config, settings: Settings) -> None:
    """Keep the checked settings on an invoke config (an attribute, not a config key)."""
    object.__setattr__(config, KEPT, settings)


def plain(value):
    """An invoke config node (DataProxy) as plain dicts and lists."""
    if hasattr(value, "items"):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def check(data: dict, invoke_sections: set[str]) -> Settings:
    """Validate the merged config as plain data; raise SettingsError naming every refused key."""
    problems = placeholder_problems(data) + unknown_sections(data, invoke_sections)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        placeholders = {key.replace("[", ".").replace("]", "") for key, _ in problems}
        found = [problem(data, each) for each in error.errors()]
        problems += [p for p in found if p[0] not in placeholders]  # a placeholder says enough about its key
        settings = None
    if problems:
        raise SettingsError(sorted(dict.fromkeys(problems)))
    return settings


def unknown_sections(data: dict, invoke_sections: set[str]) -> list[tuple[str, str]]:
    known = set(Settings.model_fields) | invoke_sections
    return [(key, "unknown section" + nearest(key, known)) for key in data if key not in known]


def placeholder_problems(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in placeholder_problems(item, f"{path}.{key}".lstrip("."))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in placeholder_problems(item, f"{path}[{i}]")]
    if isinstance(value, str) and PLACEHOLDER_RE.search(value):
        return [(path, f"{value!r} is a placeholder; set a real value")]
    return []


def problem(data: dict, error: dict) -> tuple[str, str]:
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        if key in MOVED:
            return key, f"not a setting: {MOVED[key]}"
        parent = Settings
        for part in loc[:-1]:
            parent = _field_model(parent, part)
        fields = set(parent.model_fields) if parent else set()
        return key, "unknown setting" + nearest(loc[-1], fields)
    if error["type"] == "missing":
        return key, "missing (it has a default in recipes/defaults.py: was it set to null?)"
    message = error["msg"].removeprefix("Value error, ")
    if "input" in error and error["type"] not in ("value_error",):
        message += f", not {error['input']!r}"
    return key, message


def _field_model(model, name: str):
    if model is None or name not in model.model_fields:
        return None
    annotation = model.model_fields[name].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def nearest(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def option(name: str, value, annotation):
    """A task option checked with a setting's type; a refusal names the option."""
    try:
        return TypeAdapter(annotation, config=ConfigDict(strict=True)).validate_python(value)
    except ValidationError as error:
        first = error.errors()[0]
        raise SettingsError([(f"option {name}", problem({}, {**first, "loc": ()})[1])]) from None




# --- the Configuration page ----------------------------------------------------------------------------------
BOUNDS = {"ge": ">= {}", "gt": "> {}", "le": "<= {}", "lt": "< {}", "min_length": "at least {} item(s)"}


def describe(annotation, metadata=()) -> str:
    """What a setting may be, in words, from its annotation and constraints."""
    metadata = list(metadata) + list(getattr(annotation, "__metadata__", ()))
    base = getattr(annotation, "__origin__", annotation)
    if hasattr(annotation, "__metadata__"):
        base = annotation.__origin__
    words = []
    if base is list or getattr(base, "__origin__", None) is list:
        (item,) = getattr(annotation, "__args__", None) or base.__args__
        words.append(f"list of {describe(item)}")
    else:
        what = [getattr(m.func, "what", "") for m in metadata if isinstance(m, AfterValidator)]
        words.append(next((w for w in what if w), {bool: "true or false", int: "integer", float: "number",
                                                   str: "text"}.get(base, getattr(base, "__name__", str(base)))))
    for m in metadata:
        for name, template in BOUNDS.items():
            if getattr(m, name, None) is not None:
                words.append("not empty" if base is str and name == "min_length" else template.format(getattr(m, name)))
    return ", ".join(words)


def rows(model=None, prefix: str = ""):
    """(dotted key, what it may be) for every setting, in the schema's order."""
    for name, info in (model or Settings).model_fields.items():
        key = f"{prefix}{name}"
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from rows(info.annotation, key + ".")
        else:
            yield key, describe(info.annotation, info.metadata)
