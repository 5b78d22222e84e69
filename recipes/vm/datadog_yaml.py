"""datadog.yaml as data: host tags parsed and checked, keys merged with a round-trip YAML library.

Only the keys a recipe owns change; comments, order and every other key of the file are kept.
"""

from __future__ import annotations

import io

from typing import TYPE_CHECKING

from recipes.errors import Refused
from recipes.formats import TAG_RE
from recipes.lazy import lazy

if TYPE_CHECKING:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

ruamel_yaml = lazy("ruamel.yaml")  # its submodules are read through it: naming one would load the package



class ConfigError(Refused):
    """Bad input in a file or an option; the message names the file (or option) and the line or field.

    Refused as it is when it comes from an option or a setting; a step that reads a host's file turns it into
    its own failure."""


def parse_tags(values, source: str) -> list[str]:
    """Validate ``key:value`` tags; ``source`` names where they came from (``--tag`` or ``agent.tags``)."""
    if isinstance(values, str):
        values = [part for part in values.split(",") if part.strip()]
    tags = []
    for value in values or []:
        tag = str(value).strip()
        if len(tag) > 200 or not TAG_RE.match(tag):
            raise ConfigError(
                f"{source}: bad tag {tag!r}: expected key:value, starting with a letter, "
                "with only letters, digits and _ - . / : (no spaces or commas)"
            )
        if tag not in tags:
            tags.append(tag)
    if not tags:
        raise ConfigError(f"{source}: no tags given")
    return tags


def _yaml() -> YAML:
    yaml = ruamel_yaml.YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def load(text: str, path: str) -> CommentedMap:
    """Parse a datadog.yaml; malformed YAML -> ConfigError naming the file and line."""
    try:
        data = _yaml().load(text) if text.strip() else ruamel_yaml.comments.CommentedMap()
    except ruamel_yaml.error.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f" line {mark.line + 1}" if mark else ""
        problem = (error.problem or error.context or "malformed YAML").strip()
        raise ConfigError(f"{path}:{line}: malformed YAML ({problem}); fix the file, nothing was written") from error
    except ruamel_yaml.error.YAMLError as error:
        raise ConfigError(f"{path}: malformed YAML ({error}); fix the file, nothing was written") from error
    if data is None:
        data = ruamel_yaml.comments.CommentedMap()
    if not isinstance(data, ruamel_yaml.comments.CommentedMap):
        raise ConfigError(f"{path}: line 1: the top level must be a mapping of keys, not {type(data).__name__}")
    tags = data.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        line = data.lc.key("tags")[0] + 1
        raise ConfigError(f"{path}: line {line}: `tags:` must be a list of key:value strings; fix the file")
    return data


def merge(text: str, path: str, updates: dict) -> str:
    """Set ``updates`` in the YAML text; return the text unchanged if every value is already there."""
    data = load(text, path)
    if all(key in data and _plain(data[key]) == value for key, value in updates.items()):
        return text
    for key, value in updates.items():
        data[key] = _node(value)
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _plain(value):
    return list(value) if isinstance(value, list) else value


def _node(value):
    if isinstance(value, list):
        seq = ruamel_yaml.comments.CommentedSeq(value)
        seq.fa.set_block_style()
        return seq
    return value
