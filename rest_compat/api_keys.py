"""`/api/api-keys`: the caller owner's keys (newest first, revoked ones included), issuing
a key (its secret is in that reply only) and revoking one. A revoked key stays listed
with its `revokedAt`, so revoking is a POST on the key, as cancelling an execution is,
not a DELETE."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from rest_compat import serialize
from rest_compat.http import ApiRoute, Body, authenticate, json_body, paging, path_id, services
from rest_compat.responses import json_response


class CreateApiKey(Body):
    """`POST /api/api-keys`."""

    name: str
    role: str | None = None


async def list_api_keys(request: Request) -> Response:
    principal = await authenticate(request)
    found = await services(request).api_keys.page(principal, **paging(request))
    return json_response(serialize.page(found, serialize.api_key))


async def create_api_key(request: Request) -> Response:
    principal = await authenticate(request)
    body = await json_body(request, CreateApiKey)
    issued = await services(request).api_keys.create(principal, body.name, body.role)
    return json_response(serialize.api_key(issued.key, issued.secret), 201)


async def revoke_api_key(request: Request) -> Response:
    principal = await authenticate(request)
    row = await services(request).api_keys.revoke(principal, path_id(request))
    return json_response(serialize.api_key(row))


def routes() -> list[ApiRoute]:
    """The API key routes."""
    return [
        ApiRoute("/api/api-keys", {"GET": list_api_keys, "POST": create_api_key}, name="api_keys"),
        ApiRoute("/api/api-keys/{id}/revoke", {"POST": revoke_api_key}, name="api_key_revoke"),
    ]
