"""`/api/members`: the caller's team's members (JWT subjects, `jwt:<issuer>|<sub>`) and
their roles. A member is named by its subject in the path (slashes included: an issuer
is a URL), as written or percent-encoded."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from rest_compat import serialize
from rest_compat.http import ApiRoute, Body, authenticate, json_body, services
from rest_compat.responses import json_response


class AddMember(Body):
    """`POST /api/members`."""

    subject: str
    role: str


class SetMemberRole(Body):
    """`PUT /api/members/{subject}`."""

    role: str


async def list_members(request: Request) -> Response:
    principal = await authenticate(request)
    found = await services(request).members.list(principal)
    # The list shape of every other route; one page holds them all.
    return json_response({"items": [serialize.member(m) for m in found], "nextCursor": None})


async def add_member(request: Request) -> Response:
    principal = await authenticate(request)
    body = await json_body(request, AddMember)
    row = await services(request).members.add(principal, body.subject, body.role)
    return json_response(serialize.member(row), 201)


async def set_member_role(request: Request) -> Response:
    principal = await authenticate(request)
    body = await json_body(request, SetMemberRole)
    subject = request.path_params["subject"]
    row = await services(request).members.set_role(principal, subject, body.role)
    return json_response(serialize.member(row))


async def remove_member(request: Request) -> Response:
    principal = await authenticate(request)
    row = await services(request).members.remove(principal, request.path_params["subject"])
    return json_response(serialize.member(row))


def routes() -> list[ApiRoute]:
    """The member routes."""
    return [
        ApiRoute("/api/members", {"GET": list_members, "POST": add_member}, name="members"),
        ApiRoute(
            "/api/members/{subject:path}",
            {"PUT": set_member_role, "DELETE": remove_member},
            name="member",
        ),
    ]
