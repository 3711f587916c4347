"""GraphQL types for triggers, dead letters, the queue, metrics, the audit log and the
scheduler: thin wrappers over the service layer's rows and reports."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from flowsync.db.models import DeadLetter, Trigger
from flowsync.resolvers.loaders import Loaders
from flowsync.scheduler.scheduler import SchedulerStatus as SchedulerStatusRow
from flowsync.schema.results import (
    BackpressureError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from flowsync.schema.types import (
    Connection,
    ExecutionStatus,
    ExecutionType,
    Node,
    WorkflowType,
    connection,
)
from flowsync.services.observability import MetricsSeries as MetricsSeriesRow
from flowsync.services.observability import MetricsSnapshot as MetricsSnapshotRow
from flowsync.services.pagination import Page, encode_cursor
from flowsync.services.triggers import DEFAULT_FIRE_TIMES
from flowsync.services.workers import WorkerInfo


@strawberry.enum
class TriggerKind(enum.Enum):
    """How executions of a workflow start."""

    MANUAL = "MANUAL"
    WEBHOOK = "WEBHOOK"
    CRON = "CRON"


@strawberry.type(name="Trigger")
class TriggerType(Node):
    """A manual, webhook or cron trigger of one of the caller's workflows."""

    id: strawberry.ID
    workflow_id: strawberry.ID
    type: TriggerKind
    enabled: bool
    config: JSON
    row: strawberry.Private[Trigger]
    next_run_at: datetime | None
    last_fired_at: datetime | None
    max_concurrent_runs: int | None = strawberry.field(
        description="At most this many of the trigger's runs RUNNING at once; the rest wait "
        "PENDING, holding no worker, and start as earlier ones end (null: no limit)."
    )
    created_at: datetime
    updated_at: datetime
    loaders: strawberry.Private[Loaders | None] = None

    @strawberry.field
    def priority(self) -> int | None:
        """The priority (-100 to 100, higher first) of the runs it starts, unless a start
        gives one (null: the definition's)."""
        return self.row.priority

    @strawberry.field
    def webhook_url(self, info: Info[Any, None]) -> str | None:
        """Where a WEBHOOK trigger receives deliveries (on FLOWSYNC_WEBHOOK_BASE_URL when
        the server has one); null for the other types."""
        url: str | None = info.context.services.triggers.webhook_url(self.row)
        return url

    @strawberry.field
    def next_fire_times(
        self, info: Info[Any, None], count: int | None = DEFAULT_FIRE_TIMES
    ) -> list[datetime]:
        """For an enabled CRON trigger, the next `count` (1 to MAX_FIRE_TIMES; null: the
        default) times it fires after now, oldest first, as UTC instants: the
        scheduler's schedule in the trigger's time zone. Empty for other types and
        disabled triggers."""
        times: list[datetime] = info.context.services.triggers.next_fire_times(self.row, count)
        return times

    @strawberry.field
    async def workflow(self, info: Info[Any, None]) -> WorkflowType | None:
        """The workflow it starts (null once the workflow was deleted); batched: one
        query for every trigger of the operation."""
        loaders = self.loaders if self.loaders is not None else info.context.loaders()
        row = await loaders.workflow.load(self.row.workflow_id)
        return WorkflowType.of(row, loaders) if row is not None else None

    @classmethod
    def of(cls, row: Trigger, loaders: Loaders | None = None) -> TriggerType:
        return cls(
            id=strawberry.ID(str(row.id)),
            workflow_id=strawberry.ID(str(row.workflow_id)),
            type=TriggerKind(row.type),
            enabled=row.enabled,
            config=cast(JSON, row.config),
            row=row,
            next_run_at=row.next_run_at,
            last_fired_at=row.last_fired_at,
            max_concurrent_runs=row.max_concurrent_runs,
            created_at=row.created_at,
            updated_at=row.updated_at,
            loaders=loaders,
        )

    @staticmethod
    def page(page: Page[Trigger], loaders: Loaders, after: str | None) -> Connection[TriggerType]:
        return connection(
            page,
            [TriggerType.of(r, loaders) for r in page.items],
            [encode_cursor(r.created_at, r.id) for r in page.items],
            after=after,
        )


@strawberry.type(name="DeadLetter")
class DeadLetterType(Node):
    """A job that failed for good; redriving it resumes its execution from that step."""

    id: strawberry.ID
    execution_id: strawberry.ID
    node_id: str
    attempts: int
    error: JSON
    payload: JSON
    created_at: datetime
    redriven_at: datetime | None
    loaders: strawberry.Private[Loaders]

    @strawberry.field
    async def execution(self) -> ExecutionType | None:
        """The execution whose step failed (batched: one query for a whole page)."""
        row = await self.loaders.execution.load(uuid.UUID(self.execution_id))
        return ExecutionType.of(row, self.loaders) if row is not None else None

    @classmethod
    def of(cls, row: DeadLetter, loaders: Loaders) -> DeadLetterType:
        return cls(
            id=strawberry.ID(str(row.id)),
            execution_id=strawberry.ID(str(row.execution_id)),
            node_id=row.node_id,
            attempts=row.attempts,
            error=cast(JSON, row.error),
            payload=cast(JSON, row.payload),
            created_at=row.created_at,
            redriven_at=row.redriven_at,
            loaders=loaders,
        )

    @staticmethod
    def page(
        page: Page[DeadLetter], loaders: Loaders, after: str | None
    ) -> Connection[DeadLetterType]:
        return connection(
            page,
            [DeadLetterType.of(r, loaders) for r in page.items],
            [encode_cursor(r.created_at, r.id) for r in page.items],
            after=after,
        )


@strawberry.type
class QueueStats:
    """The caller's jobs by state, and the queue's global depth against its limit."""

    queued: int
    scheduled: int
    running: int
    dead_letters: int
    global_depth: int
    max_depth: int
    shedding_load: bool


@strawberry.type(name="Worker")
class WorkerType:
    """A worker process (shared by every tenant: hostnames and pids, nothing it runs).
    `alive` is false once it missed three heartbeats; dead ones are listed for ten
    minutes after their last heartbeat."""

    id: strawberry.ID
    hostname: str
    pid: int
    concurrency: int
    running: int = strawberry.field(description="Steps in flight at its last heartbeat.")
    heartbeat_seconds: float
    started_at: datetime
    last_heartbeat_at: datetime
    alive: bool

    @classmethod
    def of(cls, row: WorkerInfo) -> WorkerType:
        return cls(
            id=strawberry.ID(row.id), hostname=row.hostname, pid=row.pid,
            concurrency=row.concurrency, running=row.running,
            heartbeat_seconds=row.heartbeat_seconds, started_at=row.started_at,
            last_heartbeat_at=row.last_heartbeat_at, alive=row.alive,
        )  # fmt: skip


@strawberry.type
class MetricsBucket:
    """One bucket of `metricsSeries`, from `start` for the series' `bucketSeconds`."""

    start: datetime
    executions_started: int = strawberry.field(description="Executions created in it.")
    executions_completed: int
    executions_failed: int
    steps_completed: int
    step_duration_p50_ms: float | None = strawberry.field(
        description="Run time (started to finished) of its completed steps; null: none."
    )
    step_duration_p95_ms: float | None


@strawberry.type
class MetricsSeries:
    """The caller's figures in buckets, oldest first, every bucket present. Buckets are
    aligned to multiples of `bucketSeconds` (UTC); the last holds `generatedAt`.
    `sampled`: a bound was reached (the newest 10,000 executions, 50,000 steps)."""

    window_seconds: int
    bucket_seconds: int
    generated_at: datetime
    sampled: bool
    buckets: list[MetricsBucket]

    @classmethod
    def of(cls, row: MetricsSeriesRow) -> MetricsSeries:
        return cls(
            window_seconds=row.window_seconds,
            bucket_seconds=row.bucket_seconds,
            generated_at=row.generated_at,
            sampled=row.sampled,
            buckets=[
                MetricsBucket(
                    start=b.start, executions_started=b.executions_started,
                    executions_completed=b.executions_completed,
                    executions_failed=b.executions_failed, steps_completed=b.steps_completed,
                    step_duration_p50_ms=b.step_duration_p50_ms,
                    step_duration_p95_ms=b.step_duration_p95_ms,
                )
                for b in row.buckets
            ],
        )  # fmt: skip


@strawberry.type
class StatusCount:
    """How many executions are in one status."""

    status: ExecutionStatus
    count: int


@strawberry.type
class NodeLatency:
    """Percentiles of one node type's completed steps in milliseconds: run time (started
    to finished) and queue wait (queued to started; null when unknown)."""

    node_type: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    wait_p50_ms: float | None
    wait_p95_ms: float | None
    wait_p99_ms: float | None


@strawberry.type
class MetricsSnapshot:
    """The caller's figures over the last `windowSeconds`: the executions created in it
    by status (every status, in lifecycle order, zeros included) and in all, step
    latency per node type over their completed steps, and the steps completed in the
    last minute. `sampled`: a bound was reached (the newest 10,000 executions, 50,000
    steps). REST's `/api/observability/metrics` has the same fields."""

    window_seconds: int
    generated_at: datetime
    sampled: bool
    executions_total: int
    executions_by_status: list[StatusCount]
    steps_completed_last_minute: int
    step_latency: list[NodeLatency]

    @classmethod
    def of(cls, row: MetricsSnapshotRow) -> MetricsSnapshot:
        return cls(
            window_seconds=row.window_seconds,
            generated_at=row.generated_at,
            sampled=row.sampled,
            executions_total=row.executions_total,
            executions_by_status=[
                StatusCount(status=ExecutionStatus(s), count=n)
                for s, n in row.executions_by_status.items()
            ],
            steps_completed_last_minute=row.steps_completed_last_minute,
            step_latency=[
                NodeLatency(
                    node_type=n.node_type, count=n.count, p50_ms=n.p50_ms, p95_ms=n.p95_ms,
                    p99_ms=n.p99_ms, max_ms=n.max_ms, wait_p50_ms=n.wait_p50_ms,
                    wait_p95_ms=n.wait_p95_ms, wait_p99_ms=n.wait_p99_ms,
                )
                for n in row.step_latency
            ],
        )  # fmt: skip


@strawberry.type
class SchedulerInfo:
    """A running scheduler: its id, when it connected, when it last ticked, and
    whether that is long ago (`stalled`: no tick for ten seconds)."""

    id: str
    started_at: datetime
    last_tick_at: datetime | None
    stalled: bool


@strawberry.type
class TriggerFiring:
    """One firing of a cron trigger: the time it was due, when it fired, and the
    execution it started (null once that was deleted)."""

    trigger_id: strawberry.ID
    workflow_id: strawberry.ID
    scheduled_at: datetime
    fired_at: datetime
    execution_id: strawberry.ID | None


@strawberry.type
class SchedulerStatus:
    """The schedulers running against this database (shared by every tenant) and the
    caller's cron triggers: how many are enabled, how many are due now (above zero for
    long: no scheduler runs), the next fire time, the newest firings (at most 20).
    `running` counts the schedulers that are not stalled. REST's
    `/api/scheduler/status` has the same fields."""

    running: int
    schedulers: list[SchedulerInfo]
    enabled_triggers: int
    due_triggers: int
    next_run_at: datetime | None
    last_firings: list[TriggerFiring]
    checked_at: datetime

    @classmethod
    def of(cls, row: SchedulerStatusRow) -> SchedulerStatus:
        return cls(
            running=row.running,
            schedulers=[
                SchedulerInfo(id=s.id, started_at=s.started_at, last_tick_at=s.last_tick_at,
                              stalled=s.stalled)
                for s in row.schedulers
            ],
            enabled_triggers=row.enabled_triggers,
            due_triggers=row.due_triggers,
            next_run_at=row.next_run_at,
            last_firings=[
                TriggerFiring(
                    trigger_id=strawberry.ID(str(f.trigger_id)),
                    workflow_id=strawberry.ID(str(f.workflow_id)),
                    scheduled_at=f.scheduled_at, fired_at=f.fired_at,
                    execution_id=None if f.execution_id is None
                    else strawberry.ID(str(f.execution_id)),
                )
                for f in row.last_firings
            ],
            checked_at=row.checked_at,
        )  # fmt: skip


@strawberry.type
class AuditEntry(Node):
    """Who did what to which object, and when."""

    id: strawberry.ID
    actor: str
    action: str
    entity_type: str
    entity_id: str
    data: JSON
    at: datetime


@strawberry.type
class TriggerPayload:
    trigger: TriggerType


@strawberry.type
class CreateTriggerPayload:
    trigger: TriggerType
    secret: str | None = strawberry.field(
        description="A webhook trigger's signing secret: shown on creation and rotation."
    )


@strawberry.type
class BackfillTriggerPayload:
    started: int = strawberry.field(
        description="Runs started (some may wait PENDING behind maxConcurrentRuns)."
    )
    skipped: int = strawberry.field(
        description="Fire times fired already (by the scheduler or an earlier backfill): "
        "nothing started for them."
    )


@strawberry.type
class DeadLetterPayload:
    dead_letter: DeadLetterType


CreateTriggerResult = Annotated[
    CreateTriggerPayload | ValidationError | NotFoundError,
    strawberry.union("CreateTriggerResult"),
]
UpdateTriggerResult = Annotated[
    TriggerPayload | ValidationError | NotFoundError | ConflictError,
    strawberry.union("UpdateTriggerResult"),
]
BackfillTriggerResult = Annotated[
    BackfillTriggerPayload | ValidationError | NotFoundError | BackpressureError,
    strawberry.union("BackfillTriggerResult"),
]
RotateTriggerSecretResult = Annotated[
    CreateTriggerPayload | NotFoundError | ConflictError,
    strawberry.union("RotateTriggerSecretResult"),
]
RedriveDeadLetterResult = Annotated[
    DeadLetterPayload | NotFoundError | ConflictError,
    strawberry.union("RedriveDeadLetterResult"),
]
