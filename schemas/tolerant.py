"""Reading a newer minor version: fields the current models do not declare are set aside, kept, not fatal.

The models stay ``extra="forbid"`` (writers are strict); a reader first moves every undeclared field, at any
depth, out of the parsed JSON into ``unknown`` ({dotted path: value}) and validates the rest.
"""
from __future__ import annotations

import functools
import types
import typing
from typing import Any

from pydantic import BaseModel


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _holds_model(annotation: Any) -> bool:
    """Whether a model can occur anywhere in ``annotation`` (else a value of it has no undeclared fields)."""
    try:
        return _holds_model_cached(annotation)
    except TypeError:  # an unhashable annotation: walk it every time
        return _holds_model_uncached(annotation)


def _holds_model_uncached(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(arg) for arg in typing.get_args(annotation))


_holds_model_cached = functools.lru_cache(maxsize=512)(_holds_model_uncached)


def _strip(annotation: Any, value: Any, path: str, unknown: dict[str, Any]) -> Any:
    if not _holds_model(annotation):  # plain data (per-frame lists, scores): nothing to set aside
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        return _strip(args[0], value, path, unknown)
    models = _models_in(annotation)
    if models and isinstance(value, dict):
        return strip_unknown(models[0], value, path, unknown)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _strip(inner[0], value, path, unknown) if len(inner) == 1 else value
    if origin is list and args and isinstance(value, list):
        return [_strip(args[0], v, f"{path}[{i}]", unknown) for i, v in enumerate(value)]
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: _strip(args[1], v, f"{path}.{k}", unknown) for k, v in value.items()}
    return value


def strip_unknown(model: type[BaseModel], data: dict[str, Any], path: str = "",
                  unknown: dict[str, Any] | None = None) -> dict[str, Any]:
    """``data`` without the fields ``model`` (recursively) does not declare; those go to ``unknown``."""
    unknown = {} if unknown is None else unknown
    if model.model_config.get("extra") != "forbid":  # an open model keeps its extras itself
        return data
    fields = model.model_fields
    names = {info.alias or name: name for name, info in fields.items()}
    out: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else key
        if key in names:
            out[key] = _strip(fields[names[key]].annotation, value, where, unknown)
        else:
            unknown[where] = value
    return out


def read_model(model: type[BaseModel], data: Any) -> tuple[BaseModel, dict[str, Any]]:
    """Validate ``data`` as ``model`` after setting its undeclared fields aside; returns (instance, unknown)."""
    unknown: dict[str, Any] = {}
    if isinstance(data, dict):
        data = strip_unknown(model, data, "", unknown)
    return model.model_validate(data), unknown
