"""The execution service: start, read, list and cancel executions, for every face."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.db.models import Execution, ExecutionEvent, StepExecution, Workflow
from flowsync.engine.orchestrator import Orchestrator
from flowsync.errors import InvalidInput, NotFound, Problem
from flowsync.services.pagination import Page, decode_cursor, encode_cursor, page_size
from flowsync.services.principal import Principal

STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
MAX_INPUT_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 255

_AUDIT_SQL = """
INSERT INTO audit_log (owner_id, actor, action, entity_type, entity_id, data)
VALUES ($1, $2, $3, 'execution', $4, $5)
"""


def parse_uuid(value: object, what: str) -> uuid.UUID:
    """A user-given id; a malformed one is simply not found."""
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound(f"No {what} with id {value!r}.") from exc


@dataclass(frozen=True, slots=True)
class Started:
    """The result of a start: the execution, and whether this call created it."""

    execution: Execution
    created: bool


class ExecutionService:
    """Executions of the caller's workflows."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pool: asyncpg.Pool,
        orchestrator: Orchestrator,
    ):
        self._sessions = sessions
        self._pool = pool
        self._orchestrator = orchestrator

    async def start(
        self,
        principal: Principal,
        workflow_id: object,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        trigger_id: uuid.UUID | None = None,
        trigger_type: str = "MANUAL",
        trigger_data: dict[str, Any] | None = None,
    ) -> Started:
        """Start the workflow's current version with `input`. A repeated idempotency key
        returns the first execution (created=False) and starts nothing."""
        wid = parse_uuid(workflow_id, "workflow")
        if input is None:
            input = {}
        size = len(orjson.dumps(input))
        if size > MAX_INPUT_BYTES:
            raise InvalidInput(
                f"The input is {size} bytes of JSON; the limit is {MAX_INPUT_BYTES}.",
                [Problem("$.input", "too large")],
            )
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY_LENGTH:
            raise InvalidInput(
                "An idempotency key must be 1 to 255 characters.",
                [Problem("idempotencyKey", "must be 1 to 255 characters")],
            )
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT w.id, w.version, v.id AS version_id
                     FROM workflows w
                     JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.version
                    WHERE w.id = $1 AND w.owner_id = $2 AND w.deleted_at IS NULL""",
                wid,
                principal.owner_id,
            )
            if row is None:
                raise NotFound(f"No workflow with id {workflow_id}.")
            execution_id, created = await self._orchestrator.start(
                conn,
                owner_id=principal.owner_id,
                workflow_id=wid,
                version_id=row["version_id"],
                version=row["version"],
                input=input,
                idempotency_key=idempotency_key,
                trigger_id=trigger_id,
                trigger_type=trigger_type,
                trigger_data=trigger_data,
            )
            if created:
                await conn.execute(
                    _AUDIT_SQL, principal.owner_id, principal.actor, "execution.started",
                    str(execution_id), {"workflowId": str(wid), "version": row["version"],
                                        "trigger": trigger_type},
                )  # fmt: skip
        return Started(await self.get(principal, execution_id), created)

    async def cancel(self, principal: Principal, execution_id: object) -> Execution:
        """Cancel a running execution (Conflict when it already ended)."""
        eid = parse_uuid(execution_id, "execution")
        async with self._pool.acquire() as conn, conn.transaction():
            owner = await conn.fetchval("SELECT owner_id FROM executions WHERE id = $1", eid)
            if owner != principal.owner_id:
                raise NotFound(f"No execution with id {execution_id}.")
            await self._orchestrator.cancel(conn, eid, f"cancelled by {principal.actor}")
            await conn.execute(
                _AUDIT_SQL, principal.owner_id, principal.actor, "execution.cancelled",
                str(eid), {},
            )  # fmt: skip
        return await self.get(principal, eid)

    async def get(self, principal: Principal, execution_id: object) -> Execution:
        """The execution, or NotFound (also for another owner's)."""
        eid = parse_uuid(execution_id, "execution")
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(Execution).where(
                        Execution.id == eid, Execution.owner_id == principal.owner_id
                    )
                )
            ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"No execution with id {execution_id}.")
        return found

    async def steps(
        self, principal: Principal, execution_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[StepExecution]]:
        """The steps of several executions in one query (for DataLoaders), each list in
        the order the steps were queued; other owners' executions are left out."""
        out: dict[uuid.UUID, list[StepExecution]] = {eid: [] for eid in execution_ids}
        async with self._sessions() as session:
            rows = await session.execute(
                select(StepExecution)
                .join(Execution, Execution.id == StepExecution.execution_id)
                .where(
                    StepExecution.execution_id.in_(list(execution_ids)),
                    Execution.owner_id == principal.owner_id,
                )
                .order_by(
                    StepExecution.execution_id,
                    StepExecution.queued_at.asc().nulls_last(),
                    StepExecution.node_id,
                )
            )
            for step in rows.scalars():
                out[step.execution_id].append(step)
        return out

    async def list(
        self,
        principal: Principal,
        *,
        workflow_id: object = None,
        status: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Execution]:
        """The caller's executions, newest first, optionally of one workflow or status."""
        size = page_size(limit)
        stmt = select(Execution).where(Execution.owner_id == principal.owner_id)
        if workflow_id is not None:
            stmt = stmt.where(Execution.workflow_id == parse_uuid(workflow_id, "workflow"))
        if status is not None:
            if status not in STATUSES:
                raise InvalidInput(
                    f"Unknown status {status!r}.",
                    [Problem("status", f"must be one of {', '.join(STATUSES)}")],
                )
            stmt = stmt.where(Execution.status == status)
        if cursor is not None:
            after = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    Execution.created_at < after.created_at,
                    and_(
                        Execution.created_at == after.created_at,
                        Execution.id < uuid.UUID(after.id),
                    ),
                )
            )
        stmt = stmt.order_by(Execution.created_at.desc(), Execution.id.desc()).limit(size + 1)
        async with self._sessions() as session:
            rows = list((await session.execute(stmt)).scalars())
        more = len(rows) > size
        rows = rows[:size]
        return Page(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)

    async def events(
        self, principal: Principal, execution_id: object, *, after: int = 0, limit: int = 1000
    ) -> builtins.list[ExecutionEvent]:
        """The execution's events with a sequence number above `after`, in order."""
        eid = parse_uuid(execution_id, "execution")
        await self.get(principal, eid)
        async with self._sessions() as session:
            rows = await session.execute(
                select(ExecutionEvent)
                .where(ExecutionEvent.execution_id == eid, ExecutionEvent.sequence > after)
                .order_by(ExecutionEvent.sequence)
                .limit(limit)
            )
            return list(rows.scalars())


__all__ = ["ExecutionService", "Started", "Workflow"]
