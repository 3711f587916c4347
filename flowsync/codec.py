"""FlowSync's one JSON codec. What every JSON value that enters (REST bodies, GraphQL
variables, webhook deliveries), is stored (jsonb, through asyncpg and SQLAlchemy) or
leaves (REST and GraphQL replies) goes through, so that one decision holds everywhere:

**Numbers are 64-bit integers or doubles.** A JSON number is read as orjson reads it: an
integer that fits 64 bits as that integer, any other number as the nearest double
(`123456789012345678901234567890` is `1.2345678901234568e29`); a number no double holds
(`1e400`) is refused where it enters. PostgreSQL keeps numbers exactly and writes `1e20`
back as the 21-digit integer `100000000000000000000`: `from_stored` reads it by the same
rule, so reading what is stored never fails (one that no double holds, stored before
this rule, reads as null). A Python integer beyond 64 bits that is written (a figure
computed here) is written as the nearest double.

**No string holds NUL (U+0000):** PostgreSQL's text and jsonb cannot store it. Inputs are
refused where they enter, naming the field (`nul_path`); a value that would be stored
with one (a step's output) raises `UnstorableValue` naming where it is, before anything
is sent to the database.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson

from flowsync.errors import Problem, UnstorableValue

__all__ = ["dumps", "from_stored", "loads", "nul_path", "stored", "stored_text", "unstorable"]

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson writes as an integer
# orjson writes lists and objects nested at most this deep (and reads 1024 levels).
MAX_DEPTH = 254
NUL_ESCAPE = b"\\u0000"  # how orjson writes U+0000 (and the tail of an escaped "\\u0000")


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """A JSON document a caller sent (orjson.JSONDecodeError, a ValueError, when it is
    not JSON, nests deeper than 1024 or holds a number no double holds)."""
    return orjson.loads(data)


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """`value` as JSON bytes; an integer beyond 64 bits as the nearest double (never
    an error for one)."""
    try:
        return orjson.dumps(value, default=default)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
    return orjson.dumps(_doubles(value), default=default)


def stored(value: Any) -> bytes:
    """`value` as the JSON that PostgreSQL is sent: `dumps`, and UnstorableValue when
    a string or key in it holds NUL or a lone surrogate (text that is not Unicode), or
    it nests deeper than `MAX_DEPTH`. Costs one scan of the bytes for `\\u0000`; only a
    hit (which the escaped text `\\\\u0000` also makes) walks the value."""
    try:
        data = dumps(value)
    except orjson.JSONEncodeError as exc:
        # Found by QA: an action's reply parsed from JSON (`{"a": "\\ud800"}`, or 300
        # nested objects) reached this point, and the write failed in the driver: the
        # step failed as an internal error, or ran again until its worker was "lost".
        raise _unencodable(value) from exc
    refuse_nul(data, value)
    return data


def refuse_nul(data: bytes, value: Any) -> None:
    """UnstorableValue when `data`, `value` encoded by `dumps`, holds NUL (see `stored`:
    for a caller that has the encoding already)."""
    if NUL_ESCAPE in data:
        where = nul_path(value)
        if where is not None:
            raise UnstorableValue(
                f"The JSON value holds a NUL character (\\u0000) at {where}, which "
                "PostgreSQL cannot store.",
                [Problem(where, "holds a NUL character (\\u0000)")],
            )


def _unencodable(value: Any) -> UnstorableValue:
    where = _path_of(value, _has_surrogate)
    if where is not None:
        where = _printable(where)
        return UnstorableValue(
            f"The JSON value holds text that is not Unicode (a lone surrogate) at {where}, "
            "which cannot be stored.",
            [Problem(where, "holds a lone surrogate")],
        )
    deep = _too_deep(value)
    if deep is not None:
        shown = _printable(deep if len(deep) <= 120 else deep[:120] + "...")
        return UnstorableValue(
            f"The JSON value nests deeper than {MAX_DEPTH} levels (at {shown}), which "
            "cannot be stored.",
            [Problem(shown, f"nests deeper than {MAX_DEPTH} levels")],
        )
    return UnstorableValue("The JSON value cannot be stored.", [])


def _printable(path: str) -> str:
    """A path that a key's NUL or lone surrogate made unstorable itself, escaped."""
    return path.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()


def _has_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def _too_deep(value: Any) -> str | None:
    """The path of a list or object nested deeper than MAX_DEPTH, or None. Iterative."""
    stack: list[tuple[str, Any, int]] = [("$", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= MAX_DEPTH:
                return path
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, inner in pairs:
                where = f"{path}[{key}]" if not isinstance(item, dict) else f"{path}.{key}"
                stack.append((where, inner, depth + 1))
    return None


def stored_text(value: Any) -> str:
    """`stored` as text, for a codec or a `$n::text` parameter."""
    return stored(value).decode()


def unstorable(error: BaseException) -> UnstorableValue | None:
    """The UnstorableValue behind `error`, or None: asyncpg and SQLAlchemy wrap what a
    codec raises (a DataError, a StatementError) with it as the cause."""
    current: BaseException | None = error
    for _ in range(16):
        if current is None or isinstance(current, UnstorableValue):
            return current
        current = current.__cause__ or current.__context__
    return None


def from_stored(data: bytes | str) -> Any:
    """A JSON value as PostgreSQL returns it; never fails for a number (see the module)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data, parse_int=_int_or_double, parse_float=_double)


def nul_path(value: Any, root: str = "$") -> str | None:
    """The JSON path of a string or key in `value` that holds NUL, or None.
    Iterative: a value nested to any depth is walked without recursion."""
    return _path_of(value, lambda text: "\x00" in text, root)


def _path_of(value: Any, bad: Callable[[str], bool], root: str = "$") -> str | None:
    """The JSON path of the first string or key in `value` for which `bad` holds."""
    stack: list[tuple[str, Any]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if bad(item):
                return path
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                if isinstance(key, str) and bad(key):
                    # Named as `\u0000` in the path, which is stored too (a step's error).
                    return path + "." + key.replace("\x00", "\\u0000")
                stack.append((f"{path}.{key}", inner))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", inner) for i, inner in reversed(list(enumerate(item))))
    return None


def _doubles(value: Any) -> Any:
    """`value` with every integer beyond 64 bits as the nearest double."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else _double_of(value)
    if isinstance(value, dict):
        return {k: _doubles(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_doubles(v) for v in value]
    return value


def _double_of(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf  # written as null, as orjson writes inf


def _int_or_double(text: str) -> int | float:
    if len(text) <= 20:  # int() refuses over 4300 digits; float() takes any number
        number = int(text)
        if _INT_MIN <= number <= _INT_MAX:
            return number
    return float(text)


def _double(text: str) -> float:
    return float(text)  # 1e400 is inf, written as null
