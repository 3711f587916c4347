"""Heartbeats: they never wait behind a locked job, never mistake a job that just
finished for a lost lease, and leave nothing behind in the worker's bookkeeping."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from flowsync.config import to_asyncpg_dsn
from flowsync.worker.queue import Queue
from flowsync.worker.registry import default_registry
from flowsync.worker.runner import Worker
from tests.support.env import Env
from tests.support.graphs import chain, fan


async def test_a_heartbeat_skips_a_locked_job_and_extends_the_others(env: Env) -> None:
    wid = await env.create(chain(1))
    for _ in range(2):
        await env.start(wid, {"n": 1})
    pool = env.services.pool
    queue = Queue(pool, "w", 30)
    held, other = await queue.claim(2)
    await pool.execute("UPDATE jobs SET lease_expires_at = now() + interval '1 second'")
    # Someone (the worker's own write, waiting on a run a lost host holds) has the
    # row of one job locked.
    locker = await asyncpg.connect(to_asyncpg_dsn(env.services.url))
    try:
        async with locker.transaction():
            await locker.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", held.job_id)
            # Would wait for the lock until the end of the transaction (and hold up the
            # other job's lease meanwhile); the deadline only keeps a failure from hanging.
            alive = await asyncio.wait_for(queue.extend([held.lease_token, other.lease_token]), 20)
            assert alive == {held.lease_token, other.lease_token}  # locked is not lost
        left = dict(
            await pool.fetch(
                "SELECT id, lease_expires_at - now() > interval '10 seconds' FROM jobs"
            )
        )
        assert left == {held.job_id: False, other.job_id: True}
    finally:
        await locker.close()
    # A lease that is gone is still reported gone.
    await pool.execute("UPDATE jobs SET lease_token = NULL WHERE id = $1", other.job_id)
    assert await queue.extend([held.lease_token, other.lease_token]) == {held.lease_token}


async def test_many_quick_steps_leave_no_bookkeeping_and_no_false_lost_lease(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """A heartbeat in flight while steps finish (their jobs gone from the table) once
    took some for lost leases: a false warning, and an entry left behind for each."""
    caplog.set_level(logging.WARNING, logger="flowsync.worker")
    worker = Worker(
        env.services.url, env.services.pool, default_registry(),
        concurrency=8, poll_seconds=0.2, heartbeat_seconds=0.001, lease_seconds=30,
    )  # fmt: skip
    task = asyncio.create_task(worker.run())
    try:
        chains, fans = await env.create(chain(3), "chain"), await env.create(fan(6), "fan")
        eids = [await env.start(chains, {"n": 1}) for _ in range(60)]
        eids += [await env.start(fans, {}) for _ in range(15)]
        for eid in eids:
            assert (await env.wait(eid, timeout=60)).status == "COMPLETED"
        if worker._tasks:
            await asyncio.wait(list(worker._tasks))
        await asyncio.sleep(0.05)  # their done callbacks
        bookkeeping = {
            "running": worker._running,
            "seen": worker._seen,
            "stop_reason": worker._stop_reason,
            "starting": worker._starting,
            "started": worker._started,
            "handler_tasks": worker._handler_tasks,
        }
        assert {name: len(kept) for name, kept in bookkeeping.items() if kept} == {}
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
    lost = [r.getMessage() for r in caplog.records if "lost the lease" in r.getMessage()]
    assert lost == []
