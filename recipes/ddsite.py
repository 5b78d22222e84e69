"""The Datadog site: one setting, DD_SITE, for the Agent's datadog.yaml and the API client alike."""

from __future__ import annotations

import os

from recipes.errors import Refused

# Datadog's sites, as datadog-api-client lists them (DataDog/datadog-api-client-python,
# src/datadog_api_client/configuration.py, get_host_settings: the `site` variable's enum_values), the same
# list as the endpoint tables of Datadog's API reference (https://docs.datadoghq.com/api/latest/). The list
# grows: compare it with the client's when you upgrade it.
SITES = ("datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu", "ap1.datadoghq.com",
         "ap2.datadoghq.com", "uk1.datadoghq.com", "ddog-gov.com", "us2.ddog-gov.com")
DEFAULT_SITE = SITES[0]


class UnknownSite(Refused):
    """DD_SITE names no Datadog site."""


def datadog_site() -> str:
    """DD_SITE from the environment (datadoghq.com when unset); an unknown value is refused by name."""
    site = os.environ.get("DD_SITE", "").strip().lower() or DEFAULT_SITE
    if site not in SITES:
        raise UnknownSite(f"DD_SITE={site!r} is not a Datadog site; use one of {', '.join(SITES)}")
    return site
