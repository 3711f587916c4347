"""A worker host lost in the middle of a transaction (its connection stays open, like a
host that vanished from the network): its runs go on elsewhere within about a lease, and
the healthy workers' leases do not wait behind its locks.

A host is "lost" here by SIGSTOP: the process keeps its sockets, answers TCP keepalives,
and sends nothing more, so its session stays `idle in transaction` holding row locks,
which is what a host gone from the network looks like to PostgreSQL until keepalives
(or the session timeouts) end it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from flowsync.config import to_asyncpg_dsn
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.graphs import chain
from tests.support.processes import Process
from tests.support.workers import finished, wait_until

pytestmark = pytest.mark.slow

# Long enough that the test can stop a worker while it waits for a lock (its lock
# timeout is a fraction of the lease), short enough to wait for.
LEASE = 4


@pytest.fixture
async def admin(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to look at pg_stat_activity with, outside any transaction (inside
    one, the statistics views keep showing the transaction's first look)."""
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def holder(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection that holds row locks, as a host lost with a run locked would."""
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        yield conn
    finally:
        await conn.close()


async def _waiting_worker_backend(admin: asyncpg.Connection) -> int | None:
    """The backend of a worker's pool waiting for a row lock, if any."""
    pid: int | None = await admin.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'flowsync-worker' AND wait_event_type = 'Lock'"
    )
    return pid


async def test_a_worker_lost_inside_a_transaction_holds_its_runs_for_about_a_lease(
    services: Services,
    me: Principal,
    workers: Callable[..., Process],
    admin: asyncpg.Connection,
    holder: asyncpg.Connection,
) -> None:
    # A timer step parks its job in a transaction (lock the job, then the run); the
    # test holds the run's row so that the worker is caught inside that transaction.
    wf = await services.workflows.create(me, "timer", None, chain(1, delay=0.2))
    eid = (await services.executions.start(me, wf.id, {"n": 1})).execution.id
    blocker = holder.transaction()
    await blocker.start()
    await holder.execute("SELECT 1 FROM executions WHERE id = $1 FOR NO KEY UPDATE", eid)
    doomed = workers(lease_seconds=LEASE, heartbeat_seconds=1, reclaim_seconds=0.5)
    try:
        backend = await wait_until(
            lambda: _waiting_worker_backend(admin), 30, "the worker to wait for the run's lock"
        )
    except AssertionError as exc:
        activity = await admin.fetch(
            "SELECT application_name, state, wait_event_type, query FROM pg_stat_activity "
            "WHERE datname = current_database()"
        )
        raise AssertionError(f"{exc}: {[dict(a) for a in activity]}\n{doomed.output()}") from None
    os.kill(doomed.proc.pid, signal.SIGSTOP)
    try:
        await blocker.commit()  # the stopped worker's statement now gets its locks

        async def idle_holding_locks() -> bool:
            # (A granted row lock shows in pg_locks as its table's lock.)
            row = await admin.fetchrow(
                "SELECT a.state, (SELECT count(*) FROM pg_locks l WHERE l.pid = a.pid "
                "AND l.granted AND l.relation = 'executions'::regclass) AS held "
                "FROM pg_stat_activity a WHERE a.pid = $1",
                backend,
            )
            return row is not None and row["state"] == "idle in transaction" and row["held"] > 0

        await wait_until(idle_holding_locks, 10, "the lost worker to sit in its transaction")
        rescuer = workers(lease_seconds=LEASE, heartbeat_seconds=1, reclaim_seconds=0.5)
        # The lost worker's session is ended by its own idle-in-transaction timeout (a
        # fraction of the lease), so its jobs come back once their lease runs out: well
        # within the 60 s PostgreSQL's timeout used to take.
        execution = await finished(services, me, eid, 30)
        assert execution.status == "COMPLETED", rescuer.output()
        assert execution.output == {"n": 2}
        gone = await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", backend)
        assert gone == 0, "the lost worker's session should have been ended"
    finally:
        os.kill(doomed.proc.pid, signal.SIGCONT)


async def _counts(services: Services, me: Principal, eid: uuid.UUID) -> Counter[Any]:
    return Counter((e.kind, e.node_id) for e in await services.executions.events(me, eid))


async def test_a_lock_held_on_one_run_neither_stalls_other_leases_nor_kills_the_step(
    services: Services,
    me: Principal,
    workers: Callable[..., Process],
    admin: asyncpg.Connection,
    holder: asyncpg.Connection,
) -> None:
    wf = await services.workflows.create(me, "one", None, chain(1))
    worker = workers(lease_seconds=2, heartbeat_seconds=0.5, reclaim_seconds=0.5)
    # A quick step of a run whose row someone holds (a host lost with the run locked):
    # writing its outcome waits for that lock, with the step's job row locked.
    locked = (await services.executions.start(me, wf.id, {"n": 5})).execution.id
    async with holder.transaction():
        await holder.execute("SELECT 1 FROM executions WHERE id = $1 FOR NO KEY UPDATE", locked)
        await wait_until(
            lambda: _waiting_worker_backend(admin), 30, "the worker to wait for the run's lock"
        )
        # Then a long step on a run nobody holds: its lease must be kept up all along.
        slow = (await services.executions.start(me, wf.id, {"n": 1, "sleep": 8})).execution.id

        async def running() -> bool:
            steps = (await services.executions.steps(me, [slow]))[slow]
            return any(s.node_id == "t1" and s.status == "RUNNING" for s in steps)

        await wait_until(running, 30, "the long step to start")
        await asyncio.sleep(6)  # three leases
    for eid, n in ((locked, 6), (slow, 2)):
        execution = await finished(services, me, eid, 30)
        assert execution.status == "COMPLETED", worker.output()
        assert execution.output == {"n": n}
    # The long step ran once: its lease was extended while the other run was held.
    counts = await _counts(services, me, slow)
    assert counts[("step.started", "t1")] == 1, worker.output()
    steps = {s.node_id: s for s in (await services.executions.steps(me, [slow, locked]))[slow]}
    assert steps["t1"].attempt == 1
    # The held step waited (its lock timeouts handled), and was not run again.
    held = {s.node_id: s for s in (await services.executions.steps(me, [locked]))[locked]}
    assert held["t1"].attempt == 1, worker.output()
    output = worker.output()
    assert "step task failed" not in output
    assert "lost the lease" not in output
