"""Global object identification (Relay's server specification): `Query.node` and
`Query.nodes` fetch any of the caller's objects by its id alone.

The ids are the objects' own, unchanged: the UUIDs both REST and GraphQL have always
used (an audit entry's id is its number). Nothing a client stored stops working, and a
REST id is a GraphQL id. The type is found by looking the ids up in each kind's table
under the caller's owner, one batched service call per kind: at most seven statements
for UUIDs and one for audit entries, whatever the number of ids (the UUIDs are random,
so one names at most one object). Another owner's id, an unknown one and a garbled one all
answer null, alike."""

from __future__ import annotations

import uuid
from typing import cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from flowsync.errors import InvalidInput
from flowsync.resolvers.context import Context
from flowsync.schema.operations import AuditEntry, DeadLetterType, TriggerType
from flowsync.schema.types import (
    ApiKeyType,
    ExecutionType,
    Node,
    StepExecutionType,
    WorkflowType,
    WorkflowVersionType,
)
from flowsync.services.observability import ObservabilityService

Ctx = Info[Context, None]

# The most ids one `nodes` may ask for (its cost counts each as a `node`).
MAX_NODES = 100
_MAX_AUDIT_ID = 2**63 - 1


async def node(info: Ctx, id: strawberry.ID) -> Node | None:
    """Any of the caller's objects by its id, or null: no such object, another owner's,
    or an id that is none."""
    return (await _find(info, [id]))[0]


async def nodes(info: Ctx, ids: list[strawberry.ID]) -> list[Node | None]:
    """Several of the caller's objects by id, in the order asked, null where `node`
    would be; at most 100 ids."""
    if len(ids) > MAX_NODES:
        raise InvalidInput(
            f"`nodes` takes at most {MAX_NODES} ids; {len(ids)} were given.",
        )
    return await _find(info, ids)


async def _find(info: Ctx, ids: list[strawberry.ID]) -> list[Node | None]:
    context = info.context
    context.require_credential()
    loaders = context.loaders()
    services, principal = context.services, loaders.principal
    uuids: set[uuid.UUID] = set()
    numbers: set[int] = set()
    for raw in ids:
        key = _parse(raw)
        if isinstance(key, uuid.UUID):
            uuids.add(key)
        elif key is not None:
            numbers.add(key)
    found: dict[object, Node] = {}
    left = sorted(uuids)
    if left:
        for key, w in (await services.workflows.get_many(principal, left)).items():
            found[key] = WorkflowType.of(w, loaders)
        left = [k for k in left if k not in found]
    if left:
        for key, e in (await services.executions.get_many(principal, left)).items():
            found[key] = ExecutionType.of(e, loaders)
        left = [k for k in left if k not in found]
    if left:
        for key, s in (await services.executions.steps_by_id(principal, left)).items():
            found[key] = StepExecutionType.of(s)
        left = [k for k in left if k not in found]
    if left:
        for key, v in (await services.workflows.versions_by_id(principal, left)).items():
            found[key] = WorkflowVersionType.of(v)
        left = [k for k in left if k not in found]
    if left:
        for key, a in (await services.api_keys.get_many(principal, left)).items():
            found[key] = ApiKeyType.of(a)
        left = [k for k in left if k not in found]
    if left:
        for key, t in (await services.triggers.get_many(principal, left)).items():
            found[key] = TriggerType.of(t, loaders)
        left = [k for k in left if k not in found]
    if left:
        for key, d in (await services.dead_letters.get_many(principal, left)).items():
            found[key] = DeadLetterType.of(d, loaders)
    if numbers:
        entries = await ObservabilityService.of(services).audit_entries(principal, sorted(numbers))
        for number, r in entries.items():
            found[number] = AuditEntry(
                id=strawberry.ID(str(r.id)), actor=r.actor, action=r.action,
                entity_type=r.entity_type, entity_id=r.entity_id,
                data=cast(JSON, r.data), at=r.at,
            )  # fmt: skip
    return [found.get(key) if (key := _parse(raw)) is not None else None for raw in ids]


def _parse(raw: str) -> uuid.UUID | int | None:
    """A UUID, an audit entry's number, or None for an id that is neither."""
    text = str(raw).strip()
    if text.isascii() and text.isdigit() and len(text) <= 19:
        number = int(text)
        return number if 0 < number <= _MAX_AUDIT_ID else None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None
