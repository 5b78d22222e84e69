"""Formats more than one concern checks: a shipped file's placeholder, a Datadog tag, the site engines.

Light (only ``re``): the settings schema, the VM steps and the site read them from here, so none of them
reaches into another's folder for a pattern.
"""

import re

# A value or a line still holding ``<something>`` was copied from an example and never filled (pitfall 2).
PLACEHOLDER_RE = re.compile(r"<[A-Za-z0-9_ .:\-]+>")

# Datadog tag rules: starts with a letter; letters, digits, _ - . / and : ; no spaces or commas; <= 200 chars.
TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]*:[A-Za-z0-9_.\-/:]+$")

# The engines that build the site from the same sources (recipes/site/engines.py).
SITE_ENGINES = ("mkdocs", "zensical")
