"""Retention: history older than its own window is deleted, a little at a time.

Three windows, each off (0: kept forever) unless set: finished runs with their steps,
events and dead letters (`FLOWSYNC_RETAIN_EXECUTIONS_DAYS`, counted from when the run
finished), dead letters (`FLOWSYNC_RETAIN_DEAD_LETTERS_DAYS`, from when they were made)
and audit entries (`FLOWSYNC_RETAIN_AUDIT_DAYS`). Webhook signatures are deleted once
expired: they only guard against replays of deliveries that are stale anyway.

A pass deletes in batches of `batch` rows, each its own short transaction, oldest first,
through indexes on the rows' ages. It never touches a run that is PENDING or RUNNING,
nor one that still has a job (the queue's rows are never locked), and skips a run whose
row another transaction holds. One process prunes at a time: the pass holds a session
advisory lock, and a process that cannot take it skips the pass. Behind a transaction
pooler (FLOWSYNC_DATABASE_POOLER=transaction) the same lock is held instead by a
transaction left open on a second connection for the pass: a session lock there could be
released on another server connection than the one that took it, and stay taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from flowsync.config import Settings
from flowsync.db.connect import connect as connect_to
from flowsync.db.pooler import Pooler, asyncpg_options
from flowsync.eventloop import wait_set
from flowsync.retention.upkeep import QueueUpkeep
from flowsync.worker.queue import Connection

log = logging.getLogger("flowsync.retention")

BATCH = 500
APPLICATION_NAME = "flowsync-retention"

_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _load_queries() -> dict[str, str]:
    text = Path(__file__).with_name("queries.sql").read_text()
    parts = re.split(r"^-- name: (\w+)\n", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


QUERIES = _load_queries()


def _days(days: int) -> timedelta | None:
    return timedelta(days=days) if days > 0 else None


@dataclass(frozen=True, slots=True)
class Policy:
    """How long each kind of history is kept; None: forever."""

    executions: timedelta | None = None
    dead_letters: timedelta | None = None
    audit: timedelta | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """The windows of `FLOWSYNC_RETAIN_*_DAYS`."""
        return cls(
            executions=_days(settings.retain_executions_days),
            dead_letters=_days(settings.retain_dead_letters_days),
            audit=_days(settings.retain_audit_days),
        )


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """The instants before which each kind goes (None: kept forever); `now` is the
    database's clock when the pass began, also the cutoff of expired signatures."""

    now: datetime
    executions: datetime | None
    dead_letters: datetime | None
    audit: datetime | None

    @classmethod
    def at(cls, now: datetime, policy: Policy) -> Cutoffs:
        """The cutoffs of `policy` at `now`."""

        def before(window: timedelta | None) -> datetime | None:
            return None if window is None else now - window

        return cls(now, before(policy.executions), before(policy.dead_letters),
                   before(policy.audit))  # fmt: skip


@dataclass(slots=True)
class Pruned:
    """What a pass deleted (or, for a dry run, would delete): runs, and with them their
    steps, events and dead letters; dead letters of kept runs; audit entries; expired
    webhook signatures."""

    cutoffs: Cutoffs
    executions: int = 0
    steps: int = 0
    events: int = 0
    run_dead_letters: int = 0
    dead_letters: int = 0
    audit: int = 0
    signatures: int = 0
    batches: int = field(default=0, compare=False)

    @property
    def total(self) -> int:
        """Every row counted, cascades included."""
        return (self.executions + self.steps + self.events + self.run_dead_letters
                + self.dead_letters + self.audit + self.signatures)  # fmt: skip


class Pruner:
    """Deletes what `policy` no longer keeps. `preview()` counts, `prune()` deletes."""

    def __init__(self, policy: Policy, *, batch: int = BATCH):
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.policy = policy
        self.batch = batch

    async def cutoffs(self, conn: Connection) -> Cutoffs:
        """The cutoffs now, by the database's clock."""
        now: datetime = await conn.fetchval(QUERIES["now"])
        return Cutoffs.at(now, self.policy)

    async def preview(self, conn: Connection) -> Pruned:
        """What `prune()` would delete now; changes nothing, takes no lock."""
        cut = await self.cutoffs(conn)
        seen = Pruned(cut)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            if cut.dead_letters is not None:
                seen.dead_letters = await conn.fetchval(
                    QUERIES["count_dead_letters"], cut.dead_letters
                )
            if cut.executions is not None:
                row = await conn.fetchrow(
                    QUERIES["count_executions"], cut.executions, cut.dead_letters
                )
                _add_runs(seen, row)
            if cut.audit is not None:
                seen.audit = await conn.fetchval(QUERIES["count_audit"], cut.audit)
            seen.signatures = await conn.fetchval(QUERIES["count_signatures"], cut.now)
        return seen

    async def prune(
        self,
        conn: Connection,
        stopping: asyncio.Event | None = None,
        *,
        guard: asyncpg.Connection | None = None,
    ) -> Pruned | None:
        """Delete everything past its window, batch by batch; None when another process
        holds the retention lock (nothing is done). `conn` must not be in a transaction:
        each batch commits on its own. Once `stopping` is set, no further batch starts
        (what was deleted so far stays deleted and is counted). With a `guard`
        connection, the lock is a transaction's on it, open for the pass (for a
        transaction pooler, where `conn`'s session is not one server session)."""
        if guard is not None:
            async with guard.transaction():
                if not await guard.fetchval(QUERIES["lock_in_transaction"]):
                    return None
                return await self._pass(conn, stopping or asyncio.Event())
        if not await conn.fetchval(QUERIES["lock"]):
            return None
        try:
            return await self._pass(conn, stopping or asyncio.Event())
        finally:
            if not conn.is_closed():
                await conn.fetchval(QUERIES["unlock"])

    async def _pass(self, conn: Connection, stop: asyncio.Event) -> Pruned:
        cut = await self.cutoffs(conn)
        done = Pruned(cut)
        # Dead letters first: a run kept only for its dead letters may go right after.
        if cut.dead_letters is not None:
            done.dead_letters = await self._drain(
                conn, done, QUERIES["prune_dead_letters"], cut.dead_letters, stop
            )
        if cut.executions is not None:
            await self._drain_runs(conn, done, cut.executions, cut.dead_letters, stop)
        if cut.audit is not None:
            done.audit = await self._drain(conn, done, QUERIES["prune_audit"], cut.audit, stop)
        done.signatures = await self._drain(conn, done, QUERIES["prune_signatures"], cut.now, stop)
        return done

    async def _drain(
        self,
        conn: Connection,
        done: Pruned,
        query: str,
        cutoff: datetime,
        stop: asyncio.Event,
    ) -> int:
        deleted = 0
        while True:
            status = await conn.execute(query, cutoff, self.batch)
            done.batches += 1
            count = int(status.split()[-1])
            deleted += count
            if count < self.batch or stop.is_set():
                return deleted
            await asyncio.sleep(0)  # let the process's other work run between batches

    async def _drain_runs(
        self,
        conn: Connection,
        done: Pruned,
        cutoff: datetime,
        dead_letters: datetime | None,
        stop: asyncio.Event,
    ) -> None:
        while True:
            row = await conn.fetchrow(QUERIES["prune_executions"], cutoff, self.batch, dead_letters)
            done.batches += 1
            _add_runs(done, row)
            if row is None or row["executions"] < self.batch or stop.is_set():
                return
            await asyncio.sleep(0)


def _add_runs(into: Pruned, row: asyncpg.Record | None) -> None:
    if row is None:
        return
    into.executions += row["executions"]
    into.steps += row["steps"]
    into.events += row["events"]
    into.run_dead_letters += row["dead_letters"]


class RetentionLoop:
    """Runs a pass of `pruner` every `interval` seconds (the first at once) on a
    connection of its own, until `stop()`, and, with an `upkeep`, its check of the
    queue's and the history's tables every `upkeep.interval` seconds
    (flowsync/retention/upkeep.py). Errors are logged and the next pass retries:
    retention never takes its process down."""

    def __init__(
        self,
        url: str,
        pruner: Pruner,
        interval: float,
        session_settings: Mapping[str, str] | None = None,
        pooler: Pooler = "none",
        upkeep: QueueUpkeep | None = None,
    ):
        self.url = url
        self.pruner = pruner
        self.interval = interval
        # Server settings of its connection (LeaseTimes.chore_limits in a worker): the
        # lock of a pass on a host lost from the network is released within seconds.
        self.session_settings = dict(session_settings or {})
        self.pooler: Pooler = pooler
        self.upkeep = upkeep
        self._stopping = asyncio.Event()

    @classmethod
    def from_settings(
        cls, settings: Settings, url: str, session_settings: Mapping[str, str] | None = None
    ) -> RetentionLoop:
        """The loop of `FLOWSYNC_RETAIN_*`, `FLOWSYNC_RETENTION_INTERVAL_SECONDS` and
        `FLOWSYNC_QUEUE_VACUUM_INTERVAL_SECONDS`."""
        vacuum = settings.queue_vacuum_interval_seconds
        return cls(url, Pruner(Policy.from_settings(settings)),
                   settings.retention_interval_seconds, session_settings,
                   settings.database_pooler,
                   QueueUpkeep(vacuum) if vacuum > 0 else None)  # fmt: skip

    def stop(self) -> None:
        """Ask the loop to return (after the batch in progress)."""
        self._stopping.set()

    async def run(self) -> None:
        """Prune every interval, and keep the tables (upkeep), until stopped."""
        conn: asyncpg.Connection | None = None
        guard: asyncpg.Connection | None = None
        clock = asyncio.get_running_loop().time
        next_prune = next_upkeep = clock()
        try:
            while not self._stopping.is_set():
                try:
                    if conn is None or conn.is_closed():
                        conn = await connect(self.url, self.pooler, self.session_settings)
                    if clock() >= next_prune:
                        next_prune = clock() + self.interval
                        if self.pooler == "transaction" and (guard is None or guard.is_closed()):
                            guard = await connect(self.url, self.pooler, self.session_settings)
                        await self._prune(conn, guard)
                    if self.upkeep is not None and clock() >= next_upkeep:
                        next_upkeep = clock() + self.upkeep.interval
                        await self.upkeep.run(conn)
                except _DB_ERRORS as exc:
                    log.warning("retention pass failed: %s; retrying in %.0fs", exc, self.interval)
                    await _close(conn)
                    await _close(guard)
                    conn = guard = None
                except Exception:
                    log.exception("retention pass failed; retrying in %.0fs", self.interval)
                    await _close(conn)
                    await _close(guard)
                    conn = guard = None
                due = next_prune if self.upkeep is None else min(next_prune, next_upkeep)
                await wait_set(self._stopping, max(due - clock(), 0.0))
        finally:
            await _close(conn)
            await _close(guard)

    async def _prune(self, conn: asyncpg.Connection, guard: asyncpg.Connection | None) -> None:
        """One pass, logged when it deleted anything."""
        done = await self.pruner.prune(conn, self._stopping, guard=guard)
        if done is not None and done.total:
            log.info(
                "retention deleted %d runs (%d steps, %d events, %d dead letters), "
                "%d dead letters, %d audit entries, %d webhook signatures",
                done.executions, done.steps, done.events, done.run_dead_letters,
                done.dead_letters, done.audit, done.signatures,
            )  # fmt: skip


async def connect(
    url: str, pooler: Pooler, session_settings: Mapping[str, str] | None = None
) -> asyncpg.Connection:
    """A connection of retention's own (through `pooler`), with `session_settings`
    (those a pooler passes on)."""
    options = asyncpg_options(
        pooler, {**(session_settings or {}), "application_name": APPLICATION_NAME}
    )
    conn: asyncpg.Connection = await connect_to(url, timeout=10, **options)
    return conn


async def _close(conn: asyncpg.Connection | None) -> None:
    if conn is not None and not conn.is_closed():
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 2)
