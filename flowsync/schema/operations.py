"""GraphQL types for triggers, dead letters, the queue, metrics, the audit log and the
scheduler: thin wrappers over the service layer's rows and reports."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from flowsync.db.models import DeadLetter, Trigger
from flowsync.resolvers.loaders import Loaders
from flowsync.schema.results import ConflictError, NotFoundError, ValidationError
from flowsync.schema.types import Connection, ExecutionType, WorkflowType, connection
from flowsync.services.observability import MetricsSeries as MetricsSeriesRow
from flowsync.services.pagination import Page, encode_cursor
from flowsync.services.workers import WorkerInfo


def to_json(value: Any) -> JSON:
    """A service report (dataclasses, datetimes, ids) as a JSON value with camelCase keys."""

    def convert(item: Any) -> Any:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return {
                _camel(f.name): convert(getattr(item, f.name)) for f in dataclasses.fields(item)
            }
        if isinstance(item, dict):
            return {str(k): convert(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [convert(v) for v in item]
        if isinstance(item, datetime):
            return item.isoformat()
        if isinstance(item, uuid.UUID):
            return str(item)
        if isinstance(item, enum.Enum):
            return item.value
        return item

    return cast(JSON, convert(value))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@strawberry.enum
class TriggerKind(enum.Enum):
    """How executions of a workflow start."""

    MANUAL = "MANUAL"
    WEBHOOK = "WEBHOOK"
    CRON = "CRON"


@strawberry.type(name="Trigger")
class TriggerType:
    """A manual, webhook or cron trigger of one of the caller's workflows."""

    id: strawberry.ID
    workflow_id: strawberry.ID
    type: TriggerKind
    enabled: bool
    config: JSON
    row: strawberry.Private[Trigger]
    next_run_at: datetime | None
    last_fired_at: datetime | None
    created_at: datetime
    updated_at: datetime
    loaders: strawberry.Private[Loaders | None] = None

    @strawberry.field
    def webhook_url(self, info: Info[Any, None]) -> str | None:
        """Where a WEBHOOK trigger receives deliveries (on FLOWSYNC_WEBHOOK_BASE_URL when
        the server has one); null for the other types."""
        url: str | None = info.context.services.triggers.webhook_url(self.row)
        return url

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
class DeadLetterType:
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
class AuditEntry:
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
RotateTriggerSecretResult = Annotated[
    CreateTriggerPayload | NotFoundError | ConflictError,
    strawberry.union("RotateTriggerSecretResult"),
]
RedriveDeadLetterResult = Annotated[
    DeadLetterPayload | NotFoundError | ConflictError,
    strawberry.union("RedriveDeadLetterResult"),
]
