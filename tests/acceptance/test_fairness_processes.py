"""Concurrency keys with real worker processes: runs keyed per tenant, held to the key's
limit, survive a SIGKILL of every worker mid-step and a restart; every run completes
once, and never more than the limit of one key RUN at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.processes import Process
from tests.support.workers import finished, wait_until

pytestmark = pytest.mark.slow

LIMIT = 2
# The transform sleeps `input.sleep` seconds (tests.support.handlers.SlowTransform).
FLOW = {
    "concurrencyKey": "{{ input.tenant }}",
    "concurrencyKeyLimit": LIMIT,
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "t", "type": "transform", "data": {"output": {"i": "{{ input.i }}"}}},
        {"id": "end", "type": "end", "data": {"output": "{{ steps.t.output }}"}},
    ],
    "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "end"}],
}
RUNS = [("a", i) for i in range(4)] + [("b", i) for i in range(3)]


async def test_keyed_runs_survive_sigkill_of_every_worker_within_their_limit(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    wf = await services.workflows.create(me, "keyed", None, FLOW)
    ids = [
        (
            await services.executions.start(me, wf.id, {"tenant": t, "i": i, "sleep": 0.6})
        ).execution.id
        for t, i in RUNS
    ]
    pool = services.pool
    counted = await pool.fetch(
        "SELECT concurrency_key AS k, status, count(*) AS n FROM executions"
        " GROUP BY concurrency_key, status"
    )
    assert {(r["k"], r["status"]): r["n"] for r in counted} == {
        ("a", "RUNNING"): 2, ("a", "PENDING"): 2, ("b", "RUNNING"): 2, ("b", "PENDING"): 1,
    }  # fmt: skip

    most = 0
    watching = True

    async def watch() -> None:  # the most runs of one key RUNNING at once, all along
        nonlocal most
        while watching:
            running = await pool.fetchval(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM executions"
                " WHERE status = 'RUNNING' GROUP BY concurrency_key) c"
            )
            most = max(most, running)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        first = [workers(), workers()]

        async def mid_step() -> object:
            return await pool.fetchval(
                "SELECT count(*) FROM jobs j JOIN step_executions s ON s.id = j.step_id"
                " WHERE s.node_id = 't' AND j.lease_token IS NOT NULL"
            )

        await wait_until(mid_step, 30, "a keyed run's step to run")
        for proc in first:
            proc.kill()
        for proc in first:
            proc.proc.wait(10)
        restarted = workers()
        ended = [await finished(services, me, eid, 90) for eid in ids]
    finally:
        watching = False
        await watcher
    assert [e.status for e in ended] == ["COMPLETED"] * len(RUNS), restarted.output()[-3000:]
    assert [e.output["i"] for e in ended] == [i for _, i in RUNS]
    assert 0 < most <= LIMIT
    steps = await pool.fetch(
        "SELECT execution_id, count(*) AS n FROM step_executions"
        " WHERE node_id = 't' AND status = 'COMPLETED' GROUP BY execution_id"
    )
    assert sorted(r["n"] for r in steps) == [1] * len(RUNS)
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0
