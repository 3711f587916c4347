"""`/api/workflows`: list, create, read, update (a new definition is a new version),
delete."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from flowsync.services.workflows import WorkflowUpdate
from rest_compat import serialize
from rest_compat.http import (
    ApiRoute,
    Body,
    JsonInt,
    authenticate,
    json_body,
    paging,
    path_id,
    services,
)
from rest_compat.responses import json_response


class CreateWorkflow(Body):
    """`POST /api/workflows`."""

    name: str
    description: str | None = None
    definition: Any = Field(...)
    max_concurrency: JsonInt | None = None


class UpdateWorkflow(Body):
    """`PUT /api/workflows/{id}`: fields left out stay as they are; with
    `expectedVersion`, a workflow at another version is a 409 and nothing changes."""

    name: str | None = None
    description: str | None = None
    definition: Any = None
    max_concurrency: JsonInt | None = None
    expected_version: JsonInt | None = None


async def list_workflows(request: Request) -> Response:
    principal = await authenticate(request)
    svc = services(request).workflows
    found = await svc.list(principal, **paging(request))
    definitions = await svc.definitions(principal, [w.id for w in found.items])
    return json_response(
        serialize.page(
            found,
            lambda w: serialize.workflow(
                w, definitions[w.id].definition if w.id in definitions else None
            ),
        )
    )


async def create_workflow(request: Request) -> Response:
    principal = await authenticate(request)
    body = await json_body(request, CreateWorkflow)
    svc = services(request).workflows
    row = await svc.create(
        principal, body.name, body.description, body.definition, body.max_concurrency
    )
    definition = (await svc.get_definition(principal, row.id)).definition
    return json_response(
        serialize.workflow(row, definition), 201, {"Location": f"/api/workflows/{row.id}"}
    )


async def get_workflow(request: Request) -> Response:
    principal = await authenticate(request)
    svc = services(request).workflows
    row = await svc.get(principal, path_id(request))
    definition = (await svc.get_definition(principal, row.id, row.version)).definition
    return json_response(serialize.workflow(row, definition))


async def update_workflow(request: Request) -> Response:
    principal = await authenticate(request)
    body = await json_body(request, UpdateWorkflow, optional=True)
    given = body.model_fields_set
    change = WorkflowUpdate(
        name=body.name,
        description=body.description,
        **({"definition": body.definition} if "definition" in given else {}),
        **({"max_concurrency": body.max_concurrency} if "max_concurrency" in given else {}),
        expected_version=body.expected_version,
    )
    svc = services(request).workflows
    row = await svc.update(principal, path_id(request), change)
    definition = (await svc.get_definition(principal, row.id, row.version)).definition
    return json_response(serialize.workflow(row, definition))


async def delete_workflow(request: Request) -> Response:
    principal = await authenticate(request)
    await services(request).workflows.delete(principal, path_id(request))
    return Response(status_code=204)


def routes() -> list[ApiRoute]:
    """The workflow routes."""
    return [
        ApiRoute(
            "/api/workflows",
            {"GET": list_workflows, "POST": create_workflow},
            name="workflows",
        ),
        ApiRoute(
            "/api/workflows/{id}",
            {"GET": get_workflow, "PUT": update_workflow, "DELETE": delete_workflow},
            name="workflow",
        ),
    ]
