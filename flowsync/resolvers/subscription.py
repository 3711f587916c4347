"""Subscription resolvers: the live feeds of flowsync.events as GraphQL events. A
snapshot gets fresh DataLoaders; an event is one object shared by every subscriber that
delivers it (flowsync.resolvers.shared), so its nested fields are read once, when it is
first delivered."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated

import strawberry
from strawberry.types import Info

from flowsync.errors import ConfigurationError
from flowsync.events.feed import FeedItem, Snapshot
from flowsync.events.runtime import LiveEvents
from flowsync.resolvers.context import Context
from flowsync.resolvers.loaders import Loaders
from flowsync.schema.types import ExecutionEventType

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


def _live(context: Context) -> LiveEvents:
    # Over HTTP a subscription only gets here as a stream (SSE or multipart): a plain
    # POST of one is refused before it runs (flowsync.schema.schema.Schema.execute).
    if context.live is None:
        raise ConfigurationError("Live events are not running in this process.")
    return context.live


# These resolvers check their arguments when called and then return the stream, so that
# a bad subscription fails at once, with its error, before anything is sent.


async def execution_updated(
    info: Ctx,
    id: strawberry.ID,
    follow: Annotated[
        bool,
        strawberry.argument(
            description="Stay open after the execution ends: a redrive of its dead letter "
            "resumes it, and its events come here too (a run page watching it). Default: "
            "complete after the event that ends it."
        ),
    ] = False,
) -> AsyncGenerator[ExecutionEventType, None]:
    """The execution's current state (kind `snapshot`), then every event in sequence
    order; completes after the event that ends the execution, unless `follow`."""
    context = info.context
    live = _live(context)
    credential = context.require_credential()
    await context.services.executions.get(credential.principal, id)
    return _events(context, live.feed.execution(credential, id, follow=follow))


async def execution_events(
    info: Ctx, workflow_id: strawberry.ID | None = None
) -> AsyncGenerator[ExecutionEventType, None]:
    """A snapshot of each of the caller's running executions (optionally of one
    workflow), then every event of those and of every execution started later, each
    execution's in sequence order."""
    context = info.context
    live = _live(context)
    credential = context.require_credential()
    wid = None
    if workflow_id is not None:
        # Another owner's workflow answers exactly as a missing one.
        wid = (await context.services.workflows.get(credential.principal, workflow_id)).id
    return _events(context, live.feed.owner(credential, wid))
