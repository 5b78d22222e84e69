"""Shared pytest setup. Each layer registers its fixtures module in ``pytest_plugins``."""

pytest_plugins: list[str] = [
    "tests.fakedd.fixtures",
    "tests.testhost_fixtures",
    "tests.previews_fixtures",
]
