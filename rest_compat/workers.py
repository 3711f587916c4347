"""`/api/workers`: the worker processes alive, and those dead for less than ten minutes
(`alive: false`). Workers belong to no tenant: any authenticated caller sees the same
list, which says what each process is (hostname, pid, concurrency, steps in flight,
heartbeats), never what it runs for whom."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from rest_compat import serialize
from rest_compat.http import ApiRoute, authenticate, services
from rest_compat.responses import json_response


async def list_workers(request: Request) -> Response:
    principal = await authenticate(request)
    found = await services(request).workers.list(principal)
    # The list shape of every other route; one page holds them all.
    return json_response({"items": [serialize.worker(w) for w in found], "nextCursor": None})


def routes() -> list[ApiRoute]:
    """The worker routes."""
    return [ApiRoute("/api/workers", {"GET": list_workers}, name="workers")]
