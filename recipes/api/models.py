"""Payloads against datadog-api-client's own models: the check of a body, and bodies to and from models.

The check deserializes through the client's model machinery: an unknown widget type, a missing required field,
a wrong type or a field no schema knows fails, with the field path.
"""

from __future__ import annotations

import copy
import inspect
import json

from datadog_api_client import Configuration
from datadog_api_client.exceptions import OpenApiException
from datadog_api_client.model_utils import ModelComposed, ModelNormal, OpenApiModel, UnparsedObject, validate_and_convert_types

MODEL_CONFIG = Configuration()  # only for model checks: no keys, no host


def to_json(model) -> dict:
    """A client model as plain JSON (datetimes as strings)."""
    return json.loads(json.dumps(model.to_dict(), default=str))


def to_model(body: dict, cls: type):
    return validate_and_convert_types(copy.deepcopy(body), (cls,), ["body"], True, True, configuration=MODEL_CONFIG)


def model_problems(body: dict, model: type) -> list[str]:
    """Deserialize through the client's own model machinery; report missing, mistyped and unknown parts."""
    missing = list(_missing_required(body, model, ""))
    if missing:
        return missing
    try:
        instance = validate_and_convert_types(copy.deepcopy(body), (model,), ["body"], True, True, configuration=MODEL_CONFIG)
    except (OpenApiException, TypeError, ValueError) as err:
        return [str(err).replace("['body']", "").strip() or type(err).__name__]
    return list(_unparsed(instance, body, "")) or list(_unknown_fields(body, model, ""))


def _join(path: str, key) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)


def _missing_required(data, cls, path):
    if not (isinstance(cls, type) and issubclass(cls, ModelNormal)) or not isinstance(data, dict):
        return
    params = inspect.signature(cls.__init__).parameters.values()
    required = [p.name for p in params if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD][1:]
    names = cls.attribute_map
    for name in required:
        if names.get(name, name) not in data:
            yield f"{_join(path, names.get(name, name))}: required field is missing"
    for name, key in names.items():
        if key in data:
            for kind in cls.openapi_types[name]:
                if isinstance(kind, list) and isinstance(data[key], list):
                    for i, item in enumerate(data[key]):
                        yield from _missing_required(item, kind[0], _join(_join(path, key), i))
                else:
                    yield from _missing_required(data[key], kind, _join(path, key))


def _unknown_fields(data, cls, path):
    """Keys the schema does not have (the client keeps them as extra properties and sends them on)."""
    cls = _schema_for(data, cls)
    if not (isinstance(cls, type) and issubclass(cls, ModelNormal)) or not isinstance(data, dict):
        return
    names = {key: name for name, key in cls.attribute_map.items()}
    for key, value in data.items():
        if key not in names:
            yield f"{_join(path, key)}: unknown field (not in the {cls.__name__} schema)"
            continue
        for kind in cls.openapi_types[names[key]]:
            if isinstance(kind, list) and isinstance(value, list):
                for i, item in enumerate(value):
                    yield from _unknown_fields(item, kind[0], _join(_join(path, key), i))
            elif isinstance(kind, type) and issubclass(kind, OpenApiModel):
                yield from _unknown_fields(value, kind, _join(path, key))


def _schema_for(data, cls):
    """A oneOf resolved to the candidate this data is: by its `type`, else by the `type` of its parts (a notebook
    cell's attributes are told apart by their definition's), else the one knowing most of its keys."""
    if not (isinstance(cls, type) and issubclass(cls, ModelComposed)) or not isinstance(data, dict):
        return cls
    candidates = [c for c in cls._composed_schemas.get("oneOf", []) if isinstance(c, type) and issubclass(c, ModelNormal)]
    typed = [c for c in candidates if data.get("type") in _allowed_types(c)] or [c for c in candidates if _parts_fit(c, data)]
    return max(typed or candidates, key=lambda c: len(set(data) & set(c.attribute_map.values())), default=cls)


def _parts_fit(cls, data: dict) -> bool:
    """Whether each typed part of data (a dict with a `type`) is of a type its field in cls allows."""
    names = {key: name for name, key in cls.attribute_map.items()}
    for key, value in data.items():
        if isinstance(value, dict) and "type" in value and key in names:
            allowed = set().union(*(_allowed_types(kind) for kind in cls.openapi_types[names[key]]))
            if allowed and value["type"] not in allowed:
                return False
    return True


def _unparsed(model, raw, path):
    """Parts the client could not match to any known schema (it marks them, and their parents, unparsed)."""
    if isinstance(model, list):
        for i, item in enumerate(model):
            yield from _unparsed(item, raw[i] if isinstance(raw, list) and i < len(raw) else None, _join(path, i))
        return
    if not isinstance(model, OpenApiModel) or not getattr(model, "_unparsed", False):
        return
    inner = []
    if isinstance(model, ModelComposed):
        for each in model._composed_instances:
            if not isinstance(each, UnparsedObject):  # an unmatched oneOf: reported below, by its schema
                inner += _unparsed(each, raw, path)
    else:
        for name, value in model._data_store.items():
            key = getattr(model, "attribute_map", {}).get(name, name)
            inner += _unparsed(value, raw.get(key) if isinstance(raw, dict) else None, _join(path, key))
    yield from inner or [_unmatched(model, raw, path)]


def _unmatched(model, raw, path) -> str:
    kind = raw.get("type") if isinstance(raw, dict) else raw
    for candidate in getattr(type(model), "_composed_schemas", {}).get("oneOf", []):
        if kind in _allowed_types(candidate):
            missing = list(_missing_required(raw, candidate, path))
            if missing:
                return "; ".join(missing)
            return f"{path}: does not match the {candidate.__name__} schema"
    return f"{path or 'body'}: not a known {type(model).__name__} (got {kind!r})"


def _allowed_types(cls) -> set:
    if not (isinstance(cls, type) and issubclass(cls, ModelNormal)) or "type" not in cls.openapi_types:
        return set()
    return {v for t in cls.openapi_types["type"] for v in getattr(t, "allowed_values", ())}
