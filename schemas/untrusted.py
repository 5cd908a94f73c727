"""Parsing members of shards nobody vouched for: bounded JSON, .npy headers checked before any data is read.

Every function here takes bytes (already capped in size by the tar reader) and raises ``UntrustedError`` with a
short reason; nothing is executed (no pickle), followed or recursed into without a bound.
"""
from __future__ import annotations

import ast
import json
import re
from typing import Any

import numpy as np

MAX_JSON_DEPTH = 64  # the deepest real member (meta.json) nests 5 levels
MAX_NPY_HEADER = 4096  # numpy writes 128 bytes for these arrays
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_OPEN = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSE = np.frombuffer(b"]}", dtype=np.uint8)


class UntrustedError(ValueError):
    """A member that must not be parsed further; the message says why."""


def json_depth(data: bytes) -> int:
    """Deepest nesting of arrays/objects, counted without parsing (strings blanked first): O(n), no recursion."""
    blanked = np.frombuffer(_STRING.sub(b'""', data), dtype=np.uint8)
    if blanked.size == 0:
        return 0
    steps = np.isin(blanked, _OPEN).astype(np.int32) - np.isin(blanked, _CLOSE).astype(np.int32)
    return int(max(np.cumsum(steps).max(), 0))


def load_json(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Strict UTF-8 JSON whose nesting is checked before the parser (which recurses) sees it."""
    depth = json_depth(data)
    if depth > max_depth:
        raise UntrustedError(f"JSON nested {depth} levels deep, more than the {max_depth} allowed (not parsed)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UntrustedError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise UntrustedError(f"not valid JSON ({exc})") from None


def npy_header(data: bytes) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran_order, data offset) from a .npy header, read without numpy's loader.

    Refuses object (pickled) dtypes and a payload whose length disagrees with the header, before any data is read.
    """
    if data[:6] != b"\x93NUMPY" or len(data) < 10:
        raise UntrustedError("not a .npy file (bad magic)")
    major = data[6]
    if major == 1:
        length, start = int.from_bytes(data[8:10], "little"), 10
    elif major in (2, 3):
        length, start = int.from_bytes(data[8:12], "little"), 12
    else:
        raise UntrustedError(f"unknown .npy format version {major}")
    if length > MAX_NPY_HEADER or start + length > len(data):
        raise UntrustedError(f".npy header of {length} bytes is too long or truncated")
    try:
        header = ast.literal_eval(data[start:start + length].decode("latin1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise UntrustedError(".npy header is not a literal dict") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise UntrustedError(".npy header lacks descr/fortran_order/shape")
    shape = header["shape"]
    if (not isinstance(shape, tuple) or len(shape) > 8
            or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31 for n in shape)):
        raise UntrustedError(f".npy shape {str(shape)[:40]} is not a tuple of sizes")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError):
        raise UntrustedError(f".npy dtype {str(header['descr'])[:40]!r} is not a dtype") from None
    if dtype.hasobject:
        raise UntrustedError(f"pickled object array (dtype {dtype}): not loaded, nothing executed")
    offset = start + length
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - offset != expected:
        raise UntrustedError(f".npy holds {len(data) - offset} data bytes, its header {shape} {dtype} needs "
                             f"{expected}")
    return dtype, tuple(shape), bool(header["fortran_order"]), offset


def load_npy_checked(data: bytes) -> np.ndarray:
    """A plain array (never a pickle): the header is checked first, then the bytes are viewed and copied."""
    dtype, shape, fortran, offset = npy_header(data)
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C").copy()
