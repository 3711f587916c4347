"""A cron backfill with real worker processes: its runs, held to the trigger's
maxConcurrentRuns, survive a SIGKILL of every worker mid-step and a restart; each fire
time runs once, never more than the limit at a time, and a repeated backfill starts
nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.processes import Process
from tests.support.workers import finished, wait_until

pytestmark = pytest.mark.slow

# The transform sleeps `input.sleep` seconds (tests.support.handlers.SlowTransform).
FLOW = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "t", "type": "transform", "data": {"output": {"at": "{{ input.at }}"}}},
        {"id": "end", "type": "end", "data": {"output": "{{ steps.t.output }}"}},
    ],
    "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "end"}],
}
TIMES = [f"2024-05-01T10:0{m}:00Z" for m in range(6)]
LIMIT = 2


async def test_backfilled_runs_survive_sigkill_of_every_worker_within_their_limit(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    wf = await services.workflows.create(me, "backfilled", None, FLOW)
    made = await services.triggers.create(
        me, wf.id, "CRON",
        {"expression": "* * * * *", "timezone": "UTC",
         "input": {"sleep": 1.5, "at": "{{ trigger.scheduledAt }}"}},
        enabled=False, max_concurrent_runs=LIMIT,
    )  # fmt: skip
    trigger = made.trigger.id
    done = await services.backfills.backfill(me, trigger, TIMES[0], TIMES[-1])
    assert (done.started, done.skipped) == (len(TIMES), 0)
    pool = services.pool
    statuses = await pool.fetch(
        "SELECT status, count(*) AS n FROM executions WHERE trigger_id = $1 GROUP BY status",
        trigger,
    )
    assert {r["status"]: r["n"] for r in statuses} == {"RUNNING": LIMIT, "PENDING": 4}

    most = 0
    watching = True

    async def watch() -> None:  # how many of its runs are RUNNING at once, all along
        nonlocal most
        while watching:
            running = await pool.fetchval(
                "SELECT count(*) FROM executions WHERE trigger_id = $1 AND status = 'RUNNING'",
                trigger,
            )
            most = max(most, running)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        first = [workers(), workers()]

        async def mid_step() -> object:
            return await pool.fetchval(
                "SELECT count(*) FROM jobs j JOIN executions e ON e.id = j.execution_id"
                " JOIN step_executions s ON s.id = j.step_id"
                " WHERE e.trigger_id = $1 AND s.node_id = 't' AND j.lease_token IS NOT NULL",
                trigger,
            )

        await wait_until(mid_step, 30, "a backfilled run's step to run")
        for proc in first:
            proc.kill()
        for proc in first:
            proc.proc.wait(10)
        restarted = workers()
        ids = [r["id"] for r in await pool.fetch(
            "SELECT id FROM executions WHERE trigger_id = $1", trigger)]  # fmt: skip
        ended = [await finished(services, me, eid, 90) for eid in ids]
    finally:
        watching = False
        await watcher
    assert [e.status for e in ended] == ["COMPLETED"] * len(TIMES), restarted.output()[-3000:]
    assert sorted(e.output["at"] for e in ended) == TIMES
    assert 0 < most <= LIMIT
    steps = await pool.fetch(
        "SELECT s.execution_id, count(*) AS n FROM step_executions s"
        " JOIN executions e ON e.id = s.execution_id"
        " WHERE e.trigger_id = $1 AND s.node_id = 't' AND s.status = 'COMPLETED'"
        " GROUP BY s.execution_id",
        trigger,
    )
    assert sorted(r["n"] for r in steps) == [1] * len(TIMES)
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0
    again = await services.backfills.backfill(me, trigger, TIMES[0], TIMES[-1])
    assert (again.started, again.skipped) == (0, len(TIMES))
