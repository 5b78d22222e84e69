"""What the previews read: the payloads (placeholders filled with sample values) and the configuration."""

from __future__ import annotations

import hashlib
from pathlib import Path

from recipes import ROOT
from recipes.api import payloads
from recipes.errors import Refused
from recipes.lazy import lazy

schema = lazy("recipes.settings")

PAYLOADS = ROOT / "payloads"


class PreviewInputError(Refused):
    """A payload or input file the previews need is missing or malformed (the message names file and field)."""

    def __init__(self, reason: str):
        super().__init__(f"previews: {reason}")


def sample_values(config, **extra) -> dict[str, object]:
    """Values for the payloads' ``${NAME}`` placeholders: configuration, a sample monitor id, then ``extra``."""
    checked = schema.of(config)
    values = payloads.config_values(checked)
    values["MONITOR_ID"] = checked.previews.sample.monitor_id
    values.update(extra)
    return values


def load_payload(key: str, values: dict[str, object], at_least_once: bool = False) -> dict:
    """The body ``./run apply`` would send for payload ``key``, via the payloads loader (recipes/api/payloads.py)."""
    try:
        return payloads.render(payloads.spec(key), values, at_least_once=at_least_once)
    except payloads.PayloadError as error:
        raise PreviewInputError(f"payloads/{error}") from None
    except StopIteration:
        raise PreviewInputError(f"no payload named {key!r} in recipes/api/payloads.py SPECS") from None


def payload_files(key: str) -> list[Path]:
    """The files behind payload ``key`` (with its overlay), for the pictures' input hashes."""
    spec = payloads.spec(key)
    return [PAYLOADS / name for name in (spec.file, spec.overlay) if name]


def require(mapping: dict, field: str, where: str):
    """``mapping[field]`` or an error naming the file and the field."""
    if not isinstance(mapping, dict) or field not in mapping:
        raise PreviewInputError(f"{where}: missing field {field!r}")
    return mapping[field]


def load_monitor(values: dict[str, object], at_least_once: bool = False) -> dict:
    """The monitor body as ``./run monitor`` would send it (optionally with the at-least-once overlay)."""
    monitor = load_payload("monitor", values, at_least_once)
    for field in ("name", "query", "message", "options"):
        require(monitor, field, "payloads/monitor.json")
    require(monitor["options"], "thresholds", "payloads/monitor.json: options")
    return monitor


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sample_ctx(settings) -> dict[str, object]:
    """The sample alert the message pictures render: the sample's id, IP and values on the configured host."""
    return {**settings.previews.sample.model_dump(), "host_name": settings.api.host}
