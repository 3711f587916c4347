"""The job queue: named SQL from `queries.sql`, run over asyncpg.

A job is one step to run. Claims use `FOR UPDATE SKIP LOCKED` over the partial index
`ix_jobs_claim` and hand out a lease token; finishing a job requires the token, so a worker
whose lease expired cannot overwrite the worker that took over. NOTIFY only wakes workers;
they also poll, so a lost notification delays a step but never loses it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from flowsync import codec
from flowsync.config import to_asyncpg_dsn
from flowsync.db.connect import connect
from flowsync.db.pooler import Pooler, asyncpg_options
from flowsync.engine.graph import StepStatus
from flowsync.engine.transitions import StepRow
from flowsync.worker.liveness import LeaseTimes

JOBS_CHANNEL = "flowsync_jobs"
EVENTS_CHANNEL = "flowsync_events"
CANCEL_CHANNEL = "flowsync_cancel"


# A connection, whether direct or borrowed from a pool.
Connection = asyncpg.Connection | PoolConnectionProxy


def _load_queries() -> dict[str, str]:
    text = (Path(__file__).with_name("queries.sql")).read_text()
    parts = re.split(r"^-- name: (\w+)\n", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


QUERIES = _load_queries()


def _dumps(value: object) -> str:
    # flowsync.codec: NUL refused (UnstorableValue), integers past 64 bits as doubles.
    return codec.stored_text(value)


def json_texts(values: Iterable[Any]) -> list[str | None]:
    """JSON values for a `$n::text[]::jsonb[]` parameter, each encoded here (None stays
    SQL NULL). Given to a jsonb[] parameter as they are, asyncpg would read a JSON list
    as one more dimension of the array: an output `[1, 2]` would become two values."""
    return [None if value is None else _dumps(value) for value in values]


async def init_connection(conn: asyncpg.Connection) -> None:
    """JSON in and out of jsonb/json columns as Python values."""
    for kind in ("jsonb", "json"):
        await conn.set_type_codec(
            kind, encoder=_dumps, decoder=codec.from_stored, schema="pg_catalog", format="text"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection goes back to the pool with. asyncpg first rolls back a
    transaction left open (and drops listeners); its default reset then runs
    `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every release: one
    more round trip per engine transaction, ~7 % of a worker's CPU. FlowSync's pooled
    connections never change session state (no SET, session advisory locks, LISTEN
    or held cursors: listeners have connections of their own), so there is nothing to
    reset."""


# Each host of a multi-host URL tried on its own (see flowsync.db.connect); typed loosely
# because the stubs' protocol spells out every keyword of asyncpg.connect.
_connect_each_host: Any = connect


async def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    application_name: str = "flowsync",
    worker: bool | LeaseTimes = False,
    pooler: Pooler = "none",
) -> asyncpg.Pool:
    """A connection pool with FlowSync's codecs; `application_name` tells its connections
    apart in pg_stat_activity. A `worker` pool plans every statement through indexes and
    carries the session limits of the worker's lease (`LeaseTimes`; True: the default
    lease), so that a worker lost mid-transaction holds nothing for longer than that."""
    settings = {
        "jit": "off",
        # Every statement is prepared once per connection; custom plans for the engine's
        # array-driven statements cost more to make than they save.
        "plan_cache_mode": "force_generic_plan",
        "application_name": application_name,
    }
    if worker is not False:
        # A claim planned from the statistics of a table analyzed while empty becomes a
        # scan and sort of the whole backlog; every worker statement has an index to use.
        settings |= {"enable_seqscan": "off", "enable_sort": "off"}
        # No engine statement waits long for a lock, and no engine transaction idles:
        # past these, the other side is lost or stuck, and an error (retried) beats a
        # stall that outlasts the leases (see flowsync.worker.liveness).
        settings |= (LeaseTimes() if worker is True else worker).server_settings()
    pool = await asyncpg.create_pool(
        to_asyncpg_dsn(url),
        min_size=min_size,
        max_size=max_size,
        init=init_connection,
        reset=_keep_session,
        connect=_connect_each_host,
        **asyncpg_options(pooler, settings),
    )
    assert pool is not None
    return pool


def steps_from_arrays(row: asyncpg.Record) -> dict[str, StepRow]:
    """A run's steps as a statement read them in arrays (ids, node_ids, statuses,
    branches), by node id."""
    return {
        node_id: StepRow(
            step_id, StepStatus(status), branch if isinstance(branch, bool | str) else None
        )
        for step_id, node_id, status, branch in zip(
            row["ids"], row["node_ids"], row["statuses"], row["branches"], strict=True
        )
    }


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job this worker holds, with everything its step needs to run."""

    job_id: int
    lease_token: uuid.UUID
    attempts: int
    max_attempts: int
    execution_id: uuid.UUID
    step_id: uuid.UUID
    node_id: str
    node_type: str
    step_input: Any
    owner_id: uuid.UUID
    workflow_id: uuid.UUID
    workflow_version_id: uuid.UUID
    version: int
    execution_input: Any
    trigger_type: str
    trigger_data: Any
    execution_started_at: datetime
    # The outputs of every step completed before this one, when the worker that handed
    # this job over knew them exactly (a chain); None: read them from the table.
    known_outputs: dict[str, Any] | None = None
    # The run's newest sequence and its steps after the write that handed this job over,
    # when this step was then the only one queued or running (see runs_alone).
    known_steps: tuple[int, dict[str, StepRow]] | None = None
    # When it was claimed; `start_pending`: its step's start (RUNNING, the attempt, a
    # step.started event) is not written yet, and goes with whatever is written next.
    claimed_at: datetime | None = None
    start_pending: bool = False
    # The run's trace (the W3C traceparent of its execution span; None: not traced), and
    # when the job fell due (its queue wait, traced, runs from then to `claimed_at`).
    trace_context: str | None = None
    available_at: datetime | None = None

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> ClaimedJob:
        """A job as claim_jobs hands it out: its start is still to be written; the run's
        steps come with it when it was the run's only job."""
        local = ("known_outputs", "known_steps", "start_pending")
        fields = {n: row[n] for n in cls.__slots__ if n not in local}
        known = None
        if row["ids"] is not None:
            known = (int(row["known_sequence"]), steps_from_arrays(row))
        return cls(**fields, known_steps=known, start_pending=True)


class Queue:
    """Claim, heartbeat, release and reclaim jobs for one worker."""

    def __init__(self, pool: asyncpg.Pool, worker_id: str, lease_seconds: float):
        self.pool = pool
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds

    async def claim(self, limit: int) -> list[ClaimedJob]:
        """Up to `limit` due jobs, leased to this worker, their steps marked RUNNING."""
        if limit <= 0:
            return []
        rows = await self.pool.fetch(
            QUERIES["claim_jobs"], limit, self.lease_seconds, self.worker_id
        )
        return [ClaimedJob.from_record(r) for r in rows]

    async def extend(
        self, tokens: list[uuid.UUID], conn: Connection | None = None
    ) -> set[uuid.UUID]:
        """Extend the leases still held; returns the tokens that are still valid. Never
        waits for a row lock (a locked job's lease is left as it is, and counted valid).
        `conn`: the worker's own connection for chores, so that a heartbeat never waits
        for the pool either."""
        if not tokens:
            return set()
        source = self.pool if conn is None else conn
        rows = await source.fetch(QUERIES["extend_leases"], tokens, self.lease_seconds)
        return {r["lease_token"] for r in rows}

    async def release(self, jobs: list[ClaimedJob]) -> int:
        """Give jobs back unfinished (shutdown, or a backlog's steps never started),
        waking idle workers; how many were still this worker's (a lost lease's is not)."""
        return int(await self.pool.fetchval(
            QUERIES["release_jobs"], [j.job_id for j in jobs], [j.lease_token for j in jobs]
        ))  # fmt: skip

    async def reclaim_expired(self, conn: Connection | None = None) -> int:
        """Make jobs with an expired lease claimable again; returns how many."""
        source = self.pool if conn is None else conn
        rows = await source.fetch(QUERIES["reclaim_expired"])
        if rows:
            await source.execute(QUERIES["notify_jobs"])
        return len(rows)

    async def next_due(self) -> float | None:
        """Seconds until the earliest unclaimed job falls due, by the database's clock (0
        or less: one is due already, fallen due after the last claim); None when none."""
        value = await self.pool.fetchval(QUERIES["next_due"])
        return None if value is None else float(value)
