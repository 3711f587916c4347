"""JSON replies (orjson: datetimes as ISO-8601, UUIDs as strings)."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response

__all__ = ["dumps", "json_response"]


def dumps(value: object) -> bytes:
    """JSON bytes: datetimes as ISO-8601 with their offset (`+00:00`), as GraphQL writes
    them; UUIDs as strings; anything else orjson cannot write as its string."""
    return orjson.dumps(value, default=str)


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON reply."""
    return Response(dumps(body), status, dict(headers or {}), media_type="application/json")
