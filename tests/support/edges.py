"""Values at the edges of what FlowSync accepts, for the fuzz tests' hooks: strings with
NUL, cursors nested deep or at the ends of time, digits that are not ASCII, times that
UTC cannot hold, numbers past 64 bits and past a double. Random generation alone rarely
reaches them; the hooks put them into generated requests, one leaf at a time."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from hypothesis import strategies as st


def _cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_ID = str(uuid.UUID(int=1))
STRINGS = [
    "\x00",
    "a\x00b",
    "²",
    "١٢",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    _cursor(b"[" * 2000 + b"]" * 2000),
    _cursor(json.dumps(["0001-01-01T00:30:00+05:00", _ID]).encode()),
    _cursor(json.dumps(["9999-12-31T23:30:00-05:00", _ID]).encode()),
    _cursor(json.dumps(["a", 2**70]).encode()),
    "x" * 5000,
]
NUMBERS: list[Any] = [2**31, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**20, 1e20, 1e308, -1e308]


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The paths of the strings and numbers in a JSON value (keys and indexes)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in leaves(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaves(v, (*path, i))]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [path]
    return []


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """`value` with the leaf at `path` replaced by `new` (a copy)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = replaced(copy[head], rest, new)
    return copy


def with_an_edge(value: Any, strings: bool = True) -> st.SearchStrategy[Any]:
    """`value` as it is, or with one of its leaves replaced by an edge value (a string
    with `strings`, else a number or a string)."""
    paths = leaves(value)
    if not paths:
        return st.just(value)
    edges = st.sampled_from(STRINGS) if strings else st.sampled_from([*STRINGS, *NUMBERS])
    changed = st.tuples(st.sampled_from(paths), edges).map(lambda pe: replaced(value, *pe))
    return st.one_of(st.just(value), changed)
