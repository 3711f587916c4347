"""Checks on JSON values that callers send, before anything serialises them: a depth
limit (serialisers refuse or recurse past a few hundred levels) and a size limit."""

from __future__ import annotations

import uuid

from flowsync import codec
from flowsync.engine.depth import too_deep
from flowsync.errors import InvalidInput, NotFound, PayloadTooLarge, Problem, shown

MAX_DEPTH = 100


def json_depth_ok(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests no deeper than `limit` (iterative: no recursion limit)."""
    return not too_deep(value, limit)


def checked_json_size(value: object, path: str, max_bytes: int) -> int:
    """The size of `value` as compact JSON. InvalidInput when it nests deeper than
    MAX_DEPTH or is not JSON; PayloadTooLarge when it is over `max_bytes`."""
    return len(checked_json(value, path, max_bytes))


def checked_json(value: object, path: str, max_bytes: int) -> bytes:
    """`value` as compact JSON (`codec.dumps`), checked as `checked_json_size` says."""
    if not json_depth_ok(value):
        raise InvalidInput(
            f"The JSON at {path} nests deeper than {MAX_DEPTH} levels.",
            [Problem(path, f"nested more than {MAX_DEPTH} levels")],
        )
    try:
        data = codec.dumps(value)  # an integer past 64 bits is a double (see codec)
    except TypeError as exc:  # orjson.JSONEncodeError is one
        raise InvalidInput(f"The value at {path} is not JSON.", [Problem(path, str(exc))]) from exc
    size = len(data)
    if size > max_bytes:
        raise PayloadTooLarge(
            f"The JSON at {path} is {size} bytes; the limit is {max_bytes}.",
            [Problem(path, f"{size} bytes, over the limit of {max_bytes}")],
        )
    return data


def parse_id(value: object, what: str) -> uuid.UUID:
    """An id a caller sent; a malformed one is simply not found, like another owner's."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound(f"No {what} with id {shown(value)!r}.") from exc
