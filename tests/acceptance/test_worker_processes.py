"""Durability with real worker processes: SIGKILL, SIGTERM, dropped connections and
timers that outlive their worker."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.graphs import chain, fan
from tests.support.processes import Process
from tests.support.workers import finished, wait_until

pytestmark = pytest.mark.slow


async def event_counts(services: Services, me: Principal, eid: uuid.UUID) -> Counter[Any]:
    return Counter((e.kind, e.node_id) for e in await services.executions.events(me, eid))


async def test_sigkill_mid_step_another_worker_finishes_and_nothing_completes_twice(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    wf = await services.workflows.create(me, "fan", None, fan(4))
    eid = (await services.executions.start(me, wf.id, {"sleep": 3})).execution.id
    doomed = workers()

    async def held() -> bool:
        # Leased, and running long enough that their starts are written (a step that
        # ends sooner has its start written with its outcome).
        n = await services.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE execution_id = $1 AND lease_token IS NOT NULL "
            "AND step_id IN (SELECT id FROM step_executions WHERE node_id LIKE 'b%' "
            "AND status = 'RUNNING')",
            eid,
        )
        return bool(n == 4)

    await wait_until(held, 20, "the first worker to hold the four slow steps")
    doomed.kill()
    rescuer = workers()
    execution = await finished(services, me, eid, 40)
    assert execution.status == "COMPLETED", rescuer.output()
    assert execution.output == {"count": 4}
    counts = await event_counts(services, me, eid)
    for i in range(4):
        assert counts[("step.completed", f"b{i}")] == 1
        assert counts[("step.started", f"b{i}")] == 2  # the killed attempt and the rerun
    steps = (await services.executions.steps(me, [eid]))[eid]
    assert {s.node_id: s.attempt for s in steps if s.node_id.startswith("b")} == {
        f"b{i}": 2 for i in range(4)
    }
    assert await services.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_sigkill_with_branches_kept_in_its_backlog_loses_none(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    """A worker killed while a branch of its fork waits in its backlog (leased to it,
    never started; one per slot is kept of a node type the worker has not run yet): it
    returns to the queue when its lease expires, and another worker runs it once."""
    wf = await services.workflows.create(me, "kept", None, fan(2))
    eid = (await services.executions.start(me, wf.id, {"sleep": 2})).execution.id
    doomed = workers(concurrency=1, worker_backlog=2, worker_backlog_seconds=60)

    async def kept() -> bool:
        rows = await services.pool.fetch(
            "SELECT s.node_id, s.status FROM jobs j JOIN step_executions s ON s.id = j.step_id "
            "WHERE j.execution_id = $1 AND j.lease_token IS NOT NULL",
            eid,
        )
        return {(r["node_id"], r["status"]) for r in rows} == {("b0", "RUNNING"), ("b1", "QUEUED")}

    await wait_until(kept, 20, "the first worker to run a branch and keep the other")
    doomed.kill()
    rescuer = workers()
    execution = await finished(services, me, eid, 40)
    assert execution.status == "COMPLETED", rescuer.output()
    assert execution.output == {"count": 2}
    counts = await event_counts(services, me, eid)
    for i in range(2):
        assert counts[("step.completed", f"b{i}")] == 1
    # The kept branch was never started before the kill: one start (the running one's
    # was written before the kill, and again by the rescuer).
    assert counts[("step.started", "b1")] == 1
    assert counts[("step.started", "b0")] == 2
    assert await services.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_sigterm_lets_running_steps_finish_and_exits_zero(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    wf = await services.workflows.create(me, "one", None, chain(1))
    eid = (await services.executions.start(me, wf.id, {"n": 1, "sleep": 1.5})).execution.id
    worker = workers(shutdown_grace_seconds=10)

    async def running() -> bool:
        steps = (await services.executions.steps(me, [eid]))[eid]
        return any(s.node_id == "t1" and s.status == "RUNNING" for s in steps)

    await wait_until(running, 20, "the slow step to start")
    assert await asyncio.to_thread(worker.terminate) == 0, worker.output()
    steps = {s.node_id: s for s in (await services.executions.steps(me, [eid]))[eid]}
    assert steps["t1"].status == "COMPLETED"


async def test_sigterm_gives_back_a_step_that_outlasts_the_grace_period(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    wf = await services.workflows.create(me, "one", None, chain(1))
    eid = (await services.executions.start(me, wf.id, {"n": 1, "sleep": 3})).execution.id
    worker = workers(shutdown_grace_seconds=0.5)

    async def running() -> bool:
        steps = (await services.executions.steps(me, [eid]))[eid]
        return any(s.node_id == "t1" and s.status == "RUNNING" for s in steps)

    await wait_until(running, 20, "the slow step to start")
    assert await asyncio.to_thread(worker.terminate) == 0, worker.output()
    job = await services.pool.fetchrow("SELECT lease_token, attempts FROM jobs")
    assert job is not None and job["lease_token"] is None and job["attempts"] == 0
    # Given back at once, not after a lease timeout: the next worker takes it over.
    workers()
    execution = await finished(services, me, eid, 30)
    assert execution.status == "COMPLETED" and execution.output == {"n": 2}


async def test_a_durable_delay_survives_a_worker_restart(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    wf = await services.workflows.create(me, "timer", None, chain(1, delay=2))
    eid = (await services.executions.start(me, wf.id, {"n": 1})).execution.id
    first = workers()

    async def waiting() -> bool:
        steps = (await services.executions.steps(me, [eid]))[eid]
        return any(s.node_id == "wait" and s.status == "WAITING" for s in steps)

    await wait_until(waiting, 20, "the timer to be set")
    assert await asyncio.to_thread(first.terminate) == 0
    await asyncio.sleep(2.5)  # the timer falls due while no worker runs
    assert (await services.executions.get(me, eid)).status == "RUNNING"
    workers()
    execution = await finished(services, me, eid, 20)
    assert execution.status == "COMPLETED" and execution.output == {"n": 2}


async def test_connections_killed_mid_run_reconnect_and_every_execution_finishes(
    services: Services, me: Principal, workers: Callable[..., Process], db_url: str
) -> None:
    wf = await services.workflows.create(me, "long", None, chain(30))
    workers(concurrency=4)
    workers(concurrency=4)
    eids = [
        (await services.executions.start(me, wf.id, {"n": 0, "sleep": 0.1})).execution.id
        for _ in range(6)
    ]
    database = db_url.rsplit("/", 1)[-1].split("?")[0]
    count_sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2"

    async def connected() -> bool:
        # Both workers' pools and listeners are up: what the kills below must hit.
        pools = await services.pool.fetchval(count_sql, database, "flowsync-worker")
        listeners = await services.pool.fetchval(count_sql, database, "flowsync-worker-listener")
        return bool(pools >= 2 and listeners >= 2)

    await wait_until(connected, 30, "both workers to connect")
    killed = 0
    for round in range(4):
        await asyncio.sleep(0.4)
        killed += (
            await services.pool.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid() "
                "AND application_name LIKE 'flowsync-worker%'",
                database,
            )
            or 0
        )
        if round == 0:
            running = await services.pool.fetchval(
                "SELECT count(*) FROM executions WHERE status = 'RUNNING'"
            )
            assert running > 0  # the kills land mid-run
    assert killed > 0
    for eid in eids:
        execution = await finished(services, me, eid, 60)
        assert execution.status == "COMPLETED" and execution.output == {"n": 30}
        counts = await event_counts(services, me, eid)
        assert all(counts[("step.completed", f"t{i}")] == 1 for i in range(1, 31))
