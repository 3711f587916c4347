"""`/api/executions`: list, start (with `Idempotency-Key`), read with steps and the
pinned definition, cancel, retry, signals, the timeline and the child runs `workflow`
steps started; and batch starts of one workflow.

Starting answers 201 with the new execution and a `Location`. A repeated idempotency key
(the `Idempotency-Key` header, or `idempotencyKey` in the body) starts nothing and answers
200 with the first execution and `Idempotent-Replayed: true`: the status says whether
this call created it, the body is the same either way. A retry takes the header too, the
same way (a repeat answers the first retry); a run is retried once (409 after that).

A batch start (`POST /api/workflows/{id}/executions:batch` with
`{"inputs": [{"input", "idempotencyKey"}]}`) answers `{"results": [{"execution",
"created"}]}`, one per item in order: 201 when it started any, 200 with
`Idempotent-Replayed: true` when every item was a repeat. Its keys are the items';
an `Idempotency-Key` header is a 400.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from flowsync.errors import InvalidInput, Problem
from flowsync.services.executions import StartItem
from rest_compat import serialize
from rest_compat.http import (
    ApiRoute,
    Body,
    BodyId,
    authenticate,
    from_header,
    json_body,
    observability,
    paging,
    path_id,
    query_str,
    services,
    workflow_filter,
)
from rest_compat.responses import json_response


class StartExecution(Body):
    """`POST /api/executions`."""

    workflow_id: BodyId
    input: Any = None
    idempotency_key: str | None = None
    priority: Any = None  # checked by the service (400 naming priority and the range)


class StartItemBody(Body):
    """One item of a batch start."""

    input: Any = None
    idempotency_key: str | None = None


class StartExecutions(Body):
    """`POST /api/workflows/{id}/executions:batch`."""

    inputs: list[StartItemBody]
    priority: Any = None


async def list_executions(request: Request) -> Response:
    principal = await authenticate(request)
    found = await services(request).executions.list(
        principal,
        workflow_id=workflow_filter(request),
        status=query_str(request, "status"),
        trigger_id=query_str(request, "triggerId"),
        **paging(request),
    )
    return json_response(serialize.page(found, serialize.execution))


async def start_execution(request: Request) -> Response:
    principal = await authenticate(request)
    body = await json_body(request, StartExecution)
    header = request.headers.get("idempotency-key")
    key = body.idempotency_key
    if header is not None:
        if key is not None and key != header:
            raise InvalidInput(
                "The Idempotency-Key header and idempotencyKey in the body differ.",
                [Problem("$.idempotencyKey", "differs from the Idempotency-Key header")],
            )
        key = header
        from_header(request, "idempotencyKey", "idempotency-key")
    started = await services(request).executions.start(
        principal, body.workflow_id, body.input, idempotency_key=key, priority=body.priority
    )
    row = started.execution
    headers = {"Location": f"/api/executions/{row.id}"}
    if not started.created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(serialize.execution(row), 201 if started.created else 200, headers)


async def start_executions(request: Request) -> Response:
    principal = await authenticate(request)
    if request.headers.get("idempotency-key") is not None:
        # One key for a whole batch would be a guess at what a repeat means: refused,
        # rather than ignored (a retried batch would start every run again).
        raise InvalidInput(
            "A batch start takes no Idempotency-Key header; give each item its own idempotencyKey.",
            [Problem("headers.idempotency-key", "not used by a batch start")],
        )
    workflow_id = path_id(request)  # the path before the body
    body = await json_body(request, StartExecutions)
    items = [StartItem(i.input, i.idempotency_key) for i in body.inputs]
    started = await services(request).executions.start_many(
        principal, workflow_id, items, body.priority
    )
    results = [{"execution": serialize.execution(s.execution), "created": s.created}
               for s in started]  # fmt: skip
    if any(s.created for s in started):
        return json_response({"results": results}, 201)
    return json_response({"results": results}, 200, {"Idempotent-Replayed": "true"})


async def get_execution(request: Request) -> Response:
    principal = await authenticate(request)
    svc = services(request)
    row, steps = await svc.executions.snapshot(principal, path_id(request))
    versions = await svc.workflows.versions_by_id(principal, [row.workflow_version_id])
    definition = versions[row.workflow_version_id].definition
    return json_response(serialize.execution(row, steps, definition))


async def retry_execution(request: Request) -> Response:
    principal = await authenticate(request)
    from_header(request, "idempotencyKey", "idempotency-key")
    started = await services(request).executions.retry(
        principal, path_id(request), idempotency_key=request.headers.get("idempotency-key")
    )
    row = started.execution
    headers = {"Location": f"/api/executions/{row.id}"}
    if not started.created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(serialize.execution(row), 201 if started.created else 200, headers)


async def cancel_execution(request: Request) -> Response:
    principal = await authenticate(request)
    row = await services(request).executions.cancel(principal, path_id(request))
    return json_response(serialize.execution(row))


class SignalExecution(Body):
    """`POST /api/executions/{id}/signals/{name}`: the body is optional."""

    payload: Any = None


async def signal_execution(request: Request) -> Response:
    principal = await authenticate(request)
    execution_id = path_id(request)  # the path before the body
    body = await json_body(request, SignalExecution, optional=True)
    row, sent = await services(request).executions.signal_execution(
        principal, execution_id, request.path_params["name"], body.payload
    )
    return json_response({"execution": serialize.execution(row), "takenBy": sent.node_id})


async def execution_timeline(request: Request) -> Response:
    principal = await authenticate(request)
    found = await observability(request).timeline(principal, path_id(request))
    return json_response(serialize.timeline(found))


async def execution_children(request: Request) -> Response:
    principal = await authenticate(request)
    svc = services(request)
    row = await svc.executions.get(principal, path_id(request))
    found = await svc.executions.children(principal, [row.id])
    return json_response({"items": [serialize.execution(c) for c in found[row.id]]})


def routes() -> list[ApiRoute]:
    """The execution routes."""
    return [
        ApiRoute(
            "/api/executions",
            {"GET": list_executions, "POST": start_execution},
            name="executions",
        ),
        ApiRoute("/api/executions/{id}", {"GET": get_execution}, name="execution"),
        ApiRoute(
            "/api/workflows/{id}/executions:batch",
            {"POST": start_executions},
            name="workflow_executions_batch",
        ),
        ApiRoute(
            "/api/executions/{id}/cancel", {"POST": cancel_execution}, name="execution_cancel"
        ),
        ApiRoute("/api/executions/{id}/retry", {"POST": retry_execution}, name="execution_retry"),
        ApiRoute(
            "/api/executions/{id}/signals/{name}",
            {"POST": signal_execution},
            name="execution_signal",
        ),
        ApiRoute(
            "/api/executions/{id}/timeline", {"GET": execution_timeline}, name="execution_timeline"
        ),
        ApiRoute(
            "/api/executions/{id}/children", {"GET": execution_children}, name="execution_children"
        ),
    ]
