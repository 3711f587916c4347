"""A worker's backlog: the other branches of a fork stay, leased, with the worker that
took one of them (runner.Backlog), bounded in number and in time, given back when it
stops and forgotten when their run is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from flowsync import metrics
from flowsync.worker.registry import default_registry
from flowsync.worker.runner import Worker
from tests.support.env import Env
from tests.support.graphs import fan
from tests.support.handlers import SlowTransform


async def branch_jobs(env: Env, eid: Any) -> dict[str, Any]:
    rows = await env.services.pool.fetch(
        "SELECT s.node_id, j.worker_id, j.lease_token, j.attempts FROM jobs j "
        "JOIN step_executions s ON s.id = j.step_id WHERE j.execution_id = $1",
        eid,
    )
    return {r["node_id"]: r for r in rows}


def slow_worker(env: Env, worker_id: str, **kw: Any) -> Worker:
    """A worker running one step at a time, whose transforms sleep `input.sleep`."""
    registry = default_registry()
    registry.register("transform", SlowTransform())
    return Worker(
        env.services.url, env.services.pool, registry,
        concurrency=1, poll_seconds=0.2, grace_seconds=5, worker_id=worker_id, **kw,
    )  # fmt: skip


async def until(check: Any, what: str, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[None]:
    """The workers run meanwhile; then they stop, and their shutdowns finish."""
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        for w in workers:
            w.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def test_a_fork_s_other_branches_wait_leased_to_the_worker_that_took_one(
    env: Env,
) -> None:
    """The worker that finishes a fork takes one branch and keeps the others leased to
    itself, their steps QUEUED (nothing started yet): no other worker can claim them.
    Run from the backlog, each is started and finished like a claimed step, and the join
    fires once."""
    wid = await env.create(fan(3))
    eid = await env.start(wid, {})
    worker = Worker(env.services.url, env.services.pool, default_registry(), worker_id="w")
    other = Worker(env.services.url, env.services.pool, default_registry(), worker_id="o")
    [split] = await worker.queue.claim(1)
    first = await worker.orchestrator.complete(split, {}, take_next=True)
    assert first is not None and first.node_id == "b0" and not first.start_pending
    assert len(worker.backlog) == 2
    kept = worker.backlog.take(2)
    assert [j.node_id for j in kept] == ["b1", "b2"]
    assert all(j.start_pending and j.attempts == 1 for j in kept)
    jobs = await branch_jobs(env, eid)
    assert {n: (r["worker_id"], r["lease_token"]) for n, r in jobs.items()} == {
        "b0": ("w", first.lease_token),
        "b1": ("w", kept[0].lease_token),
        "b2": ("w", kept[1].lease_token),
    }
    steps = await env.steps(eid)
    assert [steps[n].status for n in ("b0", "b1", "b2")] == ["RUNNING", "QUEUED", "QUEUED"]
    assert await other.queue.claim(10) == []

    at = datetime.now(UTC)
    for job in kept:
        job = dataclasses.replace(job, claimed_at=at)
        assert await worker.orchestrator.complete(job, {"n": job.node_id}, take_next=True) is None
    merge = await worker.orchestrator.complete(first, {"n": "b0"}, take_next=True)
    assert merge is not None and merge.node_id == "merge"
    end = await worker.orchestrator.complete(merge, {}, take_next=True)
    assert end is not None
    await worker.orchestrator.complete(end, {}, take_next=True)
    execution = await env.services.executions.get(env.me, eid)
    assert execution.status == "COMPLETED"
    events = await env.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    counts = Counter((e.kind, e.node_id) for e in events)
    for node in ("b0", "b1", "b2", "merge"):
        assert counts[("step.started", node)] == counts[("step.completed", node)] == 1
    # A kept step's start is the time it left the backlog, not the fork's.
    started = {e.node_id: e.at for e in events if e.kind == "step.started"}
    assert started["b1"] == started["b2"] == at
    assert await env.services.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_a_backlog_keeps_no_more_than_its_limit(env: Env) -> None:
    """Branches beyond the backlog's limit are queued for any worker. (The metrics
    count only running workers' backlogs: not this one, driven by hand.)"""
    wid = await env.create(fan(4))
    eid = await env.start(wid, {})
    pool = env.services.pool
    worker = Worker(env.services.url, pool, default_registry(), worker_id="w", backlog=1)
    other = Worker(env.services.url, pool, default_registry(), worker_id="o")
    before = backlog_gauge()
    [split] = await worker.queue.claim(1)
    assert await worker.orchestrator.complete(split, {}, take_next=True) is not None
    assert len(worker.backlog) == 1 and backlog_gauge() == before
    assert [j.node_id for j in worker.backlog.take(5)] == ["b1"]
    claimed = await other.queue.claim(10)
    assert sorted(j.node_id for j in claimed) == ["b2", "b3"]
    jobs = await branch_jobs(env, eid)
    assert {n: r["worker_id"] for n, r in jobs.items()} == {
        "b0": "w", "b1": "w", "b2": "o", "b3": "o",
    }  # fmt: skip


async def test_quick_branches_are_kept_beyond_one_per_slot_and_slow_ones_are_not(
    env: Env,
) -> None:
    """How many of a fork's branches a worker keeps follows how long their nodes' steps
    took on it lately (a node it has not run lately: its node type's): quick ones (a
    transform of a millisecond) all stay with it, up to its limit, to run in the next
    0.1 s; slow ones (a second each), and a type it has not run yet, only one per slot,
    and the rest are queued for any worker."""
    pool = env.services.pool
    other = uuid.uuid4()  # another workflow version's nodes

    async def kept(took: dict[tuple[bool, str], float]) -> tuple[list[str], list[str]]:
        """The branches kept by the worker that forked, and those queued, after it ran
        the nodes `took` names ((of this fork's version?, node id): seconds)."""
        await pool.execute("DELETE FROM jobs")  # the last case's, left queued
        eid = await env.start(await env.create(fan(12)), {})
        version = await pool.fetchval(
            "SELECT workflow_version_id FROM executions WHERE id = $1", eid
        )
        worker = Worker(env.services.url, pool, default_registry(), worker_id="w",
                        concurrency=2, backlog=8)  # fmt: skip
        for (ours, node), seconds in took.items():
            worker.backlog.durations.add((version if ours else other, node, "transform"), seconds)
        [split] = await worker.queue.claim(1)
        assert await worker.orchestrator.complete(split, {}, take_next=True) is not None
        jobs = await branch_jobs(env, eid)

        def nodes(pick: Any) -> list[str]:
            return sorted((n for n, r in jobs.items() if pick(r)), key=lambda n: int(n[1:]))

        return nodes(lambda r: r["worker_id"] == "w"), nodes(lambda r: r["lease_token"] is None)

    def each(ours: bool, seconds: float) -> dict[tuple[bool, str], float]:
        return {(ours, f"b{i}"): seconds for i in range(12)}

    # b0 is taken at once; the limit (8) bounds the quick ones, one per slot the others.
    quick = [f"b{i}" for i in range(9)], [f"b{i}" for i in range(9, 12)]
    slow = ["b0", "b1", "b2"], [f"b{i}" for i in range(3, 12)]
    assert await kept(each(True, 0.001)) == quick
    assert await kept(each(True, 1.0)) == slow
    assert await kept({}) == slow  # no transform has run here yet
    # Nodes not run here: their type's time (quick in another workflow).
    elsewhere = {(False, f"x{i}"): 0.001 for i in range(40)}
    assert await kept(elsewhere) == quick
    # One node slow here, though its type is quick by now: the slowest counts.
    assert await kept({(True, "b7"): 1.0, **elsewhere}) == slow
    # 2 slots x 0.1 s / 0.04 s: five kept.
    assert await kept(each(True, 0.04)) == ([f"b{i}" for i in range(6)],
                                            [f"b{i}" for i in range(6, 12)])  # fmt: skip


async def test_a_kept_step_that_waits_too_long_goes_back_to_any_worker(env: Env) -> None:
    """A worker whose only slot stays busy gives a kept branch back after
    backlog_seconds, and an idle worker runs it meanwhile: the branches run at once on
    two workers instead of one after the other on the worker that forked."""
    wid = await env.create(fan(2))
    a = slow_worker(env, "a", backlog_seconds=0.3)
    b = slow_worker(env, "b", backlog_seconds=0.3)
    async with running(a, b):
        eid = await env.start(wid, {"sleep": 1.5})
        assert (await env.wait(eid, 30)).status == "COMPLETED"
    steps = await env.steps(eid)
    b0, b1 = steps["b0"], steps["b1"]
    assert {b0.worker_id, b1.worker_id} == {a.worker_id, b.worker_id}
    assert b0.started_at < b1.finished_at and b1.started_at < b0.finished_at
    events = await env.events(eid)
    counts = Counter((e.kind, e.node_id) for e in events)
    for node in ("b0", "b1"):
        assert counts[("step.started", node)] == counts[("step.completed", node)] == 1


def backlog_gauge() -> float:
    value = metrics.REGISTRY.get_sample_value("flowsync_worker_backlog_steps")
    assert value is not None
    return value


async def test_a_stopping_worker_gives_its_backlog_back_at_once(env: Env) -> None:
    """On stop, kept steps go back to the queue before the running ones are drained:
    unleased, their attempt returned, still QUEUED, for the next worker to run. The
    process's metrics count the kept steps meanwhile."""
    wid = await env.create(fan(2))
    eid = await env.start(wid, {"sleep": 1.0})
    before = backlog_gauge()  # other tests' running workers in this process, if any
    a = slow_worker(env, "a", backlog_seconds=60)
    async with running(a):

        async def kept() -> bool:
            return len(a.backlog) == 1

        await until(kept, "a branch in the backlog")
        assert backlog_gauge() == before + 1
    assert backlog_gauge() == before
    assert a.drained.gave_back == 1
    jobs = await branch_jobs(env, eid)
    assert list(jobs) == ["b1"]
    assert jobs["b1"]["lease_token"] is None and jobs["b1"]["attempts"] == 0
    assert (await env.steps(eid))["b1"].status == "QUEUED"

    async with running(slow_worker(env, "b")):
        assert (await env.wait(eid, 30)).status == "COMPLETED"
    steps = await env.steps(eid)
    assert (steps["b0"].worker_id, steps["b1"].worker_id) == ("a", "b")
    assert steps["b1"].attempt == 1


async def test_a_cancelled_run_s_kept_steps_never_start(env: Env) -> None:
    """A run cancelled while one of its branches waits in a backlog: the branch is
    cancelled with the run and never starts, and its worker holds nothing of it. The
    running branch, stopped, does not count as a step that took that long."""
    wid = await env.create(fan(2))
    eid = await env.start(wid, {"sleep": 2.0})
    a = slow_worker(env, "a", backlog_seconds=60)
    async with running(a):

        async def kept() -> bool:
            return len(a.backlog) == 1

        async def stopped() -> bool:
            return not a.backlog and not a._tasks

        await until(kept, "a branch in the backlog")
        await env.services.executions.cancel(env.me, eid)
        await until(stopped, "the worker to let go of the cancelled run")
    assert (await env.services.executions.get(env.me, eid)).status == "CANCELLED"
    assert (await env.steps(eid))["b1"].status == "CANCELLED"
    started = [e.node_id for e in await env.events(eid) if e.kind == "step.started"]
    assert "b1" not in started
    assert await env.services.pool.fetchval("SELECT count(*) FROM jobs") == 0
    assert a.drained.gave_back == 0
    version = (await env.services.executions.get(env.me, eid)).workflow_version_id
    assert a.backlog.durations.longest([(version, "b0", "transform")]) is None
