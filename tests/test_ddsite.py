"""DD_SITE: the runbook accepts exactly the Datadog sites that datadog-api-client lists."""

from __future__ import annotations

import pytest
from datadog_api_client import Configuration

from recipes import ddsite


def test_sites_are_the_api_clients_sites():
    """SITES is taken from datadog-api-client's server list (its `site` variable); an upgrade that adds a
    site fails here until SITES and the Configuration page follow."""
    listed = Configuration().get_host_settings()[0]["variables"]["site"]["enum_values"]
    assert set(ddsite.SITES) == set(listed)


@pytest.mark.parametrize("site", ["uk1.datadoghq.com", "us2.ddog-gov.com", "US2.DDOG-GOV.COM "])
def test_newer_sites_are_accepted(site, monkeypatch):
    monkeypatch.setenv("DD_SITE", site)
    assert ddsite.datadog_site() == site.strip().lower()


def test_an_unknown_site_is_refused_with_the_list(monkeypatch):
    monkeypatch.setenv("DD_SITE", "uk2.datadoghq.com")
    with pytest.raises(ddsite.UnknownSite, match="us2.ddog-gov.com"):
        ddsite.datadog_site()
