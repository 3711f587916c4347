"""Resolvers for triggers, dead letters, queue statistics, metrics, the audit log, the
scheduler and retrying executions: translate, call one service, wrap the result."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import datetime
from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from flowsync.errors import NotFound
from flowsync.resolvers.context import Context
from flowsync.resolvers.errors import outcome
from flowsync.schema.operations import (
    AuditEntry,
    BackfillTriggerPayload,
    BackfillTriggerResult,
    CreateTriggerPayload,
    CreateTriggerResult,
    DeadLetterPayload,
    DeadLetterType,
    MetricsSeries,
    MetricsSnapshot,
    QueueStats,
    RedriveDeadLetterResult,
    RotateTriggerSecretResult,
    SchedulerStatus,
    TriggerKind,
    TriggerPayload,
    TriggerType,
    UpdateTriggerResult,
    WorkerType,
)
from flowsync.schema.results import (
    BackpressureError,
    ConflictError,
    DeletedPayload,
    DeleteWorkflowResult,
    NotFoundError,
    StartExecutionPayload,
    StartExecutionResult,
    ValidationError,
)
from flowsync.schema.types import Connection, ExecutionType, connection
from flowsync.services.observability import (
    ObservabilityService,
    QueueReport,
    encode_audit_cursor,
)
from flowsync.services.pagination import Page
from flowsync.services.triggers import TriggerUpdate

Ctx = Info[Context, None]

# How often queueStatsUpdated looks at the queue (it sends only changes).
QUEUE_STATS_SECONDS = 2.0


def _observability(info: Ctx) -> ObservabilityService:
    return ObservabilityService.of(info.context.services)


async def triggers(
    info: Ctx,
    workflow_id: strawberry.ID | None = None,
    first: int | None = None,
    after: str | None = None,
) -> Connection[TriggerType]:
    """The caller's triggers, newest first, optionally of one workflow."""
    loaders = info.context.loaders()
    try:
        page = await info.context.services.triggers.list(
            loaders.principal, workflow_id=workflow_id, limit=first, cursor=after
        )
    except NotFound:
        page = Page([], None)
    return TriggerType.page(page, loaders, after)


async def trigger(info: Ctx, id: strawberry.ID) -> TriggerType | None:
    """One trigger, or null (also for another owner's)."""
    loaders = info.context.loaders()
    try:
        return TriggerType.of(
            await info.context.services.triggers.get(loaders.principal, id), loaders
        )
    except NotFound:
        return None


async def queue_stats(info: Ctx) -> QueueStats:
    """The caller's jobs by state and the queue's depth against its limit."""
    report = await _observability(info).queue(info.context.principal)
    return _stats(report)


def _stats(report: QueueReport) -> QueueStats:
    stats = report.stats
    return QueueStats(
        queued=stats.queued,
        scheduled=stats.scheduled,
        running=stats.running,
        dead_letters=stats.dead_letters,
        global_depth=report.global_depth,
        max_depth=report.max_depth,
        shedding_load=report.shedding_load,
    )


async def dead_letters(
    info: Ctx,
    execution_id: strawberry.ID | None = None,
    include_redriven: bool = False,
    first: int | None = None,
    after: str | None = None,
) -> Connection[DeadLetterType]:
    """The caller's dead letters, newest first: those not yet redriven (all with
    `includeRedriven`), optionally of one execution (none for another owner's)."""
    loaders = info.context.loaders()
    page = await info.context.services.dead_letters.list(
        loaders.principal, execution_id=execution_id, include_redriven=include_redriven,
        limit=first, cursor=after,
    )  # fmt: skip
    return DeadLetterType.page(page, loaders, after)


async def dead_letter(info: Ctx, id: strawberry.ID) -> DeadLetterType | None:
    """One dead letter, or null (also for another owner's)."""
    loaders = info.context.loaders()
    try:
        row = await info.context.services.dead_letters.get(loaders.principal, id)
    except NotFound:
        return None
    return DeadLetterType.of(row, loaders)


async def workers(info: Ctx) -> list[WorkerType]:
    """Worker processes alive, and those dead for less than ten minutes; any
    authenticated caller sees them all (they belong to no tenant)."""
    found = await info.context.services.workers.list(info.context.principal)
    return [WorkerType.of(w) for w in found]


async def metrics(info: Ctx, window_seconds: int | None = None) -> MetricsSnapshot:
    """The caller's metrics snapshot over the window (default 3600 s, 60 to 604800): the
    same fields as /api/observability/metrics."""
    snapshot = await _observability(info).metrics(
        info.context.principal, window_seconds=window_seconds
    )
    return MetricsSnapshot.of(snapshot)


async def metrics_series(
    info: Ctx, window_seconds: int | None = None, bucket_seconds: int | None = None
) -> MetricsSeries:
    """The caller's metrics over the window (default 3600 s) in buckets (default 60 s;
    at most 500 buckets): executions started, completed, failed, steps completed and
    their run-time p50/p95 per bucket."""
    series = await _observability(info).metrics_series(
        info.context.principal, window_seconds=window_seconds, bucket_seconds=bucket_seconds
    )
    return MetricsSeries.of(series)


async def audit_log(
    info: Ctx,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    first: int | None = None,
    after: str | None = None,
    actor: str | None = None,
) -> Connection[AuditEntry]:
    """The caller's audit entries, newest first, filtered (each filter an exact match;
    `actor` as entries name it: `apikey:<id>`, `jwt:<sub>`, `webhook:<trigger id>`...)."""
    page = await _observability(info).audit_log(
        info.context.principal, action=action, entity_type=entity_type, entity_id=entity_id,
        actor=actor, since=since, until=until, limit=first, cursor=after,
    )  # fmt: skip
    nodes = [
        AuditEntry(
            id=strawberry.ID(str(r.id)),
            actor=r.actor,
            action=r.action,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            data=cast(JSON, r.data),
            at=r.at,
        )
        for r in page.items
    ]
    return connection(page, nodes, [encode_audit_cursor(r.id) for r in page.items], after=after)


async def scheduler_status(info: Ctx) -> SchedulerStatus:
    """Running schedulers, the caller's cron triggers due, and the newest firings: the
    same fields as /api/scheduler/status."""
    status = await info.context.services.triggers.scheduler_status(info.context.principal)
    return SchedulerStatus.of(status)


async def retry_execution(
    info: Ctx, id: strawberry.ID, idempotency_key: str | None = None
) -> StartExecutionResult:
    """A new execution from a failed or cancelled one's failed step on, reusing the
    outputs of the steps that completed. A run is retried once (ConflictError after
    that); a repeat with the same idempotency key answers that retry (`created: false`)."""
    loaders = info.context.loaders()

    async def call() -> StartExecutionPayload:
        started = await info.context.services.executions.retry(
            loaders.principal, id, idempotency_key=idempotency_key
        )
        return StartExecutionPayload(
            execution=ExecutionType.of(started.execution, loaders), created=started.created
        )

    allowed = (NotFoundError, ConflictError, BackpressureError, ValidationError)
    return cast(StartExecutionResult, await outcome(allowed, call()))


async def create_trigger(
    info: Ctx,
    workflow_id: strawberry.ID,
    type: TriggerKind,
    config: JSON | None = None,
    enabled: bool = True,
    max_concurrent_runs: int | None = None,
    priority: int | None = None,
) -> CreateTriggerResult:
    """Create a trigger; a webhook trigger's secret is in the payload, this once.
    `maxConcurrentRuns`: at most that many of its runs RUNNING, the rest wait PENDING.
    `priority`: its runs' (-100 to 100, higher first; null: the definition's)."""

    async def call() -> CreateTriggerPayload:
        made = await info.context.services.triggers.create(
            info.context.principal, workflow_id, type.value, config, enabled=enabled,
            max_concurrent_runs=max_concurrent_runs, priority=priority,
        )  # fmt: skip
        return CreateTriggerPayload(trigger=TriggerType.of(made.trigger), secret=made.secret)

    return cast(CreateTriggerResult, await outcome((ValidationError, NotFoundError), call()))


async def update_trigger(
    info: Ctx,
    id: strawberry.ID,
    enabled: bool | None = None,
    config: JSON | None = None,
    max_concurrent_runs: int | None = strawberry.UNSET,
    priority: int | None = strawberry.UNSET,
) -> UpdateTriggerResult:
    """Enable, disable or reconfigure a trigger (the config is replaced as a whole);
    `maxConcurrentRuns` changes its limit (null: none; left out: as it is); `priority`
    its runs' priority (null: the definition's; left out: as it is)."""
    change = TriggerUpdate(enabled=enabled)
    if config is not None:
        change = replace(change, config=config)
    if max_concurrent_runs is not strawberry.UNSET:
        change = replace(change, max_concurrent_runs=max_concurrent_runs)
    if priority is not strawberry.UNSET:
        change = replace(change, priority=priority)

    async def call() -> TriggerPayload:
        row = await info.context.services.triggers.update(info.context.principal, id, change)
        return TriggerPayload(trigger=TriggerType.of(row))

    allowed = (ValidationError, NotFoundError, ConflictError)
    return cast(UpdateTriggerResult, await outcome(allowed, call()))


async def delete_trigger(info: Ctx, id: strawberry.ID) -> DeleteWorkflowResult:
    """Delete a trigger."""

    async def call() -> DeletedPayload:
        await info.context.services.triggers.delete(info.context.principal, id)
        return DeletedPayload(id=id)

    return cast(DeleteWorkflowResult, await outcome((NotFoundError,), call()))


async def rotate_trigger_secret(info: Ctx, id: strawberry.ID) -> RotateTriggerSecretResult:
    """Replace a webhook trigger's signing secret; the new one is in the payload, this
    once (a ConflictError for other trigger types)."""

    async def call() -> CreateTriggerPayload:
        made = await info.context.services.triggers.rotate_secret(info.context.principal, id)
        return CreateTriggerPayload(trigger=TriggerType.of(made.trigger), secret=made.secret)

    allowed = (NotFoundError, ConflictError)
    return cast(RotateTriggerSecretResult, await outcome(allowed, call()))


async def backfill_trigger(
    info: Ctx,
    id: strawberry.ID,
    from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
    to: datetime | None = None,
) -> BackfillTriggerResult:
    """Start a CRON trigger's runs for its fire times in the past range [from, to], each
    as the scheduler would have; a time fired already (by the scheduler or an earlier
    backfill) starts nothing again. Runs beyond its maxConcurrentRuns wait PENDING."""

    async def call() -> BackfillTriggerPayload:
        done = await info.context.services.backfills.backfill(info.context.principal, id, from_, to)
        return BackfillTriggerPayload(started=done.started, skipped=done.skipped)

    allowed = (ValidationError, NotFoundError, BackpressureError)
    return cast(BackfillTriggerResult, await outcome(allowed, call()))


async def redrive_dead_letter(info: Ctx, id: strawberry.ID) -> RedriveDeadLetterResult:
    """Resume a dead letter's execution from its failed step."""

    async def call() -> DeadLetterPayload:
        loaders = info.context.loaders()
        row = await info.context.services.dead_letters.redrive(loaders.principal, id)
        return DeadLetterPayload(dead_letter=DeadLetterType.of(row, loaders))

    allowed = (NotFoundError, ConflictError)
    return cast(RedriveDeadLetterResult, await outcome(allowed, call()))


async def queue_stats_updated(info: Ctx) -> AsyncGenerator[QueueStats, None]:
    """The caller's queue statistics now, then whenever they change (checked every two
    seconds)."""
    service = _observability(info)
    principal = info.context.principal
    last: QueueStats | None = None
    while True:
        current = _stats(await service.queue(principal))
        if current != last:
            last = current
            yield current
        await asyncio.sleep(QUEUE_STATS_SECONDS)
