"""`/api/dead-letters`: the caller's dead letters (newest first; `executionId` filters by
execution, `includeRedriven=true` keeps the redriven ones), one by id, and redriving one
(its execution resumes from the failed step; 409 when it was redriven already or the
execution is no longer failed)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from flowsync.errors import InvalidInput, Problem, shown
from rest_compat import serialize
from rest_compat.http import ApiRoute, authenticate, paging, path_id, query_str, services
from rest_compat.responses import json_response


def _flag(request: Request, name: str) -> bool:
    value = query_str(request, name)
    if value is None:
        return False
    if value not in ("true", "false"):
        raise InvalidInput(
            f"The query parameter {name} must be true or false.",
            [Problem(name, f"must be true or false, not {shown(value)!r}")],
        )
    return value == "true"


async def list_dead_letters(request: Request) -> Response:
    principal = await authenticate(request)
    found = await services(request).dead_letters.list(
        principal,
        execution_id=query_str(request, "executionId"),
        include_redriven=_flag(request, "includeRedriven"),
        **paging(request),
    )
    return json_response(serialize.page(found, serialize.dead_letter))


async def get_dead_letter(request: Request) -> Response:
    principal = await authenticate(request)
    row = await services(request).dead_letters.get(principal, path_id(request))
    return json_response(serialize.dead_letter(row))


async def redrive_dead_letter(request: Request) -> Response:
    principal = await authenticate(request)
    row = await services(request).dead_letters.redrive(principal, path_id(request))
    return json_response(serialize.dead_letter(row))


def routes() -> list[ApiRoute]:
    """The dead letter routes."""
    return [
        ApiRoute("/api/dead-letters", {"GET": list_dead_letters}, name="dead_letters"),
        ApiRoute("/api/dead-letters/{id}", {"GET": get_dead_letter}, name="dead_letter"),
        ApiRoute(
            "/api/dead-letters/{id}/redrive",
            {"POST": redrive_dead_letter},
            name="dead_letter_redrive",
        ),
    ]
