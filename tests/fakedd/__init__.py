"""A local, stateful FAKE of the Datadog API (a stand-in for the SaaS, which tests cannot reach)."""
