"""JSON replies (flowsync.codec over orjson: datetimes as ISO-8601, UUIDs as strings)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.responses import Response

from flowsync import codec

__all__ = ["dumps", "json_response"]


def dumps(value: object) -> bytes:
    """JSON bytes: datetimes as ISO-8601 with their offset (`+00:00`), as GraphQL writes
    them; UUIDs as strings; anything else orjson cannot write as its string."""
    return codec.dumps(value, default=str)


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON reply."""
    return Response(dumps(body), status, dict(headers or {}), media_type="application/json")
