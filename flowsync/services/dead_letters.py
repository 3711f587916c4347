"""Dead letters and queue statistics: what failed for good, and how full the queue is."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.db.models import DeadLetter
from flowsync.engine.orchestrator import Orchestrator
from flowsync.errors import Conflict, NotFound
from flowsync.services import audit
from flowsync.services.inputs import parse_id
from flowsync.services.pagination import Page, decode_cursor, encode_cursor, page_size
from flowsync.services.principal import Principal, require

_STATS_SQL = """
SELECT count(*) FILTER (WHERE j.lease_token IS NULL AND j.run_at <= now()) AS queued,
       count(*) FILTER (WHERE j.lease_token IS NULL AND j.run_at > now()) AS scheduled,
       count(*) FILTER (WHERE j.lease_token IS NOT NULL) AS running,
       (SELECT count(*) FROM dead_letters d
         WHERE d.owner_id = $1 AND d.redriven_at IS NULL) AS dead_letters
  FROM jobs j JOIN executions e ON e.id = j.execution_id
 WHERE e.owner_id = $1
"""


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The caller's jobs: due and waiting, scheduled for later (timers and retries),
    running, and dead letters not yet redriven."""

    queued: int
    scheduled: int
    running: int
    dead_letters: int


class DeadLetterService:
    """List and redrive dead letters; queue statistics."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pool: asyncpg.Pool,
        orchestrator: Orchestrator,
    ):
        self._sessions = sessions
        self._pool = pool
        self._orchestrator = orchestrator

    async def list(
        self,
        principal: Principal,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        include_redriven: bool = False,
        execution_id: object = None,
    ) -> Page[DeadLetter]:
        """The caller's dead letters, newest first: those not yet redriven, or all with
        `include_redriven`; with `execution_id`, only that execution's (none for a
        malformed id or another owner's execution)."""
        require(principal, "DeadLetterService.list")
        size = page_size(limit)
        stmt = select(DeadLetter).where(DeadLetter.owner_id == principal.owner_id)
        if execution_id is not None:
            try:
                eid = parse_id(execution_id, "execution")
            except NotFound:  # a malformed id, like another owner's, has nothing to list
                eid = uuid.UUID(int=0)
            stmt = stmt.where(DeadLetter.execution_id == eid)
        if not include_redriven:
            stmt = stmt.where(DeadLetter.redriven_at.is_(None))
        if cursor is not None:
            after = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    DeadLetter.created_at < after.created_at,
                    and_(
                        DeadLetter.created_at == after.created_at,
                        DeadLetter.id < uuid.UUID(after.id),
                    ),
                )
            )
        stmt = stmt.order_by(DeadLetter.created_at.desc(), DeadLetter.id.desc()).limit(size + 1)
        async with self._sessions() as session:
            rows = list((await session.execute(stmt)).scalars())
        more = len(rows) > size
        rows = rows[:size]
        return Page(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)

    async def get_many(
        self, principal: Principal, dead_letter_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, DeadLetter]:
        """Several of the caller's dead letters by id, in one query; others are left out
        (for `Query.node`)."""
        require(principal, "DeadLetterService.get_many")
        if not dead_letter_ids:
            return {}
        stmt = select(DeadLetter).where(
            DeadLetter.id.in_(list(dead_letter_ids)), DeadLetter.owner_id == principal.owner_id
        )
        async with self._sessions() as session:
            return {d.id: d for d in (await session.execute(stmt)).scalars()}

    async def get(self, principal: Principal, dead_letter_id: object) -> DeadLetter:
        """One dead letter, or NotFound (also for another owner's)."""
        require(principal, "DeadLetterService.get")
        did = parse_id(dead_letter_id, "dead letter")
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(DeadLetter).where(
                        DeadLetter.id == did, DeadLetter.owner_id == principal.owner_id
                    )
                )
            ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"No dead letter with id {dead_letter_id}.")
        return found

    async def redrive(self, principal: Principal, dead_letter_id: object) -> DeadLetter:
        """Resume the dead letter's execution from its failed step (with a fresh
        attempt budget). Conflict when it was redriven already or the execution is no
        longer failed."""
        require(principal, "DeadLetterService.redrive")
        letter = await self.get(principal, dead_letter_id)
        async with self._pool.acquire() as conn, conn.transaction():
            marked = await conn.fetchval(
                "UPDATE dead_letters SET redriven_at = now() "
                "WHERE id = $1 AND redriven_at IS NULL RETURNING id",
                letter.id,
            )
            if marked is None:
                raise Conflict("This dead letter was redriven already.")
            await self._orchestrator.resume(
                conn, letter.execution_id, f"dead letter {letter.id} redriven by {principal.actor}"
            )
            await audit.record_in(
                conn, principal, "dead_letter.redriven", "dead_letter", letter.id,
                {"executionId": str(letter.execution_id), "nodeId": letter.node_id},
            )  # fmt: skip
        return await self.get(principal, letter.id)

    async def queue_stats(self, principal: Principal) -> QueueStats:
        """Counts of the caller's jobs by state."""
        require(principal, "DeadLetterService.queue_stats")
        row = await self._pool.fetchrow(_STATS_SQL, principal.owner_id)
        assert row is not None
        return QueueStats(row["queued"], row["scheduled"], row["running"], row["dead_letters"])
