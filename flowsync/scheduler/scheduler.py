"""The cron scheduler: one loop in every worker process and in `flowsync dev`.

Each tick it locks the enabled CRON triggers that are due (`FOR NO KEY UPDATE SKIP
LOCKED` over `ix_triggers_due`, so schedulers never wait on each other), works out their
fire times with the pure rules of `cron.py` (misfire policy included), and for each time
inserts a `trigger_firings` row keyed by (trigger, fire time). Only the transaction whose
insert went in starts the execution, in the same transaction that moves `next_run_at` on:
any number of schedulers fire each tick exactly once. A scheduler that dies mid-tick rolls
back, and another fires the same times.

Liveness: a scheduler runs its ticks on one dedicated connection whose
`application_name` is `flowsync-scheduler <id>`. `pg_stat_activity` then shows every
running scheduler (a dead one's connection disappears with it) and, in `query_start`, when
it last ticked. Nothing is written to keep this up to date. That connection carries the
lease's keepalives and idle-in-transaction timeout (`LeaseTimes.chore_limits`), so that
the server drops a host lost from the network within seconds, not the system's two
hours: its scheduler stops being counted, and a tick it was inside of rolls back,
releasing the triggers it had locked. Behind a transaction pooler the tick connection
goes to FLOWSYNC_LISTEN_DATABASE_URL (PostgreSQL itself) when given; without it, server
connections are shared and status may miss or outlive a scheduler.

A scheduler made from settings also runs retention (flowsync/retention) beside its ticks,
in a task and on a connection of its own, so that a long pass never delays a firing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from flowsync.config import Settings
from flowsync.db.connect import connect
from flowsync.db.pooler import Pooler, asyncpg_options
from flowsync.errors import FlowSyncError
from flowsync.eventloop import wait_set
from flowsync.retention.prune import RetentionLoop
from flowsync.scheduler.cron import due_firings, schedule_from_config
from flowsync.services.executions import ExecutionService
from flowsync.services.principal import Principal
from flowsync.services.trigger_input import render_input
from flowsync.worker.liveness import LeaseTimes
from flowsync.worker.queue import Connection, init_connection

log = logging.getLogger("flowsync.scheduler")

APPLICATION_PREFIX = "flowsync-scheduler "
# A scheduler whose last tick is older than this is reported as stalled.
STALL_SECONDS = 10.0
PRUNE_EVERY_SECONDS = 60.0
# Shortest pause after a tick that found due triggers locked by another scheduler.
_MIN_PAUSE = 0.02

_DB_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


# Errors after which the tick's connection cannot go on: the tick fails (and is retried).
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.InterfaceError)
# When a trigger whose firing failed unexpectedly is tried again.
RETRY_BROKEN = timedelta(seconds=60)


# Errors of one firing's statements that leave the transaction usable once its savepoint
# is rolled back; anything else (a lost connection) fails the whole tick, which is retried.
_FIRING_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


def _load_queries() -> dict[str, str]:
    text = Path(__file__).with_name("queries.sql").read_text()
    parts = re.split(r"^-- name: (\w+)\n", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


QUERIES = _load_queries()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def default_scheduler_id() -> str:
    """pid:random@host, unique per scheduler (the host last: names are cut at 63 bytes)."""
    return f"{os.getpid()}:{uuid.uuid4().hex[:6]}@{socket.gethostname()}"


def iso(instant: datetime) -> str:
    """An instant as ISO-8601 in UTC with a `Z`, as firings are keyed and reported."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Tick:
    """What one tick did: triggers claimed, executions started, and when the next
    trigger is due (None: no enabled cron trigger)."""

    claimed: int
    fired: int
    next_due: datetime | None


class Scheduler:
    """One process's scheduler. `run()` returns after `stop()`; `tick()` is one pass,
    for tests with a fixed clock."""

    def __init__(
        self,
        url: str,
        executions: ExecutionService,
        *,
        tick_seconds: float = 1.0,
        misfire_grace_seconds: float = 60.0,
        history_hours: float = 168.0,
        batch: int = 100,
        clock: Callable[[], datetime] = _utcnow,
        scheduler_id: str | None = None,
        owned_engine: AsyncEngine | None = None,
        retention: RetentionLoop | None = None,
        session_settings: Mapping[str, str] | None = None,
        pooler: Pooler = "none",
        direct_url: str | None = None,
    ):
        self.url = url
        # The tick connection's name is how status sees a scheduler, which a transaction
        # pooler's shared server connections would blur: given a direct URL (the LISTEN
        # one), the scheduler ticks there.
        self.tick_url = direct_url or url
        self.pooler: Pooler = "none" if direct_url else pooler
        self.executions = executions
        self.tick_seconds = tick_seconds
        self.grace = timedelta(seconds=misfire_grace_seconds)
        self.history = timedelta(hours=history_hours)
        self.batch = batch
        self.clock = clock
        self.scheduler_id = scheduler_id or default_scheduler_id()
        self._owned_engine = owned_engine
        self.retention = retention
        # Server settings of the scheduler's connection (its limits; see the docstring).
        self.session_settings = dict(session_settings or {})
        self._stopping = asyncio.Event()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        url: str,
        executions: ExecutionService,
        *,
        owned_engine: AsyncEngine | None = None,
    ) -> Scheduler:
        """A scheduler configured from settings, starting executions through `executions`,
        with retention beside it; both connections limited by the lease's times."""
        limits = LeaseTimes(settings.lease_seconds, settings.heartbeat_seconds).chore_limits()
        return cls(
            url,
            executions,
            tick_seconds=settings.scheduler_tick_seconds,
            misfire_grace_seconds=settings.scheduler_misfire_grace_seconds,
            history_hours=settings.scheduler_history_hours,
            owned_engine=owned_engine,
            retention=RetentionLoop.from_settings(settings, url, limits),
            session_settings=limits,
            pooler=settings.database_pooler,
            direct_url=(
                settings.listen_database_url if settings.database_pooler != "none" else None
            ),
        )

    @classmethod
    def standalone(cls, settings: Settings, url: str, pool: asyncpg.Pool) -> Scheduler:
        """A scheduler for a worker process, which has a pool but no service layer: it
        builds its own ExecutionService over `pool` (the SQLAlchemy engine it needs for
        reads connects only if used, and is disposed when `run()` returns)."""
        from flowsync.db.session import make_engine, make_sessionmaker
        from flowsync.engine.orchestrator import Orchestrator, WorkflowCache

        engine = make_engine(url, pool_size=1, max_overflow=0, pooler=settings.database_pooler)
        orchestrator = Orchestrator(
            pool, WorkflowCache(pool), worker_id="scheduler", lease_seconds=settings.lease_seconds
        )
        executions = ExecutionService(make_sessionmaker(engine), pool, orchestrator)
        return cls.from_settings(settings, url, executions, owned_engine=engine)

    @property
    def application_name(self) -> str:
        """The name of the scheduler's connection in pg_stat_activity (63 bytes at most)."""
        return (APPLICATION_PREFIX + self.scheduler_id)[:63]

    def stop(self) -> None:
        """Ask the loop to finish its tick and return."""
        self._stopping.set()

    async def connect(self) -> asyncpg.Connection:
        """The scheduler's own connection, named so that status can see it."""
        settings = {
            **self.session_settings,
            "application_name": self.application_name,
            "jit": "off",
            # As on the workers' connections: the claim is an index-ordered LIMIT
            # over ix_triggers_due whatever the table's statistics say.
            "enable_seqscan": "off",
            "enable_sort": "off",
        }
        conn: asyncpg.Connection = await connect(
            self.tick_url, timeout=10, **asyncpg_options(self.pooler, settings)
        )
        await init_connection(conn)
        return conn

    async def run(self) -> None:
        """Tick until stopped. Database errors and bugs are logged and retried with a
        backoff: the scheduler never takes its process down."""
        log.info("scheduler %s started", self.scheduler_id)
        conn: asyncpg.Connection | None = None
        backoff = 0.1
        pruned_at = time.monotonic()
        retention = (
            asyncio.create_task(self.retention.run()) if self.retention is not None else None
        )
        try:
            while not self._stopping.is_set():
                try:
                    if conn is None or conn.is_closed():
                        conn = await self.connect()
                    result = await self.tick(conn)
                    if time.monotonic() - pruned_at >= PRUNE_EVERY_SECONDS:
                        pruned_at = time.monotonic()
                        await self.prune(conn)
                    backoff = 0.1
                except Exception as exc:
                    if isinstance(exc, _DB_ERRORS):
                        log.warning("scheduler tick failed: %s; retrying in %.1fs", exc, backoff)
                    else:
                        log.exception("scheduler tick failed; retrying in %.1fs", backoff)
                    await _close(conn)
                    conn = None
                    await self._pause(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                await self._pause(self._delay(result))
        finally:
            if self.retention is not None and retention is not None:
                self.retention.stop()
                await retention
            await _close(conn)
            if self._owned_engine is not None:
                await self._owned_engine.dispose()
            log.info("scheduler %s stopped", self.scheduler_id)

    def _delay(self, result: Tick) -> float:
        if result.claimed >= self.batch:
            return 0.0  # more are due: go again at once
        if result.next_due is None:
            return self.tick_seconds
        until_due = (result.next_due - self.clock()).total_seconds()
        # Wake just after the next fire time, at most one tick from now.
        return min(self.tick_seconds, max(_MIN_PAUSE, until_due + 0.002))

    async def _pause(self, seconds: float) -> None:
        await wait_set(self._stopping, seconds)

    async def tick(self, conn: Connection) -> Tick:
        """Fire every trigger due now (up to one batch), in one transaction, each
        trigger in a savepoint of its own: an unexpected error in one (a bug, as the
        repeated DST hour's AssertionError was) is logged and that trigger tried again
        RETRY_BROKEN later, while the others fire; only a lost connection fails the
        tick (found by QA: any such error rolled the whole tick back, and every retry
        met it again, so no trigger of any owner fired)."""
        now = self.clock()
        fired = 0
        async with conn.transaction():
            rows = await conn.fetch(QUERIES["claim_due"], now, self.batch)
            for row in rows:
                try:
                    async with conn.transaction():
                        fired += await self._fire(conn, row, now)
                except _CONNECTION_ERRORS:
                    raise
                except Exception:
                    log.exception("cron trigger %s failed to fire; it is tried again in %s",
                                  row["id"], RETRY_BROKEN)  # fmt: skip
                    await conn.execute(
                        QUERIES["advance_trigger"], row["id"], now + RETRY_BROKEN, None
                    )
        next_due = await conn.fetchval(QUERIES["next_due"])
        return Tick(len(rows), fired, next_due)

    async def _fire(self, conn: Connection, row: asyncpg.Record, now: datetime) -> int:
        trigger_id: uuid.UUID = row["id"]
        try:
            schedule, misfire = schedule_from_config(row["config"] or {})
        except FlowSyncError as exc:
            log.error("cron trigger %s has a config that no longer parses: %s; it is "
                      "paused until it is updated", trigger_id, exc.message)  # fmt: skip
            await conn.execute(QUERIES["advance_trigger"], trigger_id, None, None)
            return 0
        plan = due_firings(schedule, misfire, row["next_run_at"], now, grace=self.grace)
        if plan.misfired:
            log.info("cron trigger %s missed fire times; policy %s fires %d now",
                     trigger_id, misfire.policy.value, len(plan.fire))  # fmt: skip
        principal = Principal(owner_id=row["owner_id"], actor=f"trigger:{trigger_id}")
        newest: datetime | None = None
        fired = 0
        for at in plan.fire:
            try:
                async with conn.transaction():  # a savepoint: one bad firing spoils no other
                    if await fire_at(
                        conn, self.executions, principal, trigger_id, row["workflow_id"],
                        row["config"] or {}, at,
                    ) is None:  # fmt: skip
                        continue  # another scheduler fired this time
                fired += 1
                newest = at
            except (FlowSyncError, *_FIRING_ERRORS) as exc:
                # The workflow was deleted under us, or its start was refused: this time
                # is dropped (its savepoint rolled back) and the schedule goes on.
                log.warning("cron trigger %s could not fire at %s: %s",
                            trigger_id, iso(at), exc)  # fmt: skip
        await conn.execute(QUERIES["advance_trigger"], trigger_id, plan.next_run_at, newest)
        return fired

    async def prune(self, conn: Connection) -> int:
        """Forget firings older than the history window (one scheduler at a time)."""
        async with conn.transaction():
            if not await conn.fetchval(QUERIES["prune_lock"]):
                return 0
            status = await conn.execute(
                QUERIES["prune_firings"], self.clock() - self.history, 10_000
            )
        return int(status.split()[-1])


def firing_key(trigger_id: uuid.UUID, at: datetime) -> str:
    """The idempotency key of a cron trigger's run for fire time `at`, whoever starts
    it (the scheduler or a backfill): one run per trigger and tick."""
    return f"cron:{trigger_id}:{iso(at)}"


async def fire_at(
    conn: Connection,
    executions: ExecutionService,
    principal: Principal,
    trigger_id: uuid.UUID,
    workflow_id: uuid.UUID,
    config: Mapping[str, Any],
    at: datetime,
) -> bool | None:
    """Fire a cron trigger for fire time `at` inside the caller's transaction: claim the
    time (a `trigger_firings` row) and start its run, with the time as `scheduledAt` and
    the key `firing_key`. True: started; None: the time was fired already (by a
    scheduler or a backfill), nothing started; False: its run was there (its firing row
    since pruned), nothing started."""
    if await conn.fetchval(QUERIES["insert_firing"], trigger_id, at) is None:
        return None
    scheduled = iso(at)
    data = {"type": "CRON", "scheduledAt": scheduled}
    execution_id, created = await executions.start_in(
        conn, principal, workflow_id, render_input(config, data, {}),
        idempotency_key=firing_key(trigger_id, at),
        trigger_id=trigger_id, trigger_type="CRON", trigger_data=data,
    )  # fmt: skip
    await conn.execute(QUERIES["set_firing_execution"], trigger_id, at, execution_id)
    return created


async def _close(conn: asyncpg.Connection | None) -> None:
    if conn is not None and not conn.is_closed():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 2)


@dataclass(frozen=True, slots=True)
class SchedulerInfo:
    """One running scheduler: its id, when it connected, when it last ticked, and
    whether that is recent (`stalled` after STALL_SECONDS without a tick)."""

    id: str
    started_at: datetime
    last_tick_at: datetime | None
    stalled: bool


@dataclass(frozen=True, slots=True)
class Firing:
    """One firing of a cron trigger: the scheduled time, when it was fired, and the
    execution it started."""

    trigger_id: uuid.UUID
    workflow_id: uuid.UUID
    scheduled_at: datetime
    fired_at: datetime
    execution_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class SchedulerStatus:
    """The schedulers running against this database (all owners share them), and the
    caller's cron triggers: how many are enabled, how many are due now (waiting for a
    scheduler: above zero for long means none is running), the next fire time, and the
    newest firings."""

    schedulers: list[SchedulerInfo]
    enabled_triggers: int
    due_triggers: int
    next_run_at: datetime | None
    last_firings: list[Firing]
    checked_at: datetime

    @property
    def running(self) -> int:
        """Schedulers that ticked within STALL_SECONDS."""
        return sum(1 for s in self.schedulers if not s.stalled)


async def read_status(
    conn: Connection, owner_id: uuid.UUID, *, firings: int = 20
) -> SchedulerStatus:
    """The scheduler status as one owner sees it."""
    rows = await conn.fetch(QUERIES["status_schedulers"])
    counts = await conn.fetchrow(QUERIES["status_triggers"], owner_id)
    recent = await conn.fetch(QUERIES["status_firings"], owner_id, firings)
    checked_at: datetime = rows[0]["now"] if rows else await conn.fetchval("SELECT now()")
    stall = timedelta(seconds=STALL_SECONDS)
    return SchedulerStatus(
        schedulers=[
            SchedulerInfo(
                id=r["id"],
                started_at=r["backend_start"],
                last_tick_at=r["query_start"],
                stalled=r["query_start"] is None or checked_at - r["query_start"] > stall,
            )
            for r in rows
        ],
        enabled_triggers=int(counts["enabled"]) if counts else 0,
        due_triggers=int(counts["due"]) if counts else 0,
        next_run_at=counts["next_run_at"] if counts else None,
        last_firings=[
            Firing(
                trigger_id=r["trigger_id"],
                workflow_id=r["workflow_id"],
                scheduled_at=r["fire_at"],
                fired_at=r["created_at"],
                execution_id=r["execution_id"],
            )
            for r in recent
        ],
        checked_at=checked_at,
    )
