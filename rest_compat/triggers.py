"""`/api/triggers`: list, create, read, update, delete, rotating a webhook trigger's
secret, and backfilling a cron trigger. The secret is in the replies of create and
rotate only."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from flowsync.db.models import Trigger
from flowsync.services.triggers import TriggerUpdate
from rest_compat import serialize
from rest_compat.http import (
    ApiRoute,
    Body,
    BodyId,
    authenticate,
    json_body,
    paging,
    path_id,
    query_str,
    refuse_nulls,
    services,
    workflow_filter,
)
from rest_compat.responses import json_response
from rest_compat.serialize import Json


class CreateTrigger(Body):
    """`POST /api/triggers`; `type` and `config` are checked by the trigger rules (422)."""

    workflow_id: BodyId
    type: Any
    config: Any = None
    enabled: bool = True
    max_concurrent_runs: Any = None
    priority: Any = None


class UpdateTrigger(Body):
    """`PUT /api/triggers/{id}`: fields left out stay as they are; a new config replaces
    the old one; null clears a field to its default (config: the type's defaults,
    maxConcurrentRuns: no limit, priority: the definition's; workflowId, type and enabled
    have none: 400)."""

    workflow_id: BodyId | None = None
    type: Any = None
    config: Any = None
    enabled: bool | None = None
    max_concurrent_runs: Any = None
    priority: Any = None


class BackfillTrigger(Body):
    """`POST /api/triggers/{id}/backfill`: the range [from, to] of fire times, ISO-8601
    date-times with offsets; the backfill service checks them (400 naming each)."""

    from_: Any = Field(None, alias="from")
    to: Any = None


def _trigger(request: Request, row: Trigger, secret: str | None = None) -> Json:
    triggers = services(request).triggers
    return serialize.trigger(
        row, secret, webhook_url=triggers.webhook_url(row),
        next_fire_times=triggers.next_fire_times(row),
    )  # fmt: skip


async def list_triggers(request: Request) -> Response:
    principal = await authenticate(request)
    found = await services(request).triggers.list(
        principal,
        workflow_id=workflow_filter(request),
        type=query_str(request, "type"),
        **paging(request),
    )
    return json_response(serialize.page(found, lambda row: _trigger(request, row)))


async def create_trigger(request: Request) -> Response:
    principal = await authenticate(request)
    body = await json_body(request, CreateTrigger)
    made = await services(request).triggers.create(
        principal, body.workflow_id, body.type, body.config, enabled=body.enabled,
        max_concurrent_runs=body.max_concurrent_runs, priority=body.priority,
    )  # fmt: skip
    return json_response(
        _trigger(request, made.trigger, made.secret),
        201,
        {"Location": f"/api/triggers/{made.trigger.id}"},
    )


async def get_trigger(request: Request) -> Response:
    principal = await authenticate(request)
    row = await services(request).triggers.get(principal, path_id(request))
    return json_response(_trigger(request, row))


async def update_trigger(request: Request) -> Response:
    principal = await authenticate(request)
    trigger_id = path_id(request)  # the path before the body
    body = await json_body(request, UpdateTrigger, optional=True)
    refuse_nulls(body, "workflow_id", "type", "enabled")
    given = body.model_fields_set
    change = TriggerUpdate(
        workflow_id=body.workflow_id,
        enabled=body.enabled,
        type=body.type,
        **({"config": body.config} if "config" in given else {}),
        **(
            {"max_concurrent_runs": body.max_concurrent_runs}
            if "max_concurrent_runs" in given
            else {}
        ),
        **({"priority": body.priority} if "priority" in given else {}),
    )
    row = await services(request).triggers.update(principal, trigger_id, change)
    return json_response(_trigger(request, row))


async def delete_trigger(request: Request) -> Response:
    principal = await authenticate(request)
    await services(request).triggers.delete(principal, path_id(request))
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    principal = await authenticate(request)
    made = await services(request).triggers.rotate_secret(principal, path_id(request))
    return json_response(_trigger(request, made.trigger, made.secret))


async def backfill_trigger(request: Request) -> Response:
    principal = await authenticate(request)
    trigger_id = path_id(request)
    body = await json_body(request, BackfillTrigger, optional=True)
    done = await services(request).backfills.backfill(principal, trigger_id, body.from_, body.to)
    return json_response({"started": done.started, "skipped": done.skipped})


def routes() -> list[ApiRoute]:
    """The trigger routes."""
    return [
        ApiRoute("/api/triggers", {"GET": list_triggers, "POST": create_trigger}, name="triggers"),
        ApiRoute(
            "/api/triggers/{id}",
            {"GET": get_trigger, "PUT": update_trigger, "DELETE": delete_trigger},
            name="trigger",
        ),
        ApiRoute(
            "/api/triggers/{id}/rotate-secret", {"POST": rotate_secret}, name="trigger_rotate"
        ),
        ApiRoute(
            "/api/triggers/{id}/backfill", {"POST": backfill_trigger}, name="trigger_backfill"
        ),
    ]
