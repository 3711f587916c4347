"""`/api/node-types` and `/api/expressions/check`: what the visual editor asks of the
server. Node types come with their `data` schema and connection rules, as the validator
applies them (`flowsync.services.node_types`); an expression or template string is
compiled as a save compiles it, never evaluated (`flowsync.services.expression_check`).
Open to any authenticated caller: they describe the product, not anyone's data."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from flowsync.services.expression_check import check_expression
from flowsync.services.node_types import NodeTypeInfo, node_types
from rest_compat.http import ApiRoute, Body, authenticate, json_body
from rest_compat.responses import json_response


class CheckExpression(Body):
    """`POST /api/expressions/check`: `kind` is EXPRESSION (a condition's CEL) or
    TEMPLATE (a template string); the service names a wrong kind."""

    expression: str
    kind: str


def node_type(info: NodeTypeInfo) -> dict[str, Any]:
    """A node type with GraphQL's field names."""
    return {
        "type": info.type,
        "label": info.label,
        "description": info.description,
        "dataSchema": info.data_schema,
        "hasTarget": info.has_target,
        "hasSource": info.has_source,
        "sourceHandles": list(info.source_handles),
        "optionalHandles": list(info.optional_handles),
        "minOutgoing": info.min_outgoing,
        "maxOutgoing": info.max_outgoing,
        "minIncoming": info.min_incoming,
    }


async def list_node_types(request: Request) -> Response:
    await authenticate(request)
    # The list shape of every other route; one page holds them all.
    return json_response({"items": [node_type(t) for t in node_types()], "nextCursor": None})


async def check(request: Request) -> Response:
    await authenticate(request)
    body = await json_body(request, CheckExpression)
    problems = check_expression(body.expression, body.kind)
    return json_response(
        {
            "valid": not problems,
            "problems": [{"message": p.message, "position": p.position} for p in problems],
        }
    )


def routes() -> list[ApiRoute]:
    """The editor's routes."""
    return [
        ApiRoute("/api/node-types", {"GET": list_node_types}, name="node_types"),
        ApiRoute("/api/expressions/check", {"POST": check}, name="expression_check"),
    ]
