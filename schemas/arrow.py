"""Arrow schemas generated from the pydantic models: the models are the only place a field is declared."""
from __future__ import annotations

import json
import types
import typing
from enum import Enum
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

_SCALARS: dict[Any, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def _is_free_form(annotation: Any) -> bool:
    """``Any`` and ``dict[str, Any]`` hold free-form facts: Arrow stores them as JSON text."""
    args = typing.get_args(annotation)
    return annotation is Any or (typing.get_origin(annotation) is dict and args[1] is Any)


def _arrow_type(annotation: Any) -> tuple[pa.DataType, bool]:
    """Arrow type of an annotation, and whether it is nullable."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if _is_free_form(annotation):
        return pa.string(), False
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {annotation}")
        return _arrow_type(inner[0])[0], True
    if origin is typing.Literal:
        return pa.string(), False
    if origin in (list, tuple):
        return pa.list_(_arrow_type(args[0])[0]), False
    if origin is dict:
        return pa.map_(_arrow_type(args[0])[0], _arrow_type(args[1])[0]), False
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return pa.string(), False
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct(arrow_fields(annotation)), False
    if annotation in _SCALARS:
        return _SCALARS[annotation], False
    raise TypeError(f"no Arrow type for {annotation!r}")


def arrow_fields(model: type[BaseModel]) -> list[pa.Field]:
    fields = []
    for name, info in model.model_fields.items():
        dtype, nullable = _arrow_type(info.annotation)
        fields.append(pa.field(name, dtype, nullable=nullable or not info.is_required()))
    return fields


def arrow_schema(model: type[BaseModel]) -> pa.Schema:
    return pa.schema(arrow_fields(model))


def _arrow_value(value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        origin = typing.get_origin(annotation)
    if _is_free_form(annotation):
        return json.dumps(value, sort_keys=True)
    if origin is dict:
        return list(value.items())
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {name: _arrow_value(value.get(info.alias or name), info.annotation)  # unset fields of open models
                for name, info in annotation.model_fields.items()}
    return value


def rows_to_table(model: type[BaseModel], rows: list[BaseModel]) -> pa.Table:
    """Rows as an Arrow table with the generated schema (free-form fields as JSON text)."""
    schema = arrow_schema(model)
    columns: dict[str, list[Any]] = {f.name: [] for f in schema}
    for row in rows:
        data = row.model_dump(mode="json")
        for name, info in model.model_fields.items():
            columns[name].append(_arrow_value(data[name], info.annotation))
    return pa.Table.from_pydict(columns, schema=schema)
