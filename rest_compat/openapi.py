"""The OpenAPI 3.1 document of the REST face, written as data (`document()`), served at
`/api/openapi.json`, and a page to try the routes in a browser at `/api/docs` (Swagger UI,
served from the `swagger-ui-py` package: no CDN, so it loads offline).

The document is checked against the app: a test requires every route to be documented
and every documented operation to exist, and schemathesis checks replies against it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from flowsync.services.triggers import DEFAULT_FIRE_TIMES, MAX_FIRE_TIMES
from rest_compat.http import ApiRoute
from rest_compat.responses import json_response

Json = dict[str, Any]

_REF = "#/components/schemas/"


def ref(name: str) -> Json:
    return {"$ref": _REF + name}


def nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


STRING: Json = {"type": "string"}
# An id in a request body: one that is not a UUID is a 400 naming the field.
BODY_ID: Json = {"type": "string", "format": "uuid"}
TIME: Json = {"type": "string", "format": "date-time"}
ANY: Json = {}  # any JSON value
INT: Json = {"type": "integer"}


def obj(props: Json, required: list[str] | None = None, *, closed: bool = True) -> Json:
    """An object schema; by default every property is required and no others allowed."""
    out: Json = {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else required,
    }
    if closed:
        out["additionalProperties"] = False
    return out


def listing(item: str) -> Json:
    return obj({"items": {"type": "array", "items": ref(item)}, "nextCursor": nullable(STRING)})


EXECUTION_STATUSES = ["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
STEP_STATUSES = [
    "PENDING", "QUEUED", "RUNNING", "WAITING", "COMPLETED", "FAILED", "SKIPPED", "CANCELLED",
]  # fmt: skip

_EXECUTION: Json = {
    "id": STRING,
    "workflowId": STRING,
    "workflowVersion": INT,
    "status": {"type": "string", "enum": EXECUTION_STATUSES},
    "input": ANY,
    "output": ANY,
    "error": ANY,
    "createdAt": TIME,
    "startedAt": nullable(TIME),
    "finishedAt": nullable(TIME),
    "durationMs": nullable(INT),
    "lastSequence": INT,
    "retriedFromId": nullable(STRING),
    "parentExecutionId": nullable(STRING),
    "priority": {
        "type": "integer",
        "minimum": -100,
        "maximum": 100,
        "description": "Higher runs first among due jobs: the start's, else its trigger's, "
        "else its definition's `priority`, else 0.",
    },
    "concurrencyKey": nullable(
        {
            "type": "string",
            "description": "The definition's concurrencyKey as evaluated at the start: at "
            "most concurrencyKeyLimit runs of the workflow with this key RUNNING, the others "
            "PENDING in start order (null: none).",
        }
    ),
    # The run's OpenTelemetry trace id (32 hex digits); null when started untraced.
    "traceId": nullable(STRING),
}
_PRIORITY: Json = nullable(
    {
        "type": "integer",
        "minimum": -100,
        "maximum": 100,
        "description": "-100 to 100, higher first among due jobs (null: the trigger's, else "
        "the definition's `priority`, else 0); out of range: 400 naming priority.",
    }
)
_TRIGGER_PRIORITY: Json = nullable(
    {
        "type": "integer",
        "minimum": -100,
        "maximum": 100,
        "description": "The priority of the runs it starts, unless a start gives one (null: "
        "the definition's); out of range: 422 at $.priority.",
    }
)
_MS = nullable({"type": "number"})
_VERSION_MESSAGE: Json = nullable(
    {
        "type": "string",
        "description": "What the version a new definition makes is (at most 500 characters "
        "once trimmed); kept with it, beside its author.",
    }
)

SCHEMAS: Json = {
    "Problem": obj(
        {"path": STRING, "message": STRING, "nodeId": STRING, "edge": INT}, ["path", "message"]
    ),
    "Error": obj(
        {
            "error": obj(
                {
                    "code": STRING,
                    "message": STRING,
                    "details": {"type": "array", "items": ref("Problem")},
                    "currentVersion": {
                        "type": "integer",
                        "description": "A 409 for a stale expectedVersion: the version the "
                        "workflow is at now (GET /api/workflows/{id}/versions/{version}).",
                    },
                },
                ["code", "message", "details"],
            )
        }
    ),
    "Workflow": obj(
        {
            "id": STRING,
            "name": STRING,
            "description": nullable(STRING),
            "version": INT,
            "definition": ANY,
            "maxConcurrency": nullable(INT),
            "createdAt": TIME,
            "updatedAt": TIME,
        }
    ),
    "WorkflowList": listing("Workflow"),
    "CreateWorkflow": obj(
        {
            "name": {"type": "string", "minLength": 1},
            "description": nullable(STRING),
            "definition": {"description": "The workflow graph (see the definition contract)."},
            "maxConcurrency": nullable({"type": "integer", "minimum": 1, "maximum": 100000}),
            "versionMessage": _VERSION_MESSAGE,
        },
        ["name", "definition"],
    ),
    "UpdateWorkflow": obj(
        {
            "name": {"type": "string", "minLength": 1},
            "description": nullable({"type": "string", "description": "null clears it."}),
            "definition": {
                "type": "object",
                "description": "A new definition makes a new version.",
            },
            "maxConcurrency": nullable({"type": "integer", "minimum": 1, "maximum": 100000}),
            "expectedVersion": nullable(
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 2**31 - 1,
                    "description": "The version you read: at another one, 409 and no change.",
                }
            ),
            "versionMessage": _VERSION_MESSAGE,
        },
        [],
    ),
    "Step": obj(
        {
            "id": STRING,
            "nodeId": STRING,
            "nodeType": STRING,
            "status": {"type": "string", "enum": STEP_STATUSES},
            "attempt": INT,
            "input": ANY,
            "output": ANY,
            "error": ANY,
            "queuedAt": nullable(TIME),
            "startedAt": nullable(TIME),
            "finishedAt": nullable(TIME),
            "durationMs": nullable(INT),
            "workerId": nullable(STRING)
            | {
                "description": "The `flowsync worker` process that ran the latest attempt "
                "(null: no worker ran it, e.g. a step not started yet)."
            },
            "workerHost": nullable(STRING) | {"description": "The host name of that worker."},
        }
    ),
    "Execution": obj(_EXECUTION),
    "ExecutionWithSteps": obj(
        {
            **_EXECUTION,
            "definition": {"description": "The definition of the version it is pinned to."},
            "steps": {"type": "array", "items": ref("Step")},
        }
    ),
    "ExecutionList": listing("Execution"),
    "ExecutionChildren": obj({"items": {"type": "array", "items": ref("Execution")}}),
    "StartExecution": obj(
        {
            "workflowId": BODY_ID,
            "input": {"description": "The execution's input (any JSON; default {})."},
            "idempotencyKey": nullable({"type": "string", "minLength": 1, "maxLength": 255}),
            "priority": _PRIORITY,
        },
        ["workflowId"],
    ),
    "SignalExecution": obj(
        {
            "payload": {
                "description": "The signal's payload (any JSON; default {}): the output of "
                "the step that takes it. For `approval`: {approved: boolean, by?: string, "
                "comment?: string}."
            },
        },
    ),
    "SignalResult": obj(
        {
            "execution": ref("Execution"),
            "takenBy": nullable(
                {
                    "type": "string",
                    "description": "The node id of the wait or approval step that took the "
                    "signal now; null when none waits for it yet and it is kept for the one "
                    "that will.",
                }
            ),
        },
        ["execution", "takenBy"],
    ),
    "StartExecutions": obj(
        {
            "inputs": {
                "type": "array",
                "description": "One item per execution to start (at most "
                "FLOWSYNC_MAX_BATCH_STARTS, 1,000 by default; more: 400, nothing started).",
                "items": obj(
                    {
                        "input": {"description": "The execution's input (any JSON; default {})."},
                        "idempotencyKey": nullable(
                            {"type": "string", "minLength": 1, "maxLength": 255}
                        ),
                    },
                    [],
                ),
            },
            "priority": _PRIORITY,
        },
        ["inputs"],
    ),
    "StartedExecutions": obj(
        {
            "results": {
                "type": "array",
                "description": "One per item, in order.",
                "items": obj(
                    {
                        "execution": ref("Execution"),
                        "created": {
                            "type": "boolean",
                            "description": "False when the item's idempotency key was used "
                            "before (or earlier in the batch): `execution` is the first.",
                        },
                    }
                ),
            }
        }
    ),
    "Timeline": obj(
        {
            "executionId": STRING,
            "workflowId": STRING,
            "status": {"type": "string", "enum": EXECUTION_STATUSES},
            "createdAt": TIME,
            "startedAt": nullable(TIME),
            "finishedAt": nullable(TIME),
            "durationMs": nullable(INT),
            "steps": {
                "type": "array",
                "items": obj(
                    {
                        "stepId": STRING,
                        "nodeId": STRING,
                        "nodeType": STRING,
                        "status": {"type": "string", "enum": STEP_STATUSES},
                        "attempts": INT,
                        "queuedAt": nullable(TIME),
                        "startedAt": nullable(TIME),
                        "finishedAt": nullable(TIME),
                        "waitMs": nullable(INT),
                        "durationMs": nullable(INT),
                    }
                ),
            },
        }
    ),
    "Trigger": obj(
        {
            "id": STRING,
            "workflowId": STRING,
            "type": {"type": "string", "enum": ["MANUAL", "WEBHOOK", "CRON"]},
            "enabled": {"type": "boolean"},
            "config": {"type": "object"},
            "webhookUrl": nullable(STRING),
            "nextRunAt": nullable(TIME),
            "nextFireTimes": {
                "type": "array",
                "items": TIME,
                "maxItems": DEFAULT_FIRE_TIMES,
                "description": f"An enabled CRON trigger's next {DEFAULT_FIRE_TIMES} fire "
                "times after now, oldest first, as UTC instants (its schedule in its "
                "`timezone`); empty for other types and disabled triggers. GraphQL's "
                "`Trigger.nextFireTimes(count:)` lists up to "
                f"{MAX_FIRE_TIMES}.",
            },
            "lastFiredAt": nullable(TIME),
            "maxConcurrentRuns": nullable(INT),
            "priority": _TRIGGER_PRIORITY,
            "createdAt": TIME,
            "updatedAt": TIME,
            "secret": {
                "type": "string",
                "description": "A webhook trigger's signing secret: only in the replies of "
                "create and rotate-secret.",
            },
        },
        [
            "id",
            "workflowId",
            "type",
            "enabled",
            "config",
            "webhookUrl",
            "nextRunAt",
            "nextFireTimes",
            "lastFiredAt",
            "maxConcurrentRuns",
            "priority",
            "createdAt",
            "updatedAt",
        ],
    ),
    "TriggerList": listing("Trigger"),
    "CreateTrigger": obj(
        {
            "workflowId": BODY_ID,
            "type": {
                "description": "MANUAL, WEBHOOK or CRON (any case).",
                "type": "string",
            },
            "config": {
                "description": "CRON: {expression, timezone?, misfire?: {policy, maxCatchUp?}, "
                "input?}; WEBHOOK: {requireSignature?, mode?: async|sync, syncTimeoutSeconds?, "
                "maxBodyBytes?, input?, signal?: {name, match}}; MANUAL: none. `input` is "
                "the template of the runs' input over `trigger` (default: a webhook's body, "
                "a cron's {}); `signal`: a delivery signals the matching run instead of "
                "starting one. See the README's Triggers.",
            },
            "enabled": {"type": "boolean"},
            "maxConcurrentRuns": nullable(
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100000,
                    "description": "At most this many of the trigger's runs RUNNING at once; "
                    "the rest wait PENDING, holding no worker, and start as earlier ones end "
                    "(null: no limit).",
                }
            ),
            "priority": _TRIGGER_PRIORITY,
        },
        ["workflowId", "type"],
    ),
    "UpdateTrigger": obj(
        {
            "workflowId": BODY_ID,
            "type": {
                "type": "string",
                "description": "Must be the trigger's current type if given.",
            },
            "config": {
                "description": "Replaces the config (validated, defaults filled in); "
                "null: the type's defaults."
            },
            "enabled": {"type": "boolean"},
            "maxConcurrentRuns": nullable(
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100000,
                    "description": "At most this many of the trigger's runs RUNNING at once; "
                    "the rest wait PENDING, holding no worker, and start as earlier ones end "
                    "(null: no limit).",
                }
            ),
            "priority": _TRIGGER_PRIORITY,
        },
        [],
    ),
    "BackfillTrigger": obj(
        {
            "from": {
                **TIME,
                "description": "The first instant of the range (included), with its offset or Z.",
            },
            "to": {
                **TIME,
                "description": "The last instant of the range (included), not after now.",
            },
        },
        ["from", "to"],
    ),
    "Backfill": obj(
        {
            "started": {
                **INT,
                "description": "Runs started (some may wait PENDING behind maxConcurrentRuns).",
            },
            "skipped": {
                **INT,
                "description": "Fire times fired already (by the scheduler "
                "or an earlier backfill): nothing started for them.",
            },
        },
        ["started", "skipped"],
    ),
    "WebhookAccepted": obj(
        {
            "executionId": STRING,
            "status": {
                "type": "string",
                "enum": ["PENDING", "RUNNING"],
                "description": "A synchronous trigger's run, still going at its bound.",
            },
        },
        ["executionId"],
    ),
    "WebhookEnded": obj(
        {
            "executionId": STRING,
            "status": {"type": "string", "enum": ["COMPLETED", "FAILED", "CANCELLED"]},
            "error": obj({"nodeId": STRING, "message": STRING, "code": STRING}, ["message"]),
        },
        ["executionId", "status"],
    ),
    "Queue": obj(
        {
            "queued": INT,
            "scheduled": INT,
            "running": INT,
            "deadLetters": INT,
            "globalDepth": INT,
            "maxDepth": INT,
            "sheddingLoad": {"type": "boolean"},
        }
    ),
    "SchedulerStatus": obj(
        {
            "running": INT,
            "schedulers": {
                "type": "array",
                "items": obj(
                    {
                        "id": STRING,
                        "startedAt": TIME,
                        "lastTickAt": nullable(TIME),
                        "stalled": {"type": "boolean"},
                    }
                ),
            },
            "enabledTriggers": INT,
            "dueTriggers": INT,
            "nextRunAt": nullable(TIME),
            "lastFirings": {
                "type": "array",
                "items": obj(
                    {
                        "triggerId": STRING,
                        "workflowId": STRING,
                        "scheduledAt": TIME,
                        "firedAt": TIME,
                        "executionId": nullable(STRING),
                    }
                ),
            },
            "checkedAt": TIME,
        }
    ),
    "Health": obj(
        {
            "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
            "live": {"type": "boolean"},
            "ready": {"type": "boolean"},
            "checks": obj({"database": STRING, "migrations": STRING}),
            "listener": {"type": "string", "enum": ["ok", "disconnected", "disabled"]},
        }
    ),
    "Liveness": obj({"status": {"const": "ok"}, "live": {"const": True}}),
    "Readiness": obj(
        {
            "ready": {"type": "boolean"},
            "notReady": {
                "type": "array",
                "items": {"type": "string", "enum": ["database", "migrations", "listener"]},
            },
            "checks": obj(
                {
                    "database": STRING,
                    "migrations": STRING,
                    "listener": {"type": "string", "enum": ["ok", "disconnected", "disabled"]},
                }
            ),
        }
    ),
    "MetricsSnapshot": obj(
        {
            "windowSeconds": INT,
            "generatedAt": TIME,
            "sampled": {"type": "boolean"},
            "executionsTotal": INT,
            "executionsByStatus": {
                "type": "array",
                "description": "Every status, in lifecycle order, zeros included.",
                "items": obj(
                    {"status": {"type": "string", "enum": EXECUTION_STATUSES}, "count": INT}
                ),
            },
            "stepsCompletedLastMinute": INT,
            "stepLatency": {
                "type": "array",
                "items": obj(
                    {
                        "nodeType": STRING,
                        "count": INT,
                        "p50Ms": {"type": "number"},
                        "p95Ms": {"type": "number"},
                        "p99Ms": {"type": "number"},
                        "maxMs": {"type": "number"},
                        "waitP50Ms": _MS,
                        "waitP95Ms": _MS,
                        "waitP99Ms": _MS,
                    }
                ),
            },
        }
    ),
    "AuditEntry": obj(
        {
            "id": STRING,
            "actor": STRING,
            "action": STRING,
            "entityType": STRING,
            "entityId": STRING,
            "data": {"type": "object"},
            "at": TIME,
        }
    ),
    "AuditList": listing("AuditEntry"),
}


def _error(description: str, headers: Json | None = None) -> Json:
    out: Json = {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if headers:
        out["headers"] = headers
    return out


_RETRY_AFTER: Json = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}

RESPONSES: Json = {
    "BadRequest": _error("The request is malformed: not JSON, or not of the expected shape."),
    "Unauthorized": _error(
        "No credential, or one that does not verify.",
        {"WWW-Authenticate": {"required": True, "schema": STRING}},
    ),
    "NotFound": _error("No such object, or another owner's (the two look the same)."),
    "Conflict": _error("The change clashes with the object's current state."),
    "Forbidden": _error(
        "The caller is a member of the team, but its role is below the one the operation "
        "needs (`forbidden`, naming both): nothing was done. Someone outside the team gets "
        "404 instead."
    ),
    "TooLarge": _error("The body (or the definition) is over its size limit."),
    "RequestTimeout": _error(
        "The body did not arrive within FLOWSYNC_BODY_READ_TIMEOUT_SECONDS: "
        "`request_timeout`, nothing was done, and the connection is closed."
    ),
    "UnsupportedMediaType": _error(
        "A body not sent as JSON (`Content-Type: application/json` or `application/*+json`; "
        "text/plain or none is refused): `unsupported_media_type`, nothing was read."
    ),
    "Invalid": _error("The definition or trigger breaks its rules; `details` name each path."),
    "RateLimited": _error("Too many requests.", _RETRY_AFTER),
    "Backpressure": _error(
        "The queue sheds load (`backpressure`: new executions are refused for now), or the "
        "database cannot be reached now, as during a failover (`database_unavailable`).",
        _RETRY_AFTER,
    ),
}

_BY_STATUS = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "413": "TooLarge",
    "408": "RequestTimeout",
    "415": "UnsupportedMediaType",
    "422": "Invalid",
    "429": "RateLimited",
    "503": "Backpressure",
}


def _json(
    description: str, schema: str, headers: Json | None = None, links: Json | None = None
) -> Json:
    out: Json = {
        "description": description,
        "content": {"application/json": {"schema": ref(schema)}},
    }
    if headers:
        out["headers"] = headers
    if links:
        out["links"] = links
    return out


def _links(param: str, *operation_ids: str) -> Json:
    """Links from a reply whose body has the new object's `id` to the operations on it."""
    return {
        op: {"operationId": op, "parameters": {param: "$response.body#/id"}} for op in operation_ids
    }


def _operation(
    op_id: str,
    summary: str,
    ok: dict[str, Json],
    errors: list[int],
    *,
    tag: str,
    params: list[Json] | None = None,
    body: str | None = None,
    body_required: bool = True,
    public: bool = False,
    description: str | None = None,
) -> Json:
    responses: Json = dict(ok)
    for status in errors:
        responses[str(status)] = {"$ref": "#/components/responses/" + _BY_STATUS[str(status)]}
    out: Json = {"operationId": op_id, "summary": summary, "tags": [tag], "responses": responses}
    if description:
        out["description"] = description
    if params:
        out["parameters"] = params
    if body:
        responses["408"] = {"$ref": "#/components/responses/RequestTimeout"}
        responses["415"] = {"$ref": "#/components/responses/UnsupportedMediaType"}
        out["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": ref(body)}},
        }
    if public:
        out["security"] = []
    return out


def _query(name: str, schema: Json, description: str) -> Json:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


_ID: Json = {
    "name": "id", "in": "path", "required": True,
    "schema": {"type": "string", "format": "uuid"},
    "description": "The object's id; one that is not a UUID is a 400 naming `id`.",
}  # fmt: skip
_PAGE: list[Json] = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "Page size (default 50)."),
    _query("cursor", STRING, "`nextCursor` of the previous page."),
]
_LOCATION: Json = {"Location": {"required": True, "schema": STRING}}
_AUTHED = [401, 429]


def _paths() -> Json:
    workflows = {
        "get": _operation(
            "listWorkflows", "The caller's workflows, newest first",
            {"200": _json("A page of workflows.", "WorkflowList")}, [400, *_AUTHED],
            tag="workflows", params=_PAGE,
        ),
        "post": _operation(
            "createWorkflow", "Validate and store a new workflow at version 1",
            {"201": _json("The workflow.", "Workflow", _LOCATION,
                          _links("id", "getWorkflow", "updateWorkflow", "deleteWorkflow"))},
            [400, *_AUTHED, 413, 422], tag="workflows", body="CreateWorkflow",
        ),
    }  # fmt: skip
    workflow = {
        "parameters": [_ID],
        "get": _operation(
            "getWorkflow", "One workflow with its newest definition",
            {"200": _json("The workflow.", "Workflow")}, [*_AUTHED, 404], tag="workflows",
        ),
        "put": _operation(
            "updateWorkflow", "Change a workflow; a new definition is a new version",
            {"200": _json("The workflow as changed.", "Workflow")},
            [400, *_AUTHED, 404, 409, 413, 422], tag="workflows", body="UpdateWorkflow",
            body_required=False,
        ),
        "delete": _operation(
            "deleteWorkflow", "Delete a workflow (its triggers stop; runs finish)",
            {"204": {"description": "Deleted."}}, [*_AUTHED, 404], tag="workflows",
        ),
    }  # fmt: skip
    key_header: Json = {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": "A repeat with the same key returns the first execution (200).",
    }  # fmt: skip
    executions = {
        "get": _operation(
            "listExecutions", "The caller's executions, newest first",
            {"200": _json("A page of executions.", "ExecutionList")}, [400, *_AUTHED],
            tag="executions",
            params=[
                _query("workflowId", STRING, "Only this workflow's executions."),
                _query("triggerId", STRING, "Only the executions this trigger started."),
                _query("status", {"type": "string", "enum": EXECUTION_STATUSES},
                       "Only executions in this status."),
                *_PAGE,
            ],
        ),
        "post": _operation(
            "startExecution", "Start the workflow's current version",
            {
                "201": _json("Started.", "Execution", _LOCATION,
                             _links("id", "getExecution", "cancelExecution",
                                    "getExecutionTimeline")),
                "200": _json(
                    "The idempotency key was used before: the first execution, nothing "
                    "started.", "Execution",
                    {**_LOCATION, "Idempotent-Replayed": {"required": True,
                                                          "schema": {"const": "true"}}},
                ),
            },
            [400, *_AUTHED, 404, 413, 503], tag="executions", params=[key_header],
            body="StartExecution",
        ),
    }  # fmt: skip
    ops = {
        "/api/workflows": workflows,
        "/api/workflows/{id}": workflow,
        "/api/executions": executions,
        "/api/workflows/{id}/executions:batch": {
            "parameters": [_ID],
            "post": _operation(
                "startExecutions", "Start the workflow's current version once per item, "
                "in one transaction (an error starts none; a bad item is named by its "
                "index, $.inputs[3]...). Each item's idempotencyKey is its own; an "
                "Idempotency-Key header is a 400",
                {
                    "201": _json("Started (some items may be repeats).", "StartedExecutions"),
                    "200": _json(
                        "Every item's idempotency key was used before: nothing started.",
                        "StartedExecutions",
                        {"Idempotent-Replayed": {"required": True,
                                                 "schema": {"const": "true"}}},
                    ),
                },
                [400, *_AUTHED, 404, 413, 503], tag="executions", body="StartExecutions",
            ),
        },
        "/api/executions/{id}": {
            "parameters": [_ID],
            "get": _operation(
                "getExecution", "One execution with its steps",
                {"200": _json("The execution.", "ExecutionWithSteps")}, [*_AUTHED, 404],
                tag="executions",
            ),
        },
        "/api/executions/{id}/cancel": {
            "parameters": [_ID],
            "post": _operation(
                "cancelExecution", "Cancel a running execution",
                {"200": _json("The execution, cancelled.", "Execution")},
                [*_AUTHED, 404, 409], tag="executions",
            ),
        },
        "/api/executions/{id}/signals/{name}": {
            "parameters": [
                _ID,
                {"name": "name", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_.-]{0,99}$"},
                 "description": "The signal's name: one a wait node of the run's version "
                                "waits for, or `approval`."},
            ],
            "post": _operation(
                "signalExecution", "Send a signal to a run's wait or approval step",
                {"200": _json("Delivered: taken by the step waiting for it, or kept for the "
                              "step that will wait for it.", "SignalResult")},
                [400, *_AUTHED, 404, 409, 413], tag="executions", body="SignalExecution",
                body_required=False,
                description="The step waiting for the signal completes with its payload as "
                "its output (an approval takes its `approved` or `rejected` edge). A signal "
                "sent before the run reaches the wait is kept and taken then. 400: no wait of "
                "the run's version waits for that name, or a bad approval payload; 409: the "
                "run has ended; 413: the payload is over the size limit.",
            ),
        },
        "/api/executions/{id}/retry": {
            "parameters": [_ID],
            "post": _operation(
                "retryExecution", "A new execution from a failed or cancelled one's failed "
                "step on, reusing the completed steps' outputs",
                {
                    "201": _json("The new execution (its retriedFromId is this one).",
                                 "Execution", _LOCATION),
                    "200": _json(
                        "The idempotency key was used by a retry of this execution before: "
                        "that retry, nothing started.", "Execution",
                        {**_LOCATION, "Idempotent-Replayed": {"required": True,
                                                              "schema": {"const": "true"}}},
                    ),
                },
                [400, *_AUTHED, 404, 409, 503], tag="executions",
                params=[{**key_header, "description": "A repeat with the same key returns "
                         "the first retry (200); a key another execution used is a 409."}],
                description="An execution is retried once: 409 when it is not failed or "
                "cancelled, or was retried already (retry its retry), or the idempotency "
                "key belongs to another execution.",
            ),
        },
        "/api/executions/{id}/timeline": {
            "parameters": [_ID],
            "get": _operation(
                "getExecutionTimeline", "Each step's queued, started, finished times",
                {"200": _json("The timeline.", "Timeline")}, [*_AUTHED, 404], tag="executions",
            ),
        },
        "/api/executions/{id}/children": {
            "parameters": [_ID],
            "get": _operation(
                "listExecutionChildren", "The executions this one's workflow steps started, "
                "oldest first (each names this one as parentExecutionId)",
                {"200": _json("The child executions.", "ExecutionChildren")},
                [*_AUTHED, 404], tag="executions",
            ),
        },
        "/api/triggers": {
            "get": _operation(
                "listTriggers", "The caller's triggers, newest first",
                {"200": _json("A page of triggers.", "TriggerList")}, [400, *_AUTHED, 422],
                tag="triggers",
                params=[
                    _query("workflowId", STRING, "Only this workflow's triggers."),
                    _query("type", {"type": "string", "enum": ["MANUAL", "WEBHOOK", "CRON"]},
                           "Only triggers of this type."),
                    *_PAGE,
                ],
            ),
            "post": _operation(
                "createTrigger", "A new trigger of one of the caller's workflows",
                {"201": _json("The trigger (with its secret, for WEBHOOK).", "Trigger",
                              _LOCATION,
                              {**_links("id", "getTrigger", "updateTrigger", "deleteTrigger",
                                        "rotateTriggerSecret"),
                               **_links("triggerId", "receiveWebhook")})},
                [400, *_AUTHED, 404, 413, 422], tag="triggers", body="CreateTrigger",
            ),
        },
        "/api/triggers/{id}": {
            "parameters": [_ID],
            "get": _operation(
                "getTrigger", "One trigger", {"200": _json("The trigger.", "Trigger")},
                [*_AUTHED, 404], tag="triggers",
            ),
            "put": _operation(
                "updateTrigger", "Change a trigger",
                {"200": _json("The trigger as changed.", "Trigger")},
                [400, *_AUTHED, 404, 413, 422], tag="triggers", body="UpdateTrigger",
                body_required=False,
            ),
            "delete": _operation(
                "deleteTrigger", "Delete a trigger", {"204": {"description": "Deleted."}},
                [*_AUTHED, 404], tag="triggers",
            ),
        },
        "/api/triggers/{id}/rotate-secret": {
            "parameters": [_ID],
            "post": _operation(
                "rotateTriggerSecret", "Replace a WEBHOOK trigger's signing secret",
                {"200": _json("The trigger with its new secret.", "Trigger")},
                [*_AUTHED, 404, 409], tag="triggers",
            ),
        },
        "/api/triggers/{id}/backfill": {
            "parameters": [_ID],
            "post": _operation(
                "backfillTrigger", "Start a CRON trigger's runs for the fire times in a "
                "past range [from, to], each once",
                {"200": _json("How many runs started, and how many times were skipped "
                              "as fired already.", "Backfill")},
                [400, *_AUTHED, 404, 413, 422, 503], tag="triggers", body="BackfillTrigger",
            ),
        },
        "/api/webhooks/{triggerId}": {
            "parameters": [
                {"name": "triggerId", "in": "path", "required": True, "schema": STRING},
            ],
            "post": _operation(
                "receiveWebhook", "Webhook ingress: start the trigger's workflow",
                {
                    "202": _json("Accepted: the run started (or was started before, for a "
                                 "repeated Idempotency-Key); a synchronous trigger's run "
                                 "still going at its bound adds its status.",
                                 "WebhookAccepted"),
                    "502": _json("A synchronous trigger's run failed before reaching a "
                                 "webhook_response: its error (node, message, code).",
                                 "WebhookEnded"),
                    "409": {
                        "description": "The signature was accepted before (Error, "
                        "webhook_replayed), or a synchronous trigger's run was cancelled "
                        "(WebhookEnded).",
                        "content": {"application/json": {"schema": {
                            "oneOf": [ref("Error"), ref("WebhookEnded")]}}},
                    },
                    "default": {
                        "description": "A synchronous trigger's reply: the status, headers "
                        "(those a reply may carry: see docs/workflow-definition.md) and body of "
                        "the workflow's webhook_response step; a run that ended without one "
                        "answers WebhookEnded, 200 when it completed, 409 when it was "
                        "cancelled. Every reply of this route "
                        "carries X-Content-Type-Options: nosniff and Content-Security-Policy: "
                        "sandbox; default-src 'none'.",
                        "content": {"*/*": {"schema": ANY}},
                    },
                },
                [400, 401, 404, 408, 413, 415, 429, 503], tag="webhooks", public=True,
                params=[
                    {"name": "X-FlowSync-Signature", "in": "header", "required": False,
                     "schema": STRING,
                     "description": "t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'> (the "
                     "body alone), or t=<unix>,h=<name;...>,v2=<hex> (also the query string, "
                     "Content-Type and the named headers: see the README). Accepted once: "
                     "a replay is 409 webhook_replayed."},
                    {"name": "Idempotency-Key", "in": "header", "required": False,
                     "schema": STRING, "description": "A redelivery never starts a second run."},
                ],
                description="No bearer token: the trigger id and, where required, the "
                "signature are the credentials. Any body, sent uncompressed (a "
                "Content-Encoding is 415); JSON, forms and text are parsed.",
            ) | {"requestBody": {"required": False, "content": {"*/*": {"schema": ANY}}}},
        },
        "/api/queue": {
            "get": _operation(
                "getQueue", "The caller's jobs and the global queue depth",
                {"200": _json("Queue figures.", "Queue")}, _AUTHED, tag="system",
            ),
        },
        "/api/health": {
            "get": _operation(
                "getHealth", "Liveness (probe=live) or readiness (default)",
                {
                    "200": {
                        "description": "Live, or ready.",
                        "content": {"application/json": {
                            "schema": {"oneOf": [ref("Health"), ref("Liveness")]}}},
                    },
                    "503": {
                        "description": "Not ready: the database or its schema is not.",
                        "content": {"application/json": {"schema": ref("Health")}},
                    },
                },
                [400], tag="system", public=True,
                params=[_query("probe", {"type": "string", "enum": ["ready", "live"]},
                               "ready (default): database and migrations; live: the process.")],
            ),
        },
        "/api/ready": {
            "get": _operation(
                "getReady", "Readiness of this API process, for a load balancer",
                {
                    "200": _json("Ready: database, schema and live-event listener.",
                                 "Readiness"),
                    "503": _json("Not ready: `notReady` names the database (unreachable "
                                 "within 2 s), the migrations (schema not at head: run "
                                 "`flowsync migrate`) or the listener (LISTEN down).",
                                 "Readiness"),
                },
                [], tag="system", public=True,
            ),
        },
        "/api/scheduler/status": {
            "get": _operation(
                "getSchedulerStatus", "Running schedulers and the caller's cron triggers",
                {"200": _json("Scheduler status.", "SchedulerStatus")}, _AUTHED, tag="system",
            ),
        },
        "/api/observability/metrics": {
            "get": _operation(
                "getMetricsSnapshot", "The caller's executions, step latency, throughput",
                {"200": _json("The snapshot.", "MetricsSnapshot")}, [400, *_AUTHED],
                tag="observability",
                params=[_query("windowSeconds", {"type": "integer", "minimum": 60,
                                                 "maximum": 604800},
                               "The window, in seconds (default 3600).")],
            ),
        },
        "/api/observability/audit": {
            "get": _operation(
                "getAuditLog", "The caller's audit log, newest first",
                {"200": _json("A page of audit entries.", "AuditList")}, [400, *_AUTHED],
                tag="observability",
                params=[
                    _query("action", STRING, "Exact action, e.g. workflow.created."),
                    _query("entityType", STRING, "workflow, execution, trigger, ..."),
                    _query("entityId", STRING, "Needs entityType."),
                    _query("actor", STRING,
                           "Exact actor: apikey:<id>, jwt:<sub>, webhook:<trigger id>, ..."),
                    _query("since", TIME, "From this time on (inclusive)."),
                    _query("until", TIME, "Before this time (exclusive)."),
                    *_PAGE,
                ],
            ),
        },
        "/metrics": {
            "get": _operation(
                "getPrometheusMetrics", "This process's metrics, Prometheus text format",
                {"200": {"description": "The metrics.",
                         "content": {"text/plain": {"schema": STRING}}}},
                [401, 404], tag="observability", public=True,
                description="Wants `Authorization: Bearer <FLOWSYNC_METRICS_TOKEN>`; with no "
                "token set, 404 (open only under `flowsync dev` on a loopback address).",
            ),
        },
        "/api/openapi.json": {
            "get": _operation(
                "getOpenApi", "This document",
                {"200": {"description": "OpenAPI 3.1.",
                         "content": {"application/json": {"schema": {"type": "object"}}}}},
                [], tag="docs", public=True,
            ),
        },
        "/api/docs": {
            "get": _operation(
                "getDocs", "A page to try the routes in a browser",
                {"200": {"description": "Swagger UI.",
                         "content": {"text/html": {"schema": STRING}}}},
                [], tag="docs", public=True,
            ),
        },
    }  # fmt: skip
    return ops


def _ids_checked(paths: Json) -> Json:
    """`paths` with 400 among the replies of every operation that takes an `id` in its
    path (a malformed one is refused, naming it)."""
    out: Json = {}
    for path, item in paths.items():
        if _ID in item.get("parameters", []):
            item = {
                k: {**v, "responses": {"400": {"$ref": "#/components/responses/BadRequest"},
                                       **v["responses"]}} if k != "parameters" else v
                for k, v in item.items()
            }  # fmt: skip
        out[path] = item
    return out


@functools.cache
def document() -> Json:
    """The OpenAPI 3.1 document."""
    from rest_compat import openapi_editor as editor  # these build on this module
    from rest_compat import openapi_operations as operations

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "FlowSync REST API",
            "version": "1.0.0",
            "description": "The REST compatibility face of FlowSync: the original routes over "
            "the same service layer as GraphQL. Send `Authorization: Bearer <API key or "
            "JWT>`. Lists answer {items, nextCursor} and take limit and cursor; errors answer "
            "{error: {code, message, details}}.",
        },
        "security": [{"bearer": []}],
        "paths": _ids_checked({**_paths(), **operations.PATHS, **editor.PATHS}),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "A FlowSync API key (fsk_...) or an OIDC JWT."}
            },
            "schemas": {**SCHEMAS, **operations.SCHEMAS, **editor.SCHEMAS},
            "responses": RESPONSES,
        },
    }  # fmt: skip


def _swagger_dir() -> Path | None:
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").exists() else None


ASSETS = "/api/docs/assets"
INIT_SCRIPT = "flowsync-init.js"

# The page runs no inline script (its start-up is INIT_SCRIPT) and may load scripts,
# styles, images and data from this origin only; Swagger UI sets inline styles.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

_PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>FlowSync REST API</title>
<link rel="icon" type="image/png" href="{root}{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{root}{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{root}/api/openapi.json"></div>
<script src="{root}{assets}/swagger-ui-bundle.js"></script>
<script src="{root}{assets}/{init}"></script>
</body>
</html>
"""

# The key given to "Authorize" stays in the tab's memory: with persistAuthorization off,
# Swagger UI writes nothing to localStorage, where any script on the origin could read it;
# a key an earlier version of this page kept there ("authorized") is removed.
_INIT_JS = """"use strict";
(function () {
  try { window.localStorage.removeItem("authorized"); } catch (e) {}
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    tryItOutEnabled: true
  });
})();
"""


async def openapi_json(request: Request) -> Response:
    return json_response(document())


async def docs(request: Request) -> Response:
    root = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(
        _PAGE_HTML.format(root=root, assets=ASSETS, init=INIT_SCRIPT),
        headers={"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff"},
    )


async def init_script(request: Request) -> Response:
    return Response(
        _INIT_JS,
        media_type="text/javascript; charset=utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def routes() -> list[BaseRoute]:
    """The document, the docs page and its assets (Swagger UI's files and the script
    that starts it)."""
    out: list[BaseRoute] = [
        ApiRoute("/api/openapi.json", {"GET": openapi_json}, name="openapi", limit_ip=False),
        ApiRoute("/api/docs", {"GET": docs}, name="docs", limit_ip=False),
    ]
    folder = _swagger_dir()
    if folder is not None:
        assets = [
            Route(f"/{INIT_SCRIPT}", init_script, methods=["GET"]),
            Mount("/", app=StaticFiles(directory=folder)),
        ]
        out.append(Mount(ASSETS, routes=assets, name="docs_assets"))
    return out
