"""Subscription resolvers: the live feeds of flowsync.events as GraphQL events. Each
message gets fresh DataLoaders, so nested fields read the state of that moment."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

import strawberry
from strawberry.types import Info

from flowsync.errors import ConfigurationError
from flowsync.events.feed import FeedItem, Snapshot
from flowsync.resolvers.context import Context
from flowsync.resolvers.loaders import Loaders
from flowsync.schema.types import ExecutionEventType
from flowsync.services.executions import parse_uuid

Ctx = Info[Context, None]


async def _events(
    context: Context, items: AsyncIterator[FeedItem]
) -> AsyncGenerator[ExecutionEventType, None]:
    principal = context.principal
    async for item in items:
        if isinstance(item, Snapshot):
            loaders = Loaders(context.services, principal)
            if item.steps is not None:
                loaders.steps.prime(item.execution.id, item.steps)
            yield ExecutionEventType.snapshot_of(item.execution, loaders)
        elif context.shared is not None:
            yield context.shared.get(item.event, context.services, principal)
        else:
            yield ExecutionEventType.of(item.event, Loaders(context.services, principal))


def _live(context: Context) -> Context:
    if context.live is None:
        raise ConfigurationError("Live events are not running in this process.")
    return context


async def execution_updated(
    info: Ctx, id: strawberry.ID
) -> AsyncGenerator[ExecutionEventType, None]:
    """The execution's current state (kind `snapshot`), then every event in sequence
    order; completes after the event that ends the execution."""
    context = _live(info.context)
    assert context.live is not None
    feed = context.live.feed.execution(context.require_credential(), id)
    async for event in _events(context, feed):
        yield event


async def execution_events(
    info: Ctx, workflow_id: strawberry.ID | None = None
) -> AsyncGenerator[ExecutionEventType, None]:
    """A snapshot of each of the caller's running executions (optionally of one
    workflow), then every event of those and of every execution started later, each
    execution's in sequence order."""
    context = _live(info.context)
    assert context.live is not None
    credential = context.require_credential()
    wid = None
    if workflow_id is not None:
        # Another owner's workflow answers exactly as a missing one.
        wid = (await context.services.workflows.get(credential.principal, workflow_id)).id
        wid = parse_uuid(wid, "workflow")
    async for event in _events(context, context.live.feed.owner(credential, wid)):
        yield event
