"""The Datadog API client: keys and site from the environment, retries, and errors as one clear line.

Keys come only from DD_API_KEY / DD_APP_KEY; they are handed to datadog-api-client and never put in
a message. The site comes from DD_SITE (any Datadog site); `api.base_url` overrides it (the tests
point it at the local fake server).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

import urllib3
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ForbiddenException, UnauthorizedException
from datadog_api_client.rest import RETRY_AFTER_STATUS_CODES, RETRY_ALLOWED_METHODS, ClientRetry
from datadog_api_client.v1.api.authentication_api import AuthenticationApi
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.api.events_api import EventsApi
from datadog_api_client.v1.api.hosts_api import HostsApi
from datadog_api_client.v1.api.metrics_api import MetricsApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.api.notebooks_api import NotebooksApi
from datadog_api_client.v1.api.snapshots_api import SnapshotsApi
from datadog_api_client.v2.api.downtimes_api import DowntimesApi
from datadog_api_client.v2.api.logs_api import LogsApi

from recipes.ddsite import UnknownSite, datadog_site
from recipes.errors import Failed, Refused

KEY_HELP = {
    "DD_API_KEY": "export DD_API_KEY=... (Organization Settings > API Keys)",
    "DD_APP_KEY": "export DD_APP_KEY=... (Organization Settings > Application Keys)",
}


def app_url(api) -> str:
    """Where the Datadog web app is: app.<site>, or the site itself where it has its own host name (us3, us5,
    ap1, ap2, uk1, us2.ddog-gov.com)."""
    if api.base_url:
        return api.base_url.rstrip("/")
    site = datadog_site()
    return f"https://{site}" if site.count(".") > 1 else f"https://app.{site}"


class ApiSetupError(Refused):
    """Missing or rejected key, bad site: the message is one line saying what to set."""


class ApiFailure(Failed):
    """A request failed after retries; the message names the call, never a key. `retryable` says
    whether sending it again could succeed (a 429, a 5xx, a lost answer); `wait` is the announced
    X-RateLimit-Reset of a 429, in seconds."""

    def __init__(self, message: str, status: int = 0, retryable: bool = False, wait: float | None = None):
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.wait = wait


class RunbookRetry(ClientRetry):
    """The client's retry (429 waits for X-RateLimit-Reset, 5xx backs off) for every method but POST.

    ClientRetry re-sends a POST on 429 and 500-512 (`is_retry` checks DEFAULT_ALLOWED_METHODS): a 502
    that arrives after the object was created would create it twice. Here POST is neither retried
    on a status nor on a lost answer; `post()` below re-sends it, after looking the object up."""

    DEFAULT_ALLOWED_METHODS = RETRY_ALLOWED_METHODS - {"POST"}


def keys_present() -> bool:
    return all(os.environ.get(name, "").strip() for name in KEY_HELP)


def configuration(api) -> Configuration:
    """Client configuration from the environment and the `api` settings (``settings.of(c).api``)."""
    keys = {name: os.environ.get(name, "").strip() for name in KEY_HELP}
    for name, value in keys.items():
        if not value:
            raise ApiSetupError(f"{name} is not set: {KEY_HELP[name]}")
    base_url = api.base_url.rstrip("/")
    if base_url:
        config = Configuration(host=base_url)
    else:
        try:
            site = datadog_site()
        except UnknownSite as error:
            raise ApiSetupError(str(error)) from None
        config = Configuration(server_index=2, server_variables={"site": site})  # index 2: any Datadog site
    config.api_key["apiKeyAuth"] = keys["DD_API_KEY"]
    config.api_key["appKeyAuth"] = keys["DD_APP_KEY"]
    config.request_timeout = api.timeout
    config.enable_retry, config.max_retries = True, api.max_retries
    config.retry_policy = RunbookRetry(
        total=api.max_retries,
        backoff_factor=api.backoff,
        backoff_max=api.backoff_max,
        allowed_methods=RunbookRetry.DEFAULT_ALLOWED_METHODS,
    )
    return config


class Apis:
    """The API groups the runbook uses, sharing one client: the objects it writes (the notebook among them), and the reads of
    what the account received (hosts, metrics, logs, events) that verify-account makes, and graph snapshots."""

    def __init__(self, config: Configuration):
        self.client = ApiClient(config)
        self.where = config.host
        self.retry = config.retry_policy
        self.dashboards = DashboardsApi(self.client)
        self.monitors = MonitorsApi(self.client)
        self.downtimes = DowntimesApi(self.client)
        self.notebooks = NotebooksApi(self.client)
        self.auth = AuthenticationApi(self.client)
        self.hosts = HostsApi(self.client)
        self.metrics = MetricsApi(self.client)
        self.logs = LogsApi(self.client)
        self.events = EventsApi(self.client)
        self.snapshots = SnapshotsApi(self.client)

    def close(self) -> None:
        self.client.close()


@contextmanager
def connect(api):
    """Open the client and check the API key once (GET /api/v1/validate)."""
    apis = Apis(configuration(api))
    try:
        with call("check the API key", apis.where):
            apis.auth.validate()
        yield apis
    finally:
        apis.close()


def is_timeout(err: BaseException) -> bool:
    reason = err.reason if isinstance(err, urllib3.exceptions.MaxRetryError) else err
    return isinstance(reason, urllib3.exceptions.TimeoutError)


def describe(err: urllib3.exceptions.HTTPError) -> str:
    if is_timeout(err):
        return "timed out"
    reason = err.reason if isinstance(err, urllib3.exceptions.MaxRetryError) else err
    if isinstance(reason, urllib3.exceptions.ResponseError):
        return f"failed: {reason}"  # e.g. "too many 500 error responses"
    return f"failed ({type(reason).__name__})"


@contextmanager
def call(what: str, where: str = ""):
    """Turn client errors into one clear line naming the call (never the keys)."""
    try:
        yield
    except (ForbiddenException, UnauthorizedException) as err:
        key = "DD_API_KEY" if what == "check the API key" else "DD_APP_KEY"
        hint = "check it and DD_SITE" if key == "DD_API_KEY" else "check it, its scopes, and DD_SITE"
        raise ApiSetupError(f"{key} was rejected ({err.status}) when trying to {what}{_at(where)}: {hint}; {KEY_HELP[key]}") from None
    except ApiException as err:
        message = f"{what}: HTTP {err.status} {err.reason or ''}".rstrip() + f"{_server_says(err)} (after retries)"
        raise ApiFailure(message, status=err.status, retryable=err.status in RETRY_AFTER_STATUS_CODES, wait=_reset(err)) from None
    except urllib3.exceptions.HTTPError as err:
        lost = not isinstance(err, urllib3.exceptions.MaxRetryError)  # sent, answer lost: urllib3 did not retry it
        raise ApiFailure(f"{what}: {describe(err)}{_at(where)} (after retries)", retryable=lost) from None


def post(apis: Apis, what: str, send, look_up=None):
    """Send a POST with retries that never duplicate: before each re-send, `look_up()` (when given)
    is asked whether the previous one landed after all, and its answer is returned if it did."""
    retry = apis.retry
    for attempt in range(retry.total + 1):
        try:
            with call(what, apis.where):
                return send()
        except ApiFailure as err:
            if not err.retryable or attempt == retry.total:
                raise
            time.sleep(err.wait if err.wait is not None else min(retry.backoff_max, retry.backoff_factor * 2**attempt))
            found = look_up() if look_up else None
            if found:
                return found
    raise AssertionError("unreachable")


def _reset(err: ApiException) -> float | None:
    headers = {name.lower(): value for name, value in (err.headers or {}).items()}  # a plain dict here: any case
    value = headers.get("x-ratelimit-reset") if err.status == 429 else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _at(where: str) -> str:
    return f" at {where}" if where else ""


def _server_says(err: ApiException) -> str:
    body = err.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return ""
    errors = body.get("errors") if isinstance(body, dict) else None
    return f": {'; '.join(map(str, errors))}" if errors else ""
