"""Observability for every face: a metrics snapshot, the audit log, execution timelines,
queue figures and health. Reads only; every figure is scoped to the caller's owner except
the global queue depth and the health of the process.

Costs are bounded: the snapshot reads index ranges under a LIMIT (see
`observability.sql`), the audit log is keyset-paginated by id, and health answers within
`HEALTH_TIMEOUT_SECONDS` whatever the database does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.db.compat import judge
from flowsync.db.migrate import script_directory
from flowsync.db.models import AuditEntry, Execution, StepExecution
from flowsync.errors import InvalidInput, Problem
from flowsync.services.dead_letters import DeadLetterService, QueueStats
from flowsync.services.executions import STATUSES, ExecutionService
from flowsync.services.pagination import Page, cursor_items, page_size, utc_time
from flowsync.services.principal import Principal, require

if TYPE_CHECKING:
    from flowsync.services.container import Services

__all__ = [
    "AuditRecord",
    "Health",
    "MetricsBucket",
    "MetricsSeries",
    "MetricsSnapshot",
    "NodeLatency",
    "ObservabilityService",
    "QueueReport",
    "StepTiming",
    "Timeline",
]

log = logging.getLogger("flowsync.observability")

DEFAULT_WINDOW_SECONDS = 3600
MAX_WINDOW_SECONDS = 7 * 24 * 3600
THROUGHPUT_SECONDS = 60
# The snapshot's bounds: executions and steps read at most (the newest first).
MAX_EXECUTIONS_SAMPLED = 10_000
MAX_STEPS_SAMPLED = 50_000
HEALTH_TIMEOUT_SECONDS = 2.0
# The most buckets one metrics series may have.
MAX_BUCKETS = 500
DEFAULT_BUCKET_SECONDS = 60


def _load_queries() -> dict[str, str]:
    text = Path(__file__).with_name("observability.sql").read_text()
    parts = re.split(r"^-- name: (\w+)\n", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


QUERIES = _load_queries()


def _ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class NodeLatency:
    """Percentiles of one node type's completed steps, in milliseconds: run time
    (started → finished) and queue wait (queued → started; None when unknown)."""

    node_type: str
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    wait_p50_ms: float | None
    wait_p95_ms: float | None
    wait_p99_ms: float | None


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """The caller's figures over the last `window_seconds`: executions created in the
    window by status, step latency per node type over those executions' completed steps,
    and steps completed in the last minute. `sampled` is True when a bound was reached
    (the newest MAX_EXECUTIONS_SAMPLED executions or MAX_STEPS_SAMPLED steps were used)."""

    window_seconds: int
    generated_at: datetime
    executions_by_status: dict[str, int]
    step_latency: list[NodeLatency]
    steps_completed_last_minute: int
    sampled: bool

    @property
    def executions_total(self) -> int:
        """Executions created in the window (up to the sampling bound)."""
        return sum(self.executions_by_status.values())


@dataclass(frozen=True, slots=True)
class MetricsBucket:
    """One bucket of a metrics series, from `start` for the series' `bucket_seconds`:
    executions created (started), completed and failed in it, steps completed in it,
    and those steps' run-time percentiles in milliseconds (None without steps)."""

    start: datetime
    executions_started: int
    executions_completed: int
    executions_failed: int
    steps_completed: int
    step_duration_p50_ms: float | None
    step_duration_p95_ms: float | None


@dataclass(frozen=True, slots=True)
class MetricsSeries:
    """The caller's figures over the last `window_seconds` in buckets of `bucket_seconds`,
    oldest first, every bucket present (zeros included). Buckets are aligned to whole
    multiples of `bucket_seconds` (UTC), the last holds `generated_at`; so they cover the
    window rounded to whole buckets. Like the snapshot, the figures are over the
    executions created in the series' span (the newest MAX_EXECUTIONS_SAMPLED) and their
    completed steps (MAX_STEPS_SAMPLED at most): `sampled` says a bound was reached."""

    window_seconds: int
    bucket_seconds: int
    generated_at: datetime
    sampled: bool
    buckets: list[MetricsBucket]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audit entry: who (`actor`) did what (`action`) to which object, and when."""

    id: int
    actor: str
    action: str
    entity_type: str
    entity_id: str
    data: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class StepTiming:
    """One step on an execution's timeline. `attempts` counts the attempts made;
    `wait_ms` is queued → started, `duration_ms` started → finished."""

    step_id: uuid.UUID
    node_id: str
    node_type: str
    status: str
    attempts: int
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    wait_ms: int | None
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class Timeline:
    """An execution's timing: its own times and each step's, in the order they queued."""

    execution_id: uuid.UUID
    workflow_id: uuid.UUID
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    steps: list[StepTiming]


@dataclass(frozen=True, slots=True)
class QueueReport:
    """The caller's jobs (`stats`) and the queue as a whole: jobs due and waiting over
    all owners (counted up to `max_depth + 1`), the backpressure limit, and whether new
    executions are being refused because of it."""

    stats: QueueStats
    global_depth: int
    max_depth: int

    @property
    def shedding_load(self) -> bool:
        """Whether starts are refused now (503 with Retry-After)."""
        return self.global_depth > self.max_depth


@dataclass(frozen=True, slots=True)
class Health:
    """Liveness is implied by an answer. Readiness: the database answers and its schema is
    at the migrations' head. `listener` is "ok", "disconnected" or "disabled": without it
    live updates fall back to polling, so it degrades the process but does not make it
    unready."""

    database: str
    migrations: str
    listener: str

    @property
    def ready(self) -> bool:
        """Whether this process can serve requests."""
        return self.database == "ok" and self.migrations == "ok"

    @property
    def unready(self) -> list[str]:
        """What keeps an API process from serving everything, subscriptions included:
        the names among database, migrations and listener that are not ok (a process
        that runs no listener, "disabled", has none to wait for). Empty: ready."""
        checks = {"database": self.database, "migrations": self.migrations,
                  "listener": "ok" if self.listener == "disabled" else self.listener}  # fmt: skip
        return [name for name, state in checks.items() if state != "ok"]

    @property
    def status(self) -> str:
        """ok, degraded (ready, listener down) or unavailable (not ready)."""
        if not self.ready:
            return "unavailable"
        return "ok" if self.listener in ("ok", "disabled") else "degraded"


def encode_audit_cursor(entry_id: int) -> str:
    """An opaque cursor after audit entry `entry_id`."""
    return base64.urlsafe_b64encode(json.dumps(["a", entry_id]).encode()).decode().rstrip("=")


def decode_audit_cursor(cursor: str) -> int:
    """The audit entry id a cursor points after; InvalidInput for anything else."""
    items = cursor_items(cursor)
    if len(items) == 2 and items[0] == "a":
        entry_id = items[1]
        # An id column is a bigint: anything past it is no cursor of ours.
        if isinstance(entry_id, int) and not isinstance(entry_id, bool) and 0 <= entry_id < 2**63:
            return entry_id
    raise InvalidInput(
        "The cursor is not valid; use a cursor from a previous page.",
        [Problem("cursor", "not a cursor returned by this API")],
    )


def check_window(seconds: int | None) -> int:
    """A snapshot window in seconds: 60 to MAX_WINDOW_SECONDS, default one hour."""
    if seconds is None:
        return DEFAULT_WINDOW_SECONDS
    if not 60 <= seconds <= MAX_WINDOW_SECONDS:
        raise InvalidInput(
            f"The window must be 60 to {MAX_WINDOW_SECONDS} seconds.",
            [Problem("windowSeconds", f"must be 60 to {MAX_WINDOW_SECONDS}, got {seconds}")],
        )
    return seconds


def check_buckets(window: int, bucket_seconds: int | None) -> int:
    """A series' bucket size in seconds: 1 to the window, and at most MAX_BUCKETS
    buckets in the window; default a minute, or what MAX_BUCKETS needs for a long
    window."""
    if bucket_seconds is None:
        return max(DEFAULT_BUCKET_SECONDS, math.ceil(window / MAX_BUCKETS))
    if not 1 <= bucket_seconds <= window:
        raise InvalidInput(
            f"The bucket must be 1 to {window} seconds (the window).",
            [Problem("bucketSeconds", f"must be 1 to {window}, got {bucket_seconds}")],
        )
    count = math.ceil(window / bucket_seconds)
    if count > MAX_BUCKETS:
        least = math.ceil(window / MAX_BUCKETS)
        raise InvalidInput(
            f"{window} seconds in buckets of {bucket_seconds} make {count} buckets; the "
            f"limit is {MAX_BUCKETS}. Use bucketSeconds of {least} or more, or a shorter "
            "window.",
            [Problem("bucketSeconds", f"must be at least {least} for a {window} s window")],
        )
    return bucket_seconds


def _percentiles(values: list[float] | None) -> tuple[float, float, float] | None:
    if not values or len(values) != 3 or any(v is None for v in values):
        return None
    return (round(values[0], 3), round(values[1], 3), round(values[2], 3))


class ObservabilityService:
    """Metrics snapshot, audit log, timelines, queue report and health."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pool: asyncpg.Pool,
        executions: ExecutionService,
        dead_letters: DeadLetterService,
        *,
        max_queue_depth: int,
    ):
        self._sessions = sessions
        self._pool = pool
        self._executions = executions
        self._dead_letters = dead_letters
        self._max_depth = max_queue_depth

    @classmethod
    def of(cls, services: Services) -> ObservabilityService:
        """The service over an assembled service layer (it holds no state of its own)."""
        return cls(
            services.sessions,
            services.pool,
            services.executions,
            services.dead_letters,
            max_queue_depth=services.settings.max_queue_depth,
        )

    async def metrics(
        self, principal: Principal, *, window_seconds: int | None = None
    ) -> MetricsSnapshot:
        """The caller's metrics snapshot over the window (default one hour)."""
        require(principal, "ObservabilityService.metrics")
        window = check_window(window_seconds)
        async with self._pool.acquire() as conn:
            statuses = await conn.fetch(
                QUERIES["executions_by_status"], principal.owner_id, window,
                MAX_EXECUTIONS_SAMPLED,
            )  # fmt: skip
            latency = await conn.fetch(
                QUERIES["step_latency"], principal.owner_id, window, MAX_EXECUTIONS_SAMPLED,
                MAX_STEPS_SAMPLED,
            )  # fmt: skip
            completed = await conn.fetchval(
                QUERIES["steps_completed_since"], principal.owner_id, THROUGHPUT_SECONDS
            )
            now: datetime = await conn.fetchval("SELECT now()")
        by_status = dict.fromkeys(STATUSES, 0)
        for row in statuses:
            by_status[row["status"]] = row["n"]
        nodes: list[NodeLatency] = []
        for row in latency:
            run = _percentiles(row["run"])
            if run is None:
                continue
            wait = _percentiles(row["wait"])
            nodes.append(
                NodeLatency(
                    node_type=row["node_type"], count=row["n"],
                    p50_ms=run[0], p95_ms=run[1], p99_ms=run[2],
                    max_ms=round(float(row["run_max"]), 3),
                    wait_p50_ms=wait[0] if wait else None,
                    wait_p95_ms=wait[1] if wait else None,
                    wait_p99_ms=wait[2] if wait else None,
                )
            )  # fmt: skip
        sampled = (
            sum(by_status.values()) >= MAX_EXECUTIONS_SAMPLED
            or sum(n.count for n in nodes) >= MAX_STEPS_SAMPLED
        )
        return MetricsSnapshot(window, now, by_status, nodes, int(completed or 0), sampled)

    async def metrics_series(
        self,
        principal: Principal,
        *,
        window_seconds: int | None = None,
        bucket_seconds: int | None = None,
    ) -> MetricsSeries:
        """The caller's metrics over the window (default one hour) in buckets (default a
        minute), at most MAX_BUCKETS of them; one bounded statement (see
        `observability.sql`, metrics_series)."""
        require(principal, "ObservabilityService.metrics_series")
        window = check_window(window_seconds)
        size = check_buckets(window, bucket_seconds)
        count = math.ceil(window / size)
        async with self._pool.acquire() as conn:
            now: datetime = await conn.fetchval("SELECT now()")
            last = math.floor(now.timestamp() / size) * size
            first = datetime.fromtimestamp(last - (count - 1) * size, UTC)
            rows = await conn.fetch(
                QUERIES["metrics_series"], principal.owner_id, first, float(size),
                MAX_EXECUTIONS_SAMPLED, MAX_STEPS_SAMPLED,
            )  # fmt: skip
        found = {row["bucket"]: row for row in rows}
        buckets: list[MetricsBucket] = []
        for i in range(count):
            row = found.get(i)
            run = row["run"] if row is not None else None
            buckets.append(
                MetricsBucket(
                    start=first + timedelta(seconds=i * size),
                    executions_started=row["started"] if row else 0,
                    executions_completed=row["completed"] if row else 0,
                    executions_failed=row["failed"] if row else 0,
                    steps_completed=row["steps"] if row else 0,
                    step_duration_p50_ms=round(run[0], 3) if run else None,
                    step_duration_p95_ms=round(run[1], 3) if run else None,
                )
            )
        sampled = (
            sum(b.executions_started for b in buckets) >= MAX_EXECUTIONS_SAMPLED
            or sum(b.steps_completed for b in buckets) >= MAX_STEPS_SAMPLED
        )
        return MetricsSeries(window, size, now, sampled, buckets)

    async def audit_log(
        self,
        principal: Principal,
        *,
        action: str | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[AuditRecord]:
        """The caller's audit entries, newest first, filtered by exact action, entity type,
        entity id, actor (`apikey:<id>`, `jwt:<sub>`, `webhook:<trigger id>`...) and a time
        range (`since` inclusive, `until` exclusive, each with its UTC offset: InvalidInput
        naming the one without). The cursor is the last entry's id, so
        pages never overlap or skip, whatever is written meanwhile. An actor's entries read
        through `ix_audit_log_actor`."""
        require(principal, "ObservabilityService.audit_log")
        size = page_size(limit)
        if entity_id is not None and entity_type is None:
            raise InvalidInput(
                "Filtering by entity id needs the entity type too.",
                [Problem("entityType", "is required with entityId")],
            )
        since = None if since is None else utc_time(since, path="since")
        until = None if until is None else utc_time(until, path="until")
        if since is not None and until is not None and since >= until:
            raise InvalidInput(
                "The time range is empty: `since` must be before `until`.",
                [Problem("since", "must be before until")],
            )
        stmt = select(AuditEntry).where(AuditEntry.owner_id == principal.owner_id)
        if action is not None:
            stmt = stmt.where(AuditEntry.action == action)
        if entity_type is not None:
            stmt = stmt.where(AuditEntry.entity_type == entity_type)
        if entity_id is not None:
            stmt = stmt.where(AuditEntry.entity_id == entity_id)
        if actor is not None:
            stmt = stmt.where(AuditEntry.actor == actor)
        if since is not None:
            stmt = stmt.where(AuditEntry.at >= _aware(since))
        if until is not None:
            stmt = stmt.where(AuditEntry.at < _aware(until))
        if cursor is not None:
            stmt = stmt.where(AuditEntry.id < decode_audit_cursor(cursor))
        stmt = stmt.order_by(AuditEntry.id.desc()).limit(size + 1)
        async with self._sessions() as session:
            rows = list((await session.execute(stmt)).scalars())
        more = len(rows) > size
        rows = rows[:size]
        records = [
            AuditRecord(r.id, r.actor, r.action, r.entity_type, r.entity_id, r.data or {}, r.at)
            for r in rows
        ]
        return Page(records, encode_audit_cursor(rows[-1].id) if more else None)

    async def audit_entries(
        self, principal: Principal, entry_ids: Sequence[int]
    ) -> dict[int, AuditRecord]:
        """Several of the caller's audit entries by id, in one query; others are left
        out (for global object identification, `Query.node`)."""
        require(principal, "ObservabilityService.audit_entries")
        if not entry_ids:
            return {}
        stmt = select(AuditEntry).where(
            AuditEntry.owner_id == principal.owner_id, AuditEntry.id.in_(list(entry_ids))
        )
        async with self._sessions() as session:
            rows = list((await session.execute(stmt)).scalars())
        return {
            r.id: AuditRecord(
                r.id, r.actor, r.action, r.entity_type, r.entity_id, r.data or {}, r.at
            )
            for r in rows
        }

    async def timeline(self, principal: Principal, execution_id: object) -> Timeline:
        """The execution's and its steps' times (NotFound also for another owner's)."""
        require(principal, "ObservabilityService.timeline")
        execution, steps = await self._executions.snapshot(principal, execution_id)
        return timeline_of(execution, steps)

    async def queue(self, principal: Principal) -> QueueReport:
        """The caller's queue statistics and the global depth against the limit."""
        require(principal, "ObservabilityService.queue")
        stats = await self._dead_letters.queue_stats(principal)
        depth = await self._pool.fetchval(QUERIES["global_depth"], self._max_depth + 1)
        return QueueReport(stats, int(depth or 0), self._max_depth)

    async def health(self, listener_connected: bool | None) -> Health:
        """Readiness within HEALTH_TIMEOUT_SECONDS; never raises. `listener_connected` is
        the live-event listener's state (None: this process runs none)."""
        listener = (
            "disabled" if listener_connected is None
            else "ok" if listener_connected else "disconnected"
        )  # fmt: skip
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                async with self._pool.acquire() as conn:
                    row = await conn.fetchrow(QUERIES["schema_revision"])
        except asyncpg.UndefinedTableError:
            return Health("ok", "not migrated", listener)
        except Exception as exc:  # health reports any failure; it never raises
            log.warning("health check failed: %s", exc)
            return Health("unreachable", "unknown", listener)
        if row is None:
            return Health("ok", "not migrated", listener)
        # A newer schema that this release's code may run on (a rolling upgrade) is ok.
        state = judge(script_directory(), row["version_num"], row["mark"])
        return Health("ok", "ok" if state.usable else f"at {state.revision}", listener)


def timeline_of(execution: Execution, steps: list[StepExecution]) -> Timeline:
    """A timeline from an execution and its steps (as `ExecutionService.snapshot` reads)."""
    return Timeline(
        execution_id=execution.id,
        workflow_id=execution.workflow_id,
        status=execution.status,
        created_at=execution.created_at,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
        duration_ms=_ms(execution.started_at, execution.finished_at),
        steps=[
            StepTiming(
                step_id=s.id, node_id=s.node_id, node_type=s.node_type, status=s.status,
                attempts=s.attempt, queued_at=s.queued_at, started_at=s.started_at,
                finished_at=s.finished_at, wait_ms=_ms(s.queued_at, s.started_at),
                duration_ms=_ms(s.started_at, s.finished_at),
            )
            for s in steps
        ],
    )  # fmt: skip


def _aware(instant: datetime) -> datetime:
    """A time without a zone is taken as UTC."""
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)
