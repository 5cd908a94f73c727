"""Parsing members of shards nobody vouched for: bounded JSON, .npy headers checked before any data is read.

Every function here takes bytes (already capped in size by the shard reader) and raises ``UntrustedError`` with a
short reason; nothing is executed (no pickle), followed or recursed into without a bound.

JSON is scanned before the parser sees it (``JsonScan``), in fixed-size chunks with numpy: every pass over a chunk
is a vectorised O(chunk) operation and the state carried between chunks is a handful of integers, so the scan is
linear in the bytes and never backtracks. It enforces the depth, string, number and value-count limits; the C parser
then runs only on documents whose nesting, tokens and object count are bounded, which makes it linear too (numbers
of at most ``MAX_JSON_NUMBER`` characters convert in constant time; no regular expression is involved). On the valid
prefix of a document (all the parser ever reads) the scan's idea of where strings are is exactly the parser's: a
quote ends a string when an even number of backslashes precedes it, and outside strings a backslash is a syntax
error at which the parser stops.
"""
from __future__ import annotations

import ast
import json
import math
import re
from typing import Any

import numpy as np

from schemas.reader_checks import JSON_DUPLICATE_KEY

MAX_JSON_DEPTH = 64  # the deepest real member (meta.json) nests 5 levels
MAX_JSON_STRING = 64 << 10  # bytes of one string, quotes included: the longest real one is a caption of ~300
MAX_JSON_NUMBER = 64  # characters of one number
MAX_JSON_VALUES = 100_000  # containers + separators of one document: a real graph.json has about 300
MAX_NPY_HEADER = 4096  # numpy writes 128 bytes for these arrays
_SCAN_CHUNK = 256 << 10
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # fixed length: a linear search
_CLASS = np.zeros(256, dtype=np.uint8)  # byte -> 1 opener, 2 closer, 3 separator, 4 number character
_CLASS[list(b"[{")], _CLASS[list(b"]}")], _CLASS[list(b",:")], _CLASS[list(b"0123456789+-.eE")] = 1, 2, 3, 4


class UntrustedError(ValueError):
    """A member that must not be parsed further; the message says why."""

    check: str | None = None  # a reader check of its own (schemas.reader_checks), else the member's check


class DuplicateKeyError(UntrustedError):
    check = JSON_DUPLICATE_KEY


def _runs(mask: np.ndarray, carry: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(ends, lengths) of the runs of True in ``mask`` (ends exclusive; ``carry`` continues a run from before), and
    the length of the run the chunk ends in."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
    starts, ends = edges[0::2], edges[1::2]
    lengths = ends - starts
    if lengths.size and starts[0] == 0:
        lengths[0] += carry
    tail = int(lengths[-1]) if lengths.size and ends[-1] == mask.size else 0
    return ends, lengths, tail


class JsonScan:
    """The limits of one JSON document, checked chunk by chunk before any parser sees it (see the module doc)."""

    def __init__(self) -> None:
        self.offset = 0
        self.depth = self.max_depth = self.values = 0
        self.backslashes = 0  # the run of backslashes the last chunk ended with
        self.string_start = -1  # where the open string began, -1 outside strings
        self.number_run = 0
        self.long_string: tuple[int, int] | None = None  # (byte, length) of the first string over the limit
        self.long_number: tuple[int, int] | None = None

    def feed(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        for start in range(0, len(view), _SCAN_CHUNK):
            self._scan(np.frombuffer(view[start:start + _SCAN_CHUNK], dtype=np.uint8))

    def _scan(self, a: np.ndarray) -> None:
        quote = a == 34
        carried = self.backslashes
        ends, lengths, self.backslashes = _runs(a == 92, carried)
        quote[ends[(lengths & 1).astype(bool) & (ends < a.size)]] = False  # after an odd run of backslashes: escaped
        if carried & 1 and a[0] != 92:
            quote[0] = False
        quotes = np.flatnonzero(quote)
        in_string = self.string_start >= 0
        self._strings(quotes + self.offset)
        cls = _CLASS[a]
        if quotes.size:  # a byte is in a string when an odd number of quotes precede it
            outside = (np.bitwise_xor.accumulate(quote.view(np.uint8)) ^ in_string) == 0
            cls[~outside] = 0
        elif in_string:
            cls[:] = 0
        brackets = np.flatnonzero((cls == 1) | (cls == 2))
        if brackets.size:
            depth = self.depth + np.cumsum(np.where(cls[brackets] == 1, 1, -1), dtype=np.int64)
            self.max_depth = max(self.max_depth, int(depth.max()))
            self.depth = int(depth[-1])
        self.values += int(np.count_nonzero((cls == 1) | (cls == 3)))
        ends, lengths, self.number_run = _runs(cls == 4, self.number_run)
        if self.long_number is None and lengths.size and int(lengths.max()) > MAX_JSON_NUMBER:
            first = int(np.argmax(lengths > MAX_JSON_NUMBER))
            self.long_number = (self.offset + int(ends[first]) - int(lengths[first]), int(lengths[first]))
        self.offset += a.size

    def _strings(self, quotes: np.ndarray) -> None:
        if self.string_start >= 0:
            quotes = np.concatenate([[self.string_start], quotes])
        opens, closes = quotes[0::2], quotes[1::2]
        if closes.size and self.long_string is None:
            lengths = closes - opens[:closes.size] + 1
            if int(lengths.max()) > MAX_JSON_STRING:
                first = int(np.argmax(lengths > MAX_JSON_STRING))
                self.long_string = (int(opens[first]), int(lengths[first]))
        self.string_start = int(opens[-1]) if opens.size > closes.size else -1

    def finish(self) -> None:
        """Raise UntrustedError naming the first limit the document broke."""
        open_string = self.offset - self.string_start if self.string_start >= 0 else 0
        if self.max_depth > MAX_JSON_DEPTH:
            raise UntrustedError(f"JSON nested {self.max_depth} levels deep, more than the {MAX_JSON_DEPTH} "
                                 "allowed (not parsed)")
        if self.long_string is None and open_string > MAX_JSON_STRING:
            self.long_string = (self.string_start, open_string)
        if self.long_string is not None:
            where, length = self.long_string
            raise UntrustedError(f"JSON string of {length} bytes at byte {where}, more than the {MAX_JSON_STRING} "
                                 "allowed (not parsed)")
        if self.long_number is not None:
            raise UntrustedError(f"JSON number of more than {MAX_JSON_NUMBER} characters at byte "
                                 f"{self.long_number[0]} (not parsed)")
        if self.values > MAX_JSON_VALUES:
            raise UntrustedError(f"JSON holds {self.values} values, more than the {MAX_JSON_VALUES} allowed "
                                 "(not parsed)")


def json_depth(data: bytes) -> int:
    """Deepest nesting of arrays/objects outside strings, by the linear scan."""
    scan = JsonScan()
    scan.feed(data)
    return scan.max_depth


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # readers disagree on which duplicate wins: a way to show two contents
        seen: set[str] = set()
        duplicate = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise DuplicateKeyError(f"duplicate key {duplicate[:40]!r} in a JSON object (not parsed)")
    return result


def load_json(data: bytes) -> Any:
    """Strict UTF-8 JSON within the scan's limits; duplicate keys refused."""
    scan = JsonScan()
    scan.feed(data)
    scan.finish()
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UntrustedError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        document = json.loads(text, object_pairs_hook=_object)
    except UntrustedError:
        raise
    except (ValueError, RecursionError) as exc:
        raise UntrustedError(f"not valid JSON ({exc})") from None
    if _SURROGATE.search(data):  # a lone \ud800 escape makes a str no UTF-8 writer (or pydantic) accepts
        try:
            json.dumps(document, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise UntrustedError("a \\u escape names a lone UTF-16 surrogate (not text)") from None
    return document


def npy_header(data: bytes, total: int | None = None) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran_order, data offset) from a .npy header, read without numpy's loader.

    ``data`` may be only the first bytes of the member when ``total`` gives its full length (a streamed member).
    Refuses object (pickled) dtypes and a payload whose length disagrees with the header, before any data is read.
    """
    total = len(data) if total is None else total
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
        header = ast.literal_eval(bytes(data[start:start + length]).decode("latin1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise UntrustedError(".npy header is not a literal dict") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise UntrustedError(".npy header lacks descr/fortran_order/shape")
    shape = header["shape"]
    if (not isinstance(shape, tuple) or len(shape) > 8
            or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**31 for n in shape)):
        raise UntrustedError(f".npy shape {str(shape)[:40]} is not a tuple of sizes")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError, KeyError, IndexError, RecursionError, OverflowError):
        raise UntrustedError(f".npy dtype {str(header['descr'])[:40]!r} is not a dtype") from None
    if dtype.hasobject:
        raise UntrustedError(f"pickled object array (dtype {dtype}): not loaded, nothing executed")
    offset = start + length
    expected = math.prod(shape) * dtype.itemsize  # exact: a product that wraps around must not match
    if total - offset != expected:
        raise UntrustedError(f".npy holds {total - offset} data bytes, its header {shape} {dtype} needs "
                             f"{expected}")
    return dtype, tuple(shape), bool(header["fortran_order"]), offset


def load_npy_checked(data: bytes) -> np.ndarray:
    """A plain array (never a pickle): the header is checked first, then the bytes are viewed and copied."""
    dtype, shape, fortran, offset = npy_header(data)
    count = math.prod(shape)
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C").copy()
