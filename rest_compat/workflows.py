"""`/api/workflows`: list, create, read, update (a new definition is a new version),
delete; a workflow's versions (`/versions`: newest first, without their definitions;
`/versions/{version}`: one with its definition); and `/api/workflows/validate`, which
checks a definition as a save would and stores nothing (GraphQL's `validateWorkflow`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from flowsync.db.models import WorkflowVersion
from flowsync.errors import FlowSyncError, InvalidInput, NotFound, Problem, shown
from flowsync.services.workflows import MAX_VERSION, WorkflowService, WorkflowUpdate
from rest_compat import serialize
from rest_compat.http import (
    ApiRoute,
    Body,
    JsonInt,
    authenticate,
    json_body,
    paging,
    path_id,
    refuse_nulls,
    services,
)
from rest_compat.responses import json_response


class CreateWorkflow(Body):
    """`POST /api/workflows`."""

    name: str
    description: str | None = None
    definition: Any = Field(...)
    max_concurrency: JsonInt | None = None
    version_message: str | None = None


class UpdateWorkflow(Body):
    """`PUT /api/workflows/{id}`: fields left out stay as they are, null clears a field
    to its default (description: none, maxConcurrency: no limit; name and definition
    have none: 400); with `expectedVersion`, a workflow at another version is a 409 and
    nothing changes."""

    name: str | None = None
    description: str | None = None
    definition: Any = None
    max_concurrency: JsonInt | None = None
    expected_version: JsonInt | None = None
    version_message: str | None = None


class ValidateWorkflow(Body):
    """`POST /api/workflows/validate`."""

    definition: Any = Field(...)


def version(row: WorkflowVersion, *, definition: bool) -> dict[str, Any]:
    """A workflow version with GraphQL's field names (its definition when asked)."""
    out: dict[str, Any] = {
        "id": str(row.id),
        "version": row.version,
        "createdAt": row.created_at.isoformat(),
        "message": row.message,
        "author": row.author,
    }
    if definition:
        out["definition"] = row.definition
    return out


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
        principal, body.name, body.description, body.definition, body.max_concurrency,
        body.version_message,
    )  # fmt: skip
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
    workflow_id = path_id(request)  # the path before the body
    body = await json_body(request, UpdateWorkflow, optional=True)
    refuse_nulls(body, "name", "definition")
    given = body.model_fields_set
    change = WorkflowUpdate(
        name=body.name,
        # null clears it, as null does any field with a default ("" to the service).
        description="" if "description" in given and body.description is None else body.description,
        **({"definition": body.definition} if "definition" in given else {}),
        **({"max_concurrency": body.max_concurrency} if "max_concurrency" in given else {}),
        expected_version=body.expected_version,
        version_message=body.version_message,
    )
    svc = services(request).workflows
    row = await svc.update(principal, workflow_id, change)
    definition = (await svc.get_definition(principal, row.id, row.version)).definition
    return json_response(serialize.workflow(row, definition))


async def list_versions(request: Request) -> Response:
    principal = await authenticate(request)
    found = await services(request).workflows.versions_page(
        principal, path_id(request), **paging(request)
    )
    return json_response(serialize.page(found, lambda v: version(v, definition=False)))


async def get_version(request: Request) -> Response:
    principal = await authenticate(request)
    workflow_id = path_id(request)
    raw: str = request.path_params["version"]
    # Versions count from 1: 0 is as malformed as -1 (found by QA, it was a 404).
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
        raise InvalidInput(
            "The version in the path must be a whole number from 1 on.",
            [Problem("version", f"must be a whole number from 1 on, not {shown(raw)!r}")],
        )
    number = int(raw)
    if number > MAX_VERSION:  # a whole number no workflow has reached
        raise NotFound(f"Workflow {workflow_id} has no version {number}.")
    row = await services(request).workflows.get_definition(principal, workflow_id, number)
    return json_response(version(row, definition=True))


async def validate_workflow(request: Request) -> Response:
    await authenticate(request)
    body = await json_body(request, ValidateWorkflow)
    try:
        await WorkflowService.validate(body.definition)
    except FlowSyncError as exc:
        problems = [
            {"path": p.path, "message": p.message, "nodeId": p.node_id, "edge": p.edge}
            for p in exc.details
        ] or [{"path": "$.definition", "message": exc.message, "nodeId": None, "edge": None}]
        return json_response({"valid": False, "problems": problems})
    return json_response({"valid": True, "problems": []})


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
        # /api/workflows/{id} takes no POST: a POST to /validate is always this route's.
        ApiRoute("/api/workflows/validate", {"POST": validate_workflow}, name="validate_workflow"),
        ApiRoute(
            "/api/workflows/{id}",
            {"GET": get_workflow, "PUT": update_workflow, "DELETE": delete_workflow},
            name="workflow",
        ),
        ApiRoute("/api/workflows/{id}/versions", {"GET": list_versions}, name="workflow_versions"),
        ApiRoute(
            "/api/workflows/{id}/versions/{version}", {"GET": get_version}, name="workflow_version"
        ),
    ]
