"""`/api/secrets`: the caller owner's secrets. A list gives names, times and who set
each; a PUT sets a value (never returned by anything); a DELETE removes one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from rest_compat import serialize
from rest_compat.http import ApiRoute, Body, authenticate, json_body, services
from rest_compat.responses import json_response


class SetSecret(Body):
    """`PUT /api/secrets/{name}`."""

    value: str


async def list_secrets(request: Request) -> Response:
    principal = await authenticate(request)
    found = await services(request).secrets.list(principal)
    return json_response({"items": [serialize.secret(s) for s in found]})


async def set_secret(request: Request) -> Response:
    principal = await authenticate(request)
    body = await json_body(request, SetSecret)
    info = await services(request).secrets.set(principal, request.path_params["name"], body.value)
    return json_response(serialize.secret(info))


async def delete_secret(request: Request) -> Response:
    principal = await authenticate(request)
    await services(request).secrets.delete(principal, request.path_params["name"])
    return Response(status_code=204)


def routes() -> list[ApiRoute]:
    """The secret routes."""
    return [
        ApiRoute("/api/secrets", {"GET": list_secrets}, name="secrets"),
        ApiRoute(
            "/api/secrets/{name}", {"PUT": set_secret, "DELETE": delete_secret}, name="secret"
        ),
    ]
