"""The files a step writes, rendered whole from ``recipes/vm/templates/`` ($name fields), never left with a
<PLACEHOLDER> in them."""

from __future__ import annotations

import posixpath

from recipes.formats import PLACEHOLDER_RE
from recipes.vm.hostrun import StepFailed

TEMPLATES = posixpath.join(posixpath.dirname(__file__), "templates")


def render(template: str, source: str = "", **values) -> str:
    """Fill ``recipes/vm/templates/<template>`` ($name fields); refuse any value or line left as a <PLACEHOLDER>."""
    from string import Template

    for key, value in values.items():
        if PLACEHOLDER_RE.search(str(value)):
            raise StepFailed(f"{source or template}: {key} is a placeholder ({value!r}); set a real value")
    with open(posixpath.join(TEMPLATES, template), encoding="utf-8") as handle:
        text = Template(handle.read()).substitute(values)
    refuse_placeholders(text, template)
    return text


def refuse_placeholders(text: str, name: str) -> None:
    """Stop if a non-comment line still holds a <PLACEHOLDER> (the `port: <3306>` pitfall)."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        found = PLACEHOLDER_RE.search(line)
        if found:
            raise StepFailed(f"{name}: line {number}: unfilled placeholder {found.group(0)}; refusing to write")
