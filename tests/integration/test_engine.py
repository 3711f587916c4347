"""The engine on a real PostgreSQL with an in-process worker: every node type, graph
shapes, exactly-once joins, idempotent starts, cancel, and lease fencing."""

from __future__ import annotations

import asyncio
import dataclasses
import tracemalloc
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowsync.engine.orchestrator import _APPROXIMATE, WorkflowCache
from flowsync.errors import Conflict, LeaseLost, NotFound
from flowsync.services.principal import Principal
from flowsync.worker.queue import QUERIES, Queue
from flowsync.worker.registry import default_registry
from flowsync.worker.runner import Worker
from tests.conftest import new_subject
from tests.support.env import Env, run_worker
from tests.support.graphs import chain, fan


def statuses(steps: dict[str, Any]) -> dict[str, str]:
    return {node: step.status for node, step in steps.items()}


async def move_on(pool: Any, execution_id: Any) -> None:
    """Another writer moves the run on: a note in its log, with the next sequence."""
    await pool.execute(
        """WITH e AS (UPDATE executions SET last_sequence = last_sequence + 1 WHERE id = $1
                      RETURNING last_sequence)
           INSERT INTO execution_events (execution_id, owner_id, workflow_id, sequence, kind,
                                         status, data)
           SELECT x.id, x.owner_id, x.workflow_id, e.last_sequence, 'execution.note',
                  x.status, '{}'::jsonb FROM executions x, e WHERE x.id = $1""",
        execution_id,
    )


async def test_chain_runs_every_step_in_order_with_numbered_events(running: Env) -> None:
    wid = await running.create(chain(5))
    eid = await running.start(wid, {"n": 10})
    execution = await running.wait(eid)
    assert execution.status == "COMPLETED"
    assert execution.output == {"n": 15}
    assert execution.started_at is not None and execution.finished_at is not None
    steps = await running.steps(eid)
    assert set(statuses(steps).values()) == {"COMPLETED"}
    assert steps["t3"].output == {"n": 13}
    assert steps["start"].output == {"n": 10}
    events = await running.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "execution.started" and events[-1].kind == "execution.completed"
    completed = [e.node_id for e in events if e.kind == "step.completed"]
    assert completed == ["start", "t1", "t2", "t3", "t4", "t5", "end"]


async def test_json_lists_as_input_and_outputs_run_and_are_stored_as_given(
    running: Env,
) -> None:
    """A run's input and its steps' outputs may be JSON lists, nested or not, on every
    path a transition is written by (the start, branches, a join, a chain's hops)."""
    definition = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "split", "type": "fork"},
            {"id": "a", "type": "transform", "data": {"output": [1, [2, [3]]]}},
            {"id": "b", "type": "transform", "data": {"output": "{{ input }}"}},
            {"id": "merge", "type": "join"},
            {"id": "t1", "type": "transform", "data": {"output": ["{{ steps.a.output }}"]}},
            {"id": "t2", "type": "transform", "data": {"output": "{{ steps.t1.output }}"}},
            {"id": "end", "type": "end", "data": {"output": "{{ [steps.t2.output, input] }}"}},
        ],
        "edges": [
            {"source": "start", "target": "split"},
            {"source": "split", "target": "a"},
            {"source": "split", "target": "b"},
            {"source": "a", "target": "merge"},
            {"source": "b", "target": "merge"},
            {"source": "merge", "target": "t1"},
            {"source": "t1", "target": "t2"},
            {"source": "t2", "target": "end"},
        ],
    }
    wid = await running.create(definition)
    given = [1, {"k": [2, [3]]}, [], None]
    eid = await running.start(wid, given)
    execution = await running.wait(eid)
    assert execution.status == "COMPLETED", execution.error
    steps = await running.steps(eid)
    assert steps["start"].output == given and steps["b"].output == given
    assert steps["a"].output == [1, [2, [3]]]
    assert steps["merge"].output == {"a": [1, [2, [3]]], "b": given}
    assert steps["t1"].output == steps["t2"].output == [[1, [2, [3]]]]
    assert execution.output == [[[1, [2, [3]]]], given]


NESTED = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "big", "type": "condition", "data": {"expression": "input.amount > 100"}},
        {"id": "vip", "type": "condition", "data": {"expression": "input.vip == true"}},
        {"id": "gold", "type": "transform", "data": {"output": {"tier": "gold"}}},
        {"id": "silver", "type": "transform", "data": {"output": {"tier": "silver"}}},
        {"id": "small", "type": "transform", "data": {"output": {"tier": "bronze"}}},
        {"id": "merge", "type": "transform", "data": {"output": {"done": True}}},
        {
            "id": "end",
            "type": "end",
            "data": {"output": {"merged": "{{ steps.merge.output.done }}"}},
        },
    ],
    "edges": [
        {"source": "start", "target": "big"},
        {"source": "big", "target": "vip", "sourceHandle": "true"},
        {"source": "big", "target": "small", "sourceHandle": "false"},
        {"source": "vip", "target": "gold", "sourceHandle": "true"},
        {"source": "vip", "target": "silver", "sourceHandle": "false"},
        {"source": "gold", "target": "merge"},
        {"source": "silver", "target": "merge"},
        {"source": "small", "target": "merge"},
        {"source": "merge", "target": "end"},
    ],
}


@pytest.mark.parametrize(
    ("input", "ran", "skipped"),
    [
        ({"amount": 500, "vip": True}, {"vip", "gold"}, {"silver", "small"}),
        ({"amount": 500, "vip": False}, {"vip", "silver"}, {"gold", "small"}),
        ({"amount": 5, "vip": True}, {"small"}, {"vip", "gold", "silver"}),
    ],
)
async def test_nested_conditions_then_merge_run_the_merge_once(
    running: Env, input: dict[str, Any], ran: set[str], skipped: set[str]
) -> None:
    wid = await running.create(NESTED)
    eid = await running.start(wid, input)
    execution = await running.wait(eid)
    assert execution.status == "COMPLETED"
    assert execution.output == {"merged": True}
    steps = statuses(await running.steps(eid))
    assert {n for n, s in steps.items() if s == "SKIPPED"} == skipped
    assert {"start", "big", "merge", "end"} | ran == {
        n for n, s in steps.items() if s == "COMPLETED"
    }
    events = await running.events(eid)
    assert sum(1 for e in events if e.kind == "step.started" and e.node_id == "merge") == 1


async def test_fifty_branches_into_one_join_run_the_join_exactly_once(running: Env) -> None:
    wid = await running.create(fan(50))
    eids = [await running.start(wid, {}) for _ in range(3)]
    for eid in eids:
        execution = await running.wait(eid, timeout=30)
        assert execution.status == "COMPLETED"
        assert execution.output == {"count": 50}
        events = await running.events(eid)
        kinds = Counter((e.kind, e.node_id) for e in events)
        assert kinds[("step.started", "merge")] == 1
        assert kinds[("step.completed", "merge")] == 1
        assert all(kinds[("step.completed", f"b{i}")] == 1 for i in range(50))
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        merge = (await running.steps(eid))["merge"]
        assert merge.output == {f"b{i}": {"i": i} for i in range(50)}


async def test_join_output_holds_only_taken_branches(running: Env) -> None:
    definition = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "split", "type": "fork"},
            {"id": "check", "type": "condition", "data": {"expression": "input.go"}},
            {"id": "yes", "type": "transform", "data": {"output": "yes"}},
            {"id": "other", "type": "transform", "data": {"output": "{{ input.go }}"}},
            {"id": "merge", "type": "join"},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": "start", "target": "split"},
            {"source": "split", "target": "check"},
            {"source": "split", "target": "other"},
            {"source": "check", "target": "yes", "sourceHandle": "true"},
            {"source": "check", "target": "merge", "sourceHandle": "false"},
            {"source": "yes", "target": "merge"},
            {"source": "other", "target": "merge"},
            {"source": "merge", "target": "end"},
        ],
    }
    wid = await running.create(definition)
    taken = await running.wait(await running.start(wid, {"go": True}))
    assert taken.status == "COMPLETED" and taken.output == {}
    steps = await running.steps(taken.id)
    assert steps["merge"].output == {"yes": "yes", "other": True}
    untaken = await running.wait(await running.start(wid, {"go": False}))
    steps = await running.steps(untaken.id)
    assert steps["yes"].status == "SKIPPED"
    assert steps["merge"].output == {"check": {"result": False}, "other": False}


async def test_a_condition_that_is_not_boolean_fails_the_execution(running: Env) -> None:
    definition = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "c", "type": "condition", "data": {"expression": "input.value"}},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": "start", "target": "c"},
            {"source": "c", "target": "end", "sourceHandle": "true"},
            {"source": "c", "target": "end", "sourceHandle": "false"},
        ],
    }
    wid = await running.create(definition)
    execution = await running.wait(await running.start(wid, {"value": "yes"}))
    assert execution.status == "FAILED"
    assert execution.error["nodeId"] == "c"
    assert "not true or false" in execution.error["message"]
    steps = await running.steps(execution.id)
    assert steps["c"].status == "FAILED"
    assert steps["end"].status == "CANCELLED"
    assert (await running.events(execution.id))[-1].kind == "execution.failed"


async def test_a_template_error_fails_the_step_with_the_expression_named(running: Env) -> None:
    wid = await running.create(chain(1))
    execution = await running.wait(await running.start(wid, {"n": "text"}))
    assert execution.status == "FAILED"
    assert execution.error["nodeId"] == "t1"
    assert "input.n + 1" in execution.error["message"]
    assert execution.error["code"] == "expression_failed"  # every step failure has a code


async def test_delay_is_a_durable_timer(running: Env) -> None:
    wid = await running.create(chain(1, delay=0.6))
    eid = await running.start(wid, {"n": 1})
    await asyncio.sleep(0.3)
    steps = await running.steps(eid)
    assert steps["wait"].status == "WAITING"
    # No worker holds a waiting step: its job is unleased and due later.
    row = await running.services.pool.fetchrow(
        "SELECT lease_token, run_at > now() AS later FROM jobs WHERE execution_id = $1", eid
    )
    assert row is not None and row["lease_token"] is None and row["later"]
    execution = await running.wait(eid)
    assert execution.status == "COMPLETED" and execution.output == {"n": 2}
    steps = await running.steps(eid)
    resumed = datetime.fromisoformat(steps["wait"].output["resumedAt"])
    assert resumed - steps["wait"].started_at < timedelta(seconds=5)
    assert steps["wait"].attempt == 1


async def test_delay_until_a_time_from_the_input(running: Env) -> None:
    definition = chain(1)
    definition["nodes"].insert(
        1, {"id": "wait", "type": "delay", "data": {"until": "{{ input.at }}"}}
    )
    definition["edges"][0] = {"source": "start", "target": "wait"}
    definition["edges"].insert(1, {"source": "wait", "target": "t1"})
    wid = await running.create(definition)
    at = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
    execution = await running.wait(await running.start(wid, {"n": 1, "at": at}))
    assert execution.status == "COMPLETED"
    bad = await running.wait(await running.start(wid, {"n": 1, "at": "tomorrow"}))
    assert bad.status == "FAILED" and bad.error["nodeId"] == "wait"
    # Past year 9999 in UTC: it failed no step and ran again at every lease expiry.
    beyond = {"n": 1, "at": "9999-12-31T23:00:00-14:00"}
    far = await running.wait(await running.start(wid, beyond))
    assert far.status == "FAILED" and far.error["nodeId"] == "wait"
    assert "outside years 1-9999" in far.error["message"]


async def test_idempotent_start_returns_the_first_execution(env: Env) -> None:
    wid = await env.create(chain(1))
    first = await env.services.executions.start(env.me, wid, {"n": 1}, idempotency_key="k1")
    again = await env.services.executions.start(env.me, wid, {"n": 2}, idempotency_key="k1")
    assert first.created and not again.created
    assert again.execution.id == first.execution.id
    assert again.execution.input == {"n": 1}
    concurrent = await asyncio.gather(
        *(env.services.executions.start(env.me, wid, {}, idempotency_key="k2") for _ in range(8))
    )
    assert len({s.execution.id for s in concurrent}) == 1
    assert sum(s.created for s in concurrent) == 1
    count = await env.services.pool.fetchval("SELECT count(*) FROM executions")
    assert count == 2
    # The key is per owner: another owner's same key starts its own execution.
    other = Principal(await env.services.api_keys.ensure_owner(new_subject()), "test")
    owid = (await env.services.workflows.create(other, "o", None, chain(1))).id
    theirs = await env.services.executions.start(other, owid, {}, idempotency_key="k1")
    assert theirs.created and theirs.execution.id != first.execution.id


async def test_an_execution_pins_its_version(env: Env) -> None:
    from flowsync.services.workflows import WorkflowUpdate

    wid = await env.create(chain(1))
    eid = await env.start(wid, {"n": 1})
    await env.services.workflows.update(env.me, wid, WorkflowUpdate(definition=chain(3)))
    worker = Worker(env.services.url, env.services.pool, default_registry(), poll_seconds=0.2)
    task = asyncio.create_task(worker.run())
    try:
        execution = await env.wait(eid)
        assert (execution.version, execution.output) == (1, {"n": 2})
        newer = await env.wait(await env.start(wid, {"n": 1}))
        assert (newer.version, newer.output) == (2, {"n": 4})
    finally:
        worker.stop()
        await task


async def test_cancel_before_any_step_ran(env: Env) -> None:
    wid = await env.create(chain(2))
    eid = await env.start(wid, {"n": 1})
    cancelled = await env.services.executions.cancel(env.me, eid)
    assert cancelled.status == "CANCELLED" and cancelled.finished_at is not None
    assert cancelled.error is not None and cancelled.error["code"] == "cancelled"
    # The start node ran with the start itself; what no worker reached is cancelled.
    assert statuses(await env.steps(eid)) == {
        "start": "COMPLETED", "t1": "CANCELLED", "t2": "CANCELLED", "end": "CANCELLED",
    }  # fmt: skip
    assert await env.services.pool.fetchval("SELECT count(*) FROM jobs") == 0
    events = await env.events(eid)
    assert events[-1].kind == "execution.cancelled"
    with pytest.raises(Conflict):
        await env.services.executions.cancel(env.me, eid)


async def test_cancel_while_a_delay_waits(running: Env) -> None:
    wid = await running.create(chain(1, delay=30))
    eid = await running.start(wid, {"n": 1})
    for _ in range(100):
        if (await running.steps(eid))["wait"].status == "WAITING":
            break
        await asyncio.sleep(0.05)
    await running.services.executions.cancel(running.me, eid)
    steps = statuses(await running.steps(eid))
    assert steps["start"] == "COMPLETED"
    assert steps["wait"] == "CANCELLED" and steps["t1"] == "CANCELLED"
    assert await running.services.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_a_start_step_that_was_queued_is_run_by_a_worker(env: Env) -> None:
    """A new run completes its start node itself; a start step that is queued instead
    (here: the retry of a run cancelled while it waited behind its workflow's limit, so
    its start never ran) is run by a worker's start handler: its output is the input."""
    from flowsync.services.workflows import WorkflowUpdate

    wid = await env.create(chain(1))
    await env.services.workflows.update(env.me, wid, WorkflowUpdate(max_concurrency=1))
    first = await env.start(wid, {"n": 1})
    waiting = await env.start(wid, {"n": 5})
    assert (await env.services.executions.get(env.me, waiting)).status == "PENDING"
    await env.services.executions.cancel(env.me, waiting)
    await env.services.executions.cancel(env.me, first)  # room for the retry
    retried = (await env.services.executions.retry(env.me, waiting)).execution.id
    assert statuses(await env.steps(retried))["start"] == "QUEUED"
    task = await run_worker(env)
    try:
        execution = await env.wait(retried)
    finally:
        assert env.worker is not None
        env.worker.stop()
        await asyncio.wait_for(task, 30)
    assert execution.status == "COMPLETED" and execution.output == {"n": 6}
    steps = await env.steps(retried)
    assert steps["start"].output == {"n": 5} and steps["start"].attempt == 1


async def test_cancel_after_completion_is_a_conflict_and_others_get_not_found(
    running: Env,
) -> None:
    wid = await running.create(chain(1))
    eid = await running.start(wid, {"n": 1})
    await running.wait(eid)
    with pytest.raises(Conflict):
        await running.services.executions.cancel(running.me, eid)
    stranger = Principal(await running.services.api_keys.ensure_owner(new_subject()), "x")
    with pytest.raises(NotFound):
        await running.services.executions.cancel(stranger, eid)
    with pytest.raises(NotFound):
        await running.services.executions.get(stranger, eid)
    with pytest.raises(NotFound):
        await running.services.executions.start(stranger, wid, {})


async def test_a_stale_lease_cannot_complete_a_step(env: Env) -> None:
    """Worker A claims, its lease expires, B takes over: A's late result is refused and
    B's is the one recorded."""
    wid = await env.create(chain(1))
    eid = await env.start(wid, {"n": 1})
    pool = env.services.pool
    a = Worker(env.services.url, pool, default_registry(), worker_id="a", lease_seconds=30)
    b = Worker(env.services.url, pool, default_registry(), worker_id="b", lease_seconds=30)
    [job_a] = await a.queue.claim(1)
    await pool.execute("UPDATE jobs SET lease_expires_at = now() - interval '1 second'")
    assert await Queue(pool, "reaper", 30).reclaim_expired() == 1
    [job_b] = await b.queue.claim(1)
    assert job_b.job_id == job_a.job_id and job_b.attempts == 2
    with pytest.raises(LeaseLost):
        await a.orchestrator.complete(job_a, {"n": "from a"})
    await b.orchestrator.complete(job_b, {"n": "from b"})
    steps = await env.steps(eid)
    assert steps["t1"].output == {"n": "from b"} and steps["t1"].attempt == 2
    completed = [e.node_id for e in await env.events(eid) if e.kind == "step.completed"]
    assert completed == ["start", "t1"]
    # A late heartbeat does not resurrect the lease either.
    assert await a.queue.extend([job_a.lease_token]) == set()


async def test_a_busy_heartbeat_never_mistakes_a_finished_job_for_a_lost_lease(
    env: Env,
) -> None:
    """Regression: a heartbeat in flight while a join's last branch commits (and the
    task moves on to the join) once cancelled the join, leaving it to a lease timeout."""
    worker = Worker(
        env.services.url, env.services.pool, default_registry(),
        concurrency=8, poll_seconds=0.2, heartbeat_seconds=0.002, lease_seconds=30,
    )  # fmt: skip
    task = asyncio.create_task(worker.run())
    try:
        wid = await env.create(fan(10))
        eids = [await env.start(wid, {}) for _ in range(10)]
        for eid in eids:
            execution = await env.wait(eid, timeout=10)
            assert execution.status == "COMPLETED"
            assert {s.attempt for s in (await env.steps(eid)).values()} == {1}
    finally:
        worker.stop()
        await task


async def run_slow_worker(env: Env) -> asyncio.Task[None]:
    """An in-process worker whose transforms first sleep `input.sleep` seconds."""
    from tests.support.handlers import SlowTransform

    registry = default_registry()
    registry.register("transform", SlowTransform())
    task = await run_worker(env, registry)
    assert env.worker is not None
    return task


async def test_slow_steps_that_run_alone_are_finished_without_the_run_s_lock(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that runs alone and outlasts `start_seconds` has its start written while it
    runs (another write to the run); what its worker knew of the run moves on with that
    write, so the step is still finished with one guarded statement, never under the
    run's lock. Each step starts and completes once."""
    task = await run_slow_worker(env)
    assert env.worker is not None
    locked: list[str] = []
    real = env.worker.orchestrator._complete_locked

    async def counted(done: Any) -> Any:
        locked.append(done.job.node_id)
        return await real(done)

    monkeypatch.setattr(env.worker.orchestrator, "_complete_locked", counted)
    try:
        wid = await env.create(chain(3))
        eid = await env.start(wid, {"n": 1, "sleep": 0.2})
        assert (await env.wait(eid)).status == "COMPLETED"
    finally:
        env.worker.stop()
        await asyncio.wait_for(task, 30)
    # (The run's end is written under the lock: the first end of a workflow that a
    # worker writes learns whether the workflow has a concurrency limit.)
    assert locked == ["end"]
    events = await env.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    counts = Counter((e.kind, e.node_id) for e in events)
    for node in ("t1", "t2", "t3"):
        assert counts[("step.started", node)] == counts[("step.completed", node)] == 1
    # Each transform's start was written while it slept, before its completion.
    steps = await env.steps(eid)
    assert all(steps[n].started_at < steps[n].finished_at for n in ("t1", "t2", "t3"))


async def test_cancel_stops_a_running_step(env: Env) -> None:
    task = await run_slow_worker(env)
    assert env.worker is not None
    try:
        wid = await env.create(chain(1))
        eid = await env.start(wid, {"n": 1, "sleep": 30})
        for _ in range(200):
            if (await env.steps(eid))["t1"].status == "RUNNING":
                break
            await asyncio.sleep(0.05)
        assert env.worker._tasks  # the slow step holds the worker
        cancelled = await env.services.executions.cancel(env.me, eid)
        assert cancelled.status == "CANCELLED"
        # The worker is told to stop the step at once, not after 30 s.
        for _ in range(100):
            if not env.worker._tasks:
                break
            await asyncio.sleep(0.02)
        assert not env.worker._tasks
        steps = await env.steps(eid)
        assert steps["t1"].status == "CANCELLED" and steps["end"].status == "CANCELLED"
        events = [(e.kind, e.node_id) for e in await env.events(eid)]
        assert events[-1] == ("execution.cancelled", None)
        assert ("step.cancelled", "t1") in events and ("step.completed", "t1") not in events
        assert await env.services.pool.fetchval("SELECT count(*) FROM jobs") == 0
    finally:
        env.worker.stop()
        await task


async def test_a_chain_step_is_finished_from_what_its_worker_knew(env: Env) -> None:
    """The worker that hands a chain's next step to itself knows the run; that step is
    finished in one guarded statement, with the same steps and events as under locks."""
    wid = await env.create(chain(2))
    eid = await env.start(wid, {"n": 1})
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    # The run's only job is claimed with the run as the claim read it.
    [t1] = await worker.queue.claim(1)
    assert t1.node_id == "t1" and t1.known_steps is not None
    sequence, known = t1.known_steps
    assert sequence == (await env.services.executions.get(env.me, eid)).last_sequence
    assert {n: r.status for n, r in known.items()} == statuses(await env.steps(eid))
    t2 = await worker.orchestrator.complete(t1, {"n": 2}, take_next=True)
    assert t2 is not None and t2.node_id == "t2" and t2.known_steps is not None
    sequence, known = t2.known_steps
    assert sequence == (await env.services.executions.get(env.me, eid)).last_sequence
    assert {n: r.status for n, r in known.items()} == statuses(await env.steps(eid))
    end = await worker.orchestrator.complete(t2, {"n": 3}, take_next=True)
    assert end is not None and end.node_id == "end" and end.known_steps is not None
    assert end is not None and end.node_id == "end"
    await worker.orchestrator.complete(end, {"done": True}, take_next=True)
    execution = await env.services.executions.get(env.me, eid)
    assert execution.status == "COMPLETED"
    events = await env.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    completed = Counter(e.node_id for e in events if e.kind == "step.completed")
    assert completed == {"start": 1, "t1": 1, "t2": 1, "end": 1}


async def test_a_chain_hop_written_lean_writes_what_the_general_write_would(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chain's hop written guarded goes through hand_on, a statement of its own; the
    same run with that statement switched off (every hop through write_plan) leaves the
    same step rows, jobs and events at every hop."""
    from flowsync.engine import orchestrator as orchestrator_module

    wid = await env.create(chain(3))
    pool = env.services.pool
    hops: set[str] = set()
    real_hop = orchestrator_module._hop

    def counted(*args: Any) -> Any:
        found = real_hop(*args)
        if found is not None:
            hops.add(found[1].node_id)
        return found

    async def snapshot(eid: Any) -> list[Any]:
        steps = await pool.fetch(
            """SELECT node_id, status, attempt, output, error, input, queued_at IS NULL,
                      started_at IS NULL, finished_at IS NULL,
                      coalesce(started_at <= finished_at, true)
                 FROM step_executions WHERE execution_id = $1 ORDER BY node_id""",
            eid,
        )
        jobs = await pool.fetch(
            """SELECT s.node_id, j.attempts, j.max_attempts, j.lease_token IS NULL, j.worker_id
                 FROM jobs j JOIN step_executions s ON s.id = j.step_id
                WHERE j.execution_id = $1""",
            eid,
        )
        events = await pool.fetch(
            """SELECT sequence, kind, status, node_id, attempt, data, at IS NULL
                 FROM execution_events WHERE execution_id = $1 ORDER BY sequence""",
            eid,
        )
        run = await pool.fetchrow(
            "SELECT status, last_sequence, output FROM executions WHERE id = $1", eid
        )
        return [[tuple(r) for r in steps], [tuple(r) for r in jobs],
                [tuple(r) for r in events], tuple(run)]  # fmt: skip

    async def run_chain() -> list[list[Any]]:
        eid = await env.start(wid, {"n": 1})
        worker = Worker(env.services.url, pool, default_registry(), worker_id="w", lease_seconds=30)
        [job] = await worker.queue.claim(1)
        seen = []
        output: dict[str, Any] = {"n": 1}
        while job is not None:
            job = await worker.orchestrator.complete(job, output, take_next=True)
            output = {"n": output["n"] + 1}
            seen.append(await snapshot(eid))
        return seen

    monkeypatch.setattr(orchestrator_module, "_hop", counted)
    lean = await run_chain()
    # t1 -> t2 (which also writes t1's start: its claim wrote only its job), t2 -> t3 and
    # t3 -> end are hops; the end's write ends the run.
    assert hops == {"t1", "t2", "t3"}
    monkeypatch.setattr(orchestrator_module, "_hop", lambda *args: None)
    general = await run_chain()
    assert lean == general
    assert lean[-1][3][0] == "COMPLETED"


async def test_hops_of_a_worker_s_chains_are_written_together_and_each_guarded(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hops that arrive while another is being written are written together, in one
    statement; each keeps its own guard (a run that moved on is refused alone, read again
    and written guarded), and every run ends as the general write would have left it."""
    from flowsync.engine import orchestrator as orchestrator_module

    wid = await env.create(chain(3))
    pool = env.services.pool
    worker = Worker(env.services.url, pool, default_registry(), worker_id="w", lease_seconds=30)
    orchestrator = worker.orchestrator
    batches: list[int] = []
    real_write = orchestrator_module._HopWriter._write

    async def counted(self: Any, hops: list[Any]) -> Any:
        batches.append(len(hops))
        return await real_write(self, hops)

    monkeypatch.setattr(orchestrator_module._HopWriter, "_write", counted)

    async def at_t2(count: int) -> list[Any]:
        eids = [await env.start(wid, {"n": 1}) for _ in range(count)]
        t1s = await worker.queue.claim(count)
        # Hops that also write their step's start (the claim wrote only the job).
        t2s = await asyncio.gather(
            *(orchestrator.complete(t, {"n": 1}, take_next=True) for t in t1s)
        )
        return list(t2s), eids

    async def rows(eid: Any) -> Any:
        steps = await pool.fetch(
            """SELECT node_id, status, attempt, output, started_at IS NULL,
                      finished_at IS NULL FROM step_executions
                WHERE execution_id = $1 ORDER BY node_id""",
            eid,
        )
        events = await pool.fetch(
            """SELECT sequence, kind, status, node_id, attempt FROM execution_events
                WHERE execution_id = $1 ORDER BY sequence""",
            eid,
        )
        job = await pool.fetchrow(
            """SELECT s.node_id, j.attempts, j.lease_token IS NULL FROM jobs j
                 JOIN step_executions s ON s.id = j.step_id WHERE j.execution_id = $1""",
            eid,
        )
        return [tuple(r) for r in steps], [tuple(r) for r in events], tuple(job)

    # The reference: one run's hop t2 -> t3 through write_plan.
    monkeypatch.setattr(orchestrator_module, "_hop", lambda *args: None)
    [t2], [reference_run] = await at_t2(1)
    assert await orchestrator.complete(t2, {"n": 2}, take_next=True) is not None
    reference = await rows(reference_run)
    monkeypatch.undo()
    monkeypatch.setattr(orchestrator_module._HopWriter, "_write", counted)

    batches.clear()
    t2s, eids = await at_t2(5)
    assert batches == [1, 4]
    # One run moves on after its worker's write (another writer's note in its log).
    await move_on(pool, eids[3])
    batches.clear()
    t3s = await asyncio.gather(*(orchestrator.complete(t, {"n": 2}, take_next=True) for t in t2s))
    # The first hop was written alone; the four that came meanwhile, together; the run
    # that had moved on was refused there, read again, and written guarded on its own.
    assert batches == [1, 4, 1]
    assert [t.node_id for t in t3s] == ["t3"] * 5
    for i, eid in enumerate(eids):
        if i == 3:
            events = await env.events(eid)
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            assert [e.kind for e in events][-3:] == ["execution.note", "step.completed",
                                                     "step.started"]  # fmt: skip
        else:
            assert await rows(eid) == reference
    # And on: every run ends, each step completed once.
    for job in t3s:
        end = await orchestrator.complete(job, {"n": 3}, take_next=True)
        await orchestrator.complete(end, {"n": 3}, take_next=True)
    for eid in eids:
        assert (await env.services.executions.get(env.me, eid)).status == "COMPLETED"
        completed = Counter(e.node_id for e in await env.events(eid) if e.kind == "step.completed")
        assert completed == {"start": 1, "t1": 1, "t2": 1, "t3": 1, "end": 1}


async def test_hops_waiting_for_their_writer_hold_no_connection(env: Env) -> None:
    """Hops planned from a worker's memory of its runs wait for the hop writer without
    holding a pooled connection: with more of them than the pool has connections, they
    would otherwise leave the writer none to write with, and the worker would hang."""
    from flowsync.worker.queue import create_pool

    wid = await env.create(chain(3))
    pool = await create_pool(env.services.url, max_size=2, worker=True)
    try:
        worker = Worker(env.services.url, pool, default_registry(), lease_seconds=30)
        orchestrator = worker.orchestrator
        eids = [await env.start(wid, {"n": 1}) for _ in range(6)]
        t1s = await worker.queue.claim(6)
        t2s = [await orchestrator.complete(t, {"n": 1}, take_next=True) for t in t1s]
        # Planned from the worker's memory of each run (not from what the job carries):
        # the path a claimed step of a remembered run takes.
        forgotten = [dataclasses.replace(t, known_steps=None) for t in t2s if t is not None]
        t3s = await asyncio.wait_for(
            asyncio.gather(*(orchestrator.complete(t, {"n": 2}, take_next=True)
                             for t in forgotten)),
            20,
        )  # fmt: skip
        assert [t.node_id for t in t3s] == ["t3"] * 6
        for eid in eids:
            completed = [e.node_id for e in await env.events(eid) if e.kind == "step.completed"]
            assert completed == ["start", "t1", "t2"]
    finally:
        await pool.close()


async def test_what_a_worker_knew_is_not_trusted_once_the_run_changed(env: Env) -> None:
    """A cancel, or a lease that expired and went to another worker, between the hand-on
    and the finish: the guarded write changes nothing and the usual path refuses."""
    wid = await env.create(chain(2))
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    pool = env.services.pool

    eid = await env.start(wid, {"n": 1})
    [t1] = await worker.queue.claim(1)
    t2 = await worker.orchestrator.complete(t1, {"n": 1}, take_next=True)
    assert t2 is not None and t2.known_steps is not None
    await env.services.executions.cancel(env.me, eid)
    before = [(e.sequence, e.kind, e.node_id) for e in await env.events(eid)]
    with pytest.raises(LeaseLost):
        await worker.orchestrator.complete(t2, {"n": 2}, take_next=True)
    assert [(e.sequence, e.kind, e.node_id) for e in await env.events(eid)] == before
    assert (await env.services.executions.get(env.me, eid)).status == "CANCELLED"

    eid = await env.start(wid, {"n": 1})
    [t1] = await worker.queue.claim(1)
    t2 = await worker.orchestrator.complete(t1, {"n": 1}, take_next=True)
    assert t2 is not None and t2.known_steps is not None
    await pool.execute("UPDATE jobs SET lease_expires_at = now() - interval '1 second'")
    assert await Queue(pool, "reaper", 30).reclaim_expired() == 1
    other = Worker(env.services.url, pool, default_registry(), worker_id="b", lease_seconds=30)
    [again] = await other.queue.claim(1)
    assert again.node_id == "t2" and again.known_steps is not None
    with pytest.raises(LeaseLost):
        await worker.orchestrator.complete(t2, {"n": "late"}, take_next=True)
    await other.orchestrator.complete(again, {"n": "b"})
    steps = await env.steps(eid)
    assert steps["t2"].output == {"n": "b"}
    completed = [e for e in await env.events(eid) if e.kind == "step.completed"]
    assert [e.node_id for e in completed] == ["start", "t1", "t2"]
    await env.services.executions.cancel(env.me, eid)  # its next job out of the way

    # Another transition of the run, the job untouched: the guard sees the sequence move
    # on, and the step is finished under locks, its events numbered after the other's.
    eid = await env.start(wid, {"n": 1})
    [t1] = await worker.queue.claim(1)
    t2 = await worker.orchestrator.complete(t1, {"n": 1}, take_next=True)
    assert t2 is not None and t2.known_steps is not None
    await move_on(pool, eid)
    end = await worker.orchestrator.complete(t2, {"n": 2}, take_next=True)
    assert end is not None and end.node_id == "end"
    events = await env.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert [e.node_id for e in events if e.kind == "step.completed"] == ["start", "t1", "t2"]


async def test_a_branch_beside_others_carries_nothing_from_its_fork(env: Env) -> None:
    """After a fork, the branch a worker takes is not alone: what it knew would go stale
    as soon as a sibling moves, so it carries nothing (its completion is planned from
    what its worker remembers or reads of the run, and written guarded)."""
    wid = await env.create(fan(3))
    await env.start(wid, {})
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    [job] = await worker.queue.claim(1)
    while job is not None and job.node_type != "fork":
        job = await worker.orchestrator.complete(job, {}, take_next=True)
    assert job is not None
    branch = await worker.orchestrator.complete(job, {}, take_next=True)
    assert branch is not None and branch.known_steps is None


async def test_branches_of_one_run_on_two_workers_are_written_without_its_lock(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Branches of a fork run by two workers: the worker that did not fork reads the run
    in one statement and writes guarded; the one that forked finds its memory stale
    (the other wrote since), reads again and writes guarded too. Neither takes the run's
    lock in a transaction (hold_job, made to fail here), and the join still fires once,
    on the last branch, with every event numbered in order."""
    wid = await env.create(fan(3))
    eid = await env.start(wid, {})
    pool = env.services.pool
    # No backlog: the fork's other branches are queued for any worker, as they
    # are when the forking worker's backlog is full.
    a = Worker(
        env.services.url, pool, default_registry(), worker_id="a", lease_seconds=30, backlog=0
    )
    b = Worker(
        env.services.url, pool, default_registry(), worker_id="b", lease_seconds=30, backlog=0
    )
    [split] = await a.queue.claim(1)
    assert split.node_id == "split"
    first = await a.orchestrator.complete(split, {}, take_next=True)
    assert first is not None and eid in a.orchestrator._runs
    second, third = await b.queue.claim(2)
    assert eid not in b.orchestrator._runs
    monkeypatch.setitem(QUERIES, "hold_job", "SELECT 1 / 0")

    assert await b.orchestrator.complete(second, {"by": "b"}, take_next=True) is None
    assert await a.orchestrator.complete(first, {"by": "a"}, take_next=True) is None
    merge = await b.orchestrator.complete(third, {"by": "b"}, take_next=True)
    assert merge is not None and merge.node_id == "merge"
    monkeypatch.undo()
    end = await b.orchestrator.complete(merge, {}, take_next=True)
    assert end is not None
    await b.orchestrator.complete(end, {}, take_next=True)
    assert (await env.services.executions.get(env.me, eid)).status == "COMPLETED"
    events = await env.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    completed = Counter(e.node_id for e in events if e.kind == "step.completed")
    assert completed == dict.fromkeys(["start", "split", "b0", "b1", "b2", "merge", "end"], 1)
    steps = await env.steps(eid)
    assert {n: steps[n].output for n in ("b0", "b1", "b2")} == {
        first.node_id: {"by": "a"},
        second.node_id: {"by": "b"},
        third.node_id: {"by": "b"},
    }


async def test_the_last_two_branches_written_at_once_by_two_workers_fire_the_join_once(
    env: Env,
) -> None:
    """Two workers finish a join's last two branches at once, each planned while the
    other's was open, so each is written checked by the other's being open, not by the
    run's sequence. The run is locked meanwhile (here by a transaction held open), so both
    writes wait for it with their plans made; the one written second must find the other
    branch done, as committed after its statement began, be refused, and plan again from
    the run as it is: the join fires once, with every event numbered in order."""
    wid = await env.create(fan(2))
    eid = await env.start(wid, {})
    pool = env.services.pool
    # No backlog: the fork's other branches are queued for any worker, as they
    # are when the forking worker's backlog is full.
    a = Worker(
        env.services.url, pool, default_registry(), worker_id="a", lease_seconds=30, backlog=0
    )
    b = Worker(
        env.services.url, pool, default_registry(), worker_id="b", lease_seconds=30, backlog=0
    )
    [split] = await a.queue.claim(1)
    first = await a.orchestrator.complete(split, {}, take_next=True)
    assert first is not None
    [second] = await b.queue.claim(1)
    async with pool.acquire() as holder:
        blocker = holder.transaction()
        await blocker.start()
        await holder.execute("SELECT 1 FROM executions WHERE id = $1 FOR NO KEY UPDATE", eid)
        writes = [
            asyncio.create_task(a.orchestrator.complete(first, {"by": "a"}, take_next=True)),
            asyncio.create_task(b.orchestrator.complete(second, {"by": "b"}, take_next=True)),
        ]
        for _ in range(200):  # both wait for the run's lock, their plans made
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND backend_type = 'client backend'"
            )
            if waiting == 2:
                break
            await asyncio.sleep(0.025)
        assert waiting == 2
        await blocker.commit()
    merges = [m for m in await asyncio.gather(*writes) if m is not None]
    assert [m.node_id for m in merges] == ["merge"]
    end = await b.orchestrator.complete(merges[0], {}, take_next=True)
    assert end is not None
    await b.orchestrator.complete(end, {}, take_next=True)
    assert (await env.services.executions.get(env.me, eid)).status == "COMPLETED"
    events = await env.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    completed = Counter(e.node_id for e in events if e.kind == "step.completed")
    assert completed == dict.fromkeys(["start", "split", "b0", "b1", "merge", "end"], 1)
    assert Counter(e.node_id for e in events if e.kind == "step.started")["merge"] == 1
    steps = await env.steps(eid)
    assert {n: steps[n].output for n in ("b0", "b1")} == {
        first.node_id: {"by": "a"},
        second.node_id: {"by": "b"},
    }


async def test_branches_finishing_together_are_written_together(env: Env) -> None:
    """Completions of one run that arrive while another of its completions is being
    written wait for it and are then written in one transaction (instead of queueing for
    the run's lock one transaction each). Each is planned from what the ones before it
    left, so the join still fires once; a branch whose lease was lost meanwhile is
    refused alone, and the others are written all the same."""
    wid = await env.create(fan(5))
    eid = await env.start(wid, {})
    pool = env.services.pool
    # No backlog: the fork's other branches are queued for any worker, as they
    # are when the forking worker's backlog is full.
    worker = Worker(env.services.url, pool, default_registry(), lease_seconds=30, backlog=0)
    [split] = await worker.queue.claim(1)
    assert split.node_id == "split"
    first = await worker.orchestrator.complete(split, {}, take_next=True)
    assert first is not None
    others = await worker.queue.claim(10)
    # Not the run's only jobs: claimed without what the run looked like.
    assert all(b.known_steps is None for b in others)
    branches = [first, *others]
    assert sorted(b.node_id for b in branches) == [f"b{i}" for i in range(5)]
    # Two branches' leases went to another worker meanwhile: the first of the batch
    # that waits (it would have locked the run for the others) and one after it.
    stolen = [others[0], others[2]]
    await pool.execute("UPDATE jobs SET lease_token = gen_random_uuid() WHERE id = ANY($1)",
                       [b.job_id for b in stolen])  # fmt: skip

    outcomes = await asyncio.gather(
        *(worker.orchestrator.complete(b, {"i": b.node_id}, take_next=True) for b in branches),
        return_exceptions=True,
    )
    refused = [
        b.node_id for b, o in zip(branches, outcomes, strict=True) if isinstance(o, LeaseLost)
    ]
    assert refused == [b.node_id for b in stolen]
    assert not any(isinstance(o, BaseException) and not isinstance(o, LeaseLost) for o in outcomes)
    steps = await env.steps(eid)
    done = sorted(b.node_id for b in branches if b not in stolen)
    assert all(steps[n].status == "COMPLETED" and steps[n].output == {"i": n} for n in done)
    # Untouched: as queued as their claims (which write only jobs) left them.
    assert all(steps[b.node_id].status == "QUEUED" for b in stolen)
    assert steps["merge"].status == "PENDING"
    # The first completion alone, then the ones that waited for it, together.
    written = await pool.fetchval(
        """SELECT count(DISTINCT xmin::text) FROM execution_events
            WHERE execution_id = $1 AND kind = 'step.completed' AND node_id LIKE 'b%'""",
        eid,
    )
    assert written == 2

    # The refused branches, finished by the worker that holds them now: the last one
    # fires the join, once.
    merge = None
    for branch in stolen:
        token = await pool.fetchval("SELECT lease_token FROM jobs WHERE id = $1", branch.job_id)
        merge = await worker.orchestrator.complete(
            dataclasses.replace(branch, lease_token=token), {"i": branch.node_id},
            take_next=True,
        )  # fmt: skip
    assert merge is not None and merge.node_id == "merge"
    end = await worker.orchestrator.complete(merge, {"ok": True}, take_next=True)
    assert end is not None
    await worker.orchestrator.complete(end, {}, take_next=True)
    execution = await env.services.executions.get(env.me, eid)
    assert execution.status == "COMPLETED"
    events = await env.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    completed = Counter(e.node_id for e in events if e.kind == "step.completed")
    names = ["start", "split", "merge", "end", *done, *(b.node_id for b in stolen)]
    assert completed == dict.fromkeys(names, 1)


async def test_cancels_in_the_middle_of_a_fan_in_never_fail(running: Env) -> None:
    """Cancels that land while a worker writes the branches' completions together: each
    cancel either ends its run or finds it already ended (Conflict), never an error; no
    job is left behind and every run's events stay numbered without a gap."""
    wid = await running.create(fan(12))
    eids = []
    outcomes: list[str] = []
    for i in range(24):
        eid = await running.start(wid, {})
        eids.append(eid)
        await asyncio.sleep(0.002 * (i % 12))  # at every stage of the run
        try:
            outcomes.append((await running.services.executions.cancel(running.me, eid)).status)
        except Conflict:
            outcomes.append("ended")
    assert set(outcomes) <= {"CANCELLED", "ended"}
    for eid in eids:
        execution = await running.wait(eid)
        assert execution.status in ("COMPLETED", "CANCELLED")
        events = await running.events(eid)
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        completed = Counter(e.node_id for e in events if e.kind == "step.completed")
        assert set(completed.values()) <= {1}
    assert await running.services.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_a_cancel_removes_the_jobs_a_transition_committed_while_it_waited(
    env: Env,
) -> None:
    """A transition that queues steps may commit while a cancel waits for the run, after
    the cancel's first sweep of the run's jobs: the cancel removes those jobs as well
    (a worker may have claimed them meanwhile). A job still left (the sweep after the
    commit lost its connection) is never finished: its step stays cancelled, and once
    its lease runs out the reaper removes it instead of queueing it again."""
    wid = await env.create(fan(3))
    eid = await env.start(wid, {})
    pool = env.services.pool
    worker = Worker(env.services.url, pool, default_registry(), lease_seconds=30)
    [split] = await worker.queue.claim(1)
    steps = await env.steps(eid)
    async with pool.acquire() as other:
        # A transition in flight: it holds the run and queues two branches.
        transaction = other.transaction()
        await transaction.start()
        await other.execute("SELECT 1 FROM executions WHERE id = $1 FOR NO KEY UPDATE", eid)
        await other.execute(
            "INSERT INTO jobs (execution_id, step_id) SELECT $1, unnest($2::uuid[])",
            eid, [steps["b0"].id, steps["b1"].id],
        )  # fmt: skip
        cancel = asyncio.create_task(env.services.executions.cancel(env.me, eid))
        for _ in range(200):  # until the cancel waits for the run
            waiting = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            )
            if waiting:
                break
            await asyncio.sleep(0.01)
        assert waiting
        await transaction.commit()
        assert (await cancel).status == "CANCELLED"
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0

    # A job that was left, claimed by a worker: it is its run's only job, but the run
    # has ended, so the claim gives it nothing of the run to finish it from.
    await pool.execute(
        "INSERT INTO jobs (execution_id, step_id) VALUES ($1, $2)", eid, split.step_id
    )
    [split] = await worker.queue.claim(1)
    assert split.known_steps is None
    before = [(e.sequence, e.kind) for e in await env.events(eid)]
    with pytest.raises(LeaseLost):
        await worker.orchestrator.mark_started(split)
    with pytest.raises(LeaseLost):
        await worker.orchestrator.complete(split, {}, take_next=True)
    assert [(e.sequence, e.kind) for e in await env.events(eid)] == before
    assert statuses(await env.steps(eid))["split"] == "CANCELLED"
    assert (await env.services.executions.get(env.me, eid)).status == "CANCELLED"
    await pool.execute("UPDATE jobs SET lease_expires_at = now() - interval '1 second'")
    assert await worker.queue.reclaim_expired() == 0
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_a_claim_writes_only_its_job_and_the_start_goes_with_the_outcome(env: Env) -> None:
    """A claim leases the job and writes nothing of the run, so that it never waits for
    the run's lock: the step's start (RUNNING, its attempt, step.started at the claim's
    time) is written in the transaction of its outcome."""
    wid = await env.create(chain(1))
    eid = await env.start(wid, {"n": 1})
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    before = [(e.sequence, e.kind) for e in await env.events(eid)]
    [t1] = await worker.queue.claim(1)
    assert t1.start_pending and t1.claimed_at is not None
    assert (await env.steps(eid))["t1"].status == "QUEUED"
    assert [(e.sequence, e.kind) for e in await env.events(eid)] == before

    end = await worker.orchestrator.complete(t1, {"n": 1}, take_next=True)
    steps = await env.steps(eid)
    assert steps["t1"].status == "COMPLETED" and steps["t1"].attempt == 1
    assert steps["t1"].started_at == t1.claimed_at < steps["t1"].finished_at
    events = await env.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    written = [(e.kind, e.node_id, e.attempt) for e in events[len(before) :]]
    assert written == [
        ("step.started", "t1", 1),
        ("step.completed", "t1", 1),
        ("step.started", "end", 1),
    ]
    assert events[len(before)].at == t1.claimed_at
    # The step handed on was started by that same write.
    assert end is not None and not end.start_pending
    assert steps["end"].status == "RUNNING" and steps["end"].attempt == 1


async def test_a_slow_step_shows_running_while_it_works_and_starts_once(env: Env) -> None:
    task = await run_slow_worker(env)
    assert env.worker is not None
    try:
        wid = await env.create(fan(2))
        eid = await env.start(wid, {"sleep": 1})
        for _ in range(100):
            steps = await env.steps(eid)
            if all(steps[b].status == "RUNNING" for b in ("b0", "b1")):
                break
            await asyncio.sleep(0.05)
        # Well before the branches finish, the run shows them running, and says so.
        assert steps["b0"].status == steps["b1"].status == "RUNNING"
        started = [e.node_id for e in await env.events(eid) if e.kind == "step.started"]
        assert {"b0", "b1"} <= set(started)
        assert (await env.wait(eid)).status == "COMPLETED"
    finally:
        env.worker.stop()
        await asyncio.wait_for(task, 30)
    counts = Counter((e.kind, e.node_id) for e in await env.events(eid))
    assert counts[("step.started", "b0")] == counts[("step.started", "b1")] == 1
    assert counts[("step.completed", "b0")] == counts[("step.completed", "b1")] == 1


async def test_a_start_is_not_written_for_a_lease_that_was_lost(env: Env) -> None:
    wid = await env.create(chain(1))
    eid = await env.start(wid, {"n": 1})
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    [t1] = await worker.queue.claim(1)
    before = await env.events(eid)
    await env.services.pool.execute(
        "UPDATE jobs SET lease_token = gen_random_uuid() WHERE id = $1", t1.job_id
    )
    with pytest.raises(LeaseLost):
        await worker.orchestrator.mark_started(t1)
    assert (await env.steps(eid))["t1"].status == "QUEUED"
    assert len(await env.events(eid)) == len(before)


async def test_a_failed_and_a_retried_attempt_carry_their_starts(env: Env) -> None:
    wid = await env.create(chain(1))
    eid = await env.start(wid, {"n": 1})
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    [t1] = await worker.queue.claim(1)
    await worker.orchestrator.retry(t1, {"message": "try again"}, datetime.now(UTC))
    [again] = await worker.queue.claim(1)
    assert again.attempts == 2
    await worker.orchestrator.fail(again, {"message": "no"})
    events = [(e.kind, e.attempt) for e in await env.events(eid) if e.node_id == "t1"]
    assert events == [
        ("step.queued", None),
        ("step.started", 1),
        ("step.retrying", 1),
        ("step.started", 2),
        ("step.failed", 2),
    ]
    step = (await env.steps(eid))["t1"]
    assert step.status == "FAILED" and step.attempt == 2 and step.started_at == again.claimed_at


async def test_an_attempt_lost_before_its_start_was_written_still_counts(env: Env) -> None:
    """A worker that dies within `start_seconds` of its claim leaves no step.started; the
    attempt is counted all the same, and the next one is logged with its number."""
    wid = await env.create(chain(1))
    eid = await env.start(wid, {"n": 1})
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    [lost] = await worker.queue.claim(1)
    await env.services.pool.execute(
        "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        lost.job_id,
    )
    assert await worker.queue.reclaim_expired() == 1
    [again] = await worker.queue.claim(1)
    assert again.attempts == 2
    with pytest.raises(LeaseLost):
        await worker.orchestrator.complete(lost, {"n": "late"})
    await worker.orchestrator.complete(again, {"n": 1})
    events = [(e.kind, e.attempt) for e in await env.events(eid) if e.node_id == "t1"]
    assert events == [("step.queued", None), ("step.started", 2), ("step.completed", 2)]
    assert (await env.steps(eid))["t1"].attempt == 2


async def test_a_run_this_worker_wrote_last_is_planned_from_memory_and_checked(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Completions of a run whose last write was this worker's are planned from what
    that write left, without reading the run. A branch that leaves its join waiting holds
    whatever else was written meanwhile: it is written checked by one of the join's open
    sources, not by the run's sequence; what the worker then knows stays exact if nothing
    else was written since, else it is its own writes only. The last branch, which fires
    the join, needs the run as it is: the worker then reads it again, and the join fires
    once, with every event numbered in order."""
    wid = await env.create(fan(3))
    eid = await env.start(wid, {})
    # No backlog: the fork's other branches are queued for any worker, as they
    # are when the forking worker's backlog is full.
    worker = Worker(
        env.services.url, env.services.pool, default_registry(), lease_seconds=30, backlog=0
    )
    orchestrator, pool = worker.orchestrator, env.services.pool
    [split] = await worker.queue.claim(1)
    assert split.node_id == "split"
    b0 = await orchestrator.complete(split, {}, take_next=True)
    assert b0 is not None
    b1, b2 = await worker.queue.claim(10)

    async def remembered_is_stored(exact: bool) -> None:
        sequence, steps = orchestrator._runs[eid]
        stored_sequence = await pool.fetchval(
            "SELECT last_sequence FROM executions WHERE id = $1", eid
        )
        assert sequence == (stored_sequence if exact else _APPROXIMATE)
        stored = await env.steps(eid)
        assert {n: r.status.value for n, r in steps.items()} == statuses(stored)

    await remembered_is_stored(exact=True)
    # Neither branch reads the run, even after another writer (here, a note in the log)
    # moved it on; nor does either take its lock in a transaction.
    monkeypatch.setitem(QUERIES, "run_steps", "SELECT 1 / 0")
    monkeypatch.setitem(QUERIES, "hold_job", "SELECT 1 / 0")
    await orchestrator.complete(b1, {"i": 1})
    await remembered_is_stored(exact=True)  # nothing else was written: still exact
    await move_on(pool, eid)
    await orchestrator.complete(b2, {"i": 2})
    await remembered_is_stored(exact=False)
    monkeypatch.undo()
    merge = await orchestrator.complete(b0, {"i": 0}, take_next=True)
    assert merge is not None and merge.node_id == "merge"
    await remembered_is_stored(exact=True)
    events = await env.events(eid)
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    done = [e.node_id for e in events if e.kind == "step.completed"]
    assert done == ["start", "split", "b1", "b2", "b0"]
    steps = await env.steps(eid)
    assert [steps[b].output for b in ("b0", "b1", "b2")] == [{"i": 0}, {"i": 1}, {"i": 2}]


async def test_ends_of_a_workflow_without_a_limit_do_not_wait_for_each_other(env: Env) -> None:
    """An ending execution looks for runs waiting behind its workflow's concurrency
    limit; without a limit it takes only a shared lock on the workflow, so that ends
    running together (here, one held open in another transaction) never queue."""
    wid = await env.create(chain(1))
    eid = await env.start(wid, {"n": 1})
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    [t1] = await worker.queue.claim(1)
    end = await worker.orchestrator.complete(t1, {"n": 2}, take_next=True)
    assert end is not None and end.node_id == "end"
    async with env.services.pool.acquire() as other, other.transaction():
        await other.execute("SELECT 1 FROM workflows WHERE id = $1 FOR SHARE", wid)
        await asyncio.wait_for(worker.orchestrator.complete(end, {"n": 2}), 5)
    assert (await env.wait(eid)).status == "COMPLETED"


async def test_an_end_written_from_memory_still_promotes_when_a_limit_was_set(env: Env) -> None:
    """A worker that found a workflow without a limit writes the next ends of its runs in
    one guarded statement; once the workflow has a limit, that write is refused and the
    end goes the locked way, which starts the run waiting behind the limit."""
    from flowsync.services.workflows import WorkflowUpdate

    wid = await env.create(chain(1))
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    orchestrator = worker.orchestrator

    async def run_to_end(eid: Any) -> Any:
        [t1] = await worker.queue.claim(1)
        assert t1.execution_id == eid
        end = await orchestrator.complete(t1, {"n": 2}, take_next=True)
        assert end is not None and end.known_steps is not None
        return end

    first = await env.start(wid, {"n": 1})
    await orchestrator.complete(await run_to_end(first), {"n": 2})
    assert wid in orchestrator._unlimited  # learned by the first end, under locks
    second = await env.start(wid, {"n": 1})
    end = await run_to_end(second)
    await env.services.workflows.update(env.me, wid, WorkflowUpdate(max_concurrency=1))
    third = await env.start(wid, {"n": 1})
    assert (await env.services.executions.get(env.me, third)).status == "PENDING"
    await orchestrator.complete(end, {"n": 2})
    assert (await env.services.executions.get(env.me, second)).status == "COMPLETED"
    assert (await env.services.executions.get(env.me, third)).status == "RUNNING"
    assert wid not in orchestrator._unlimited


async def test_a_write_rolled_back_is_not_remembered(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a worker remembers of a run is what it committed: a transaction that fails
    after its write must leave the memory as the database is."""
    wid = await env.create(chain(2))
    eid = await env.start(wid, {"n": 1})
    worker = Worker(env.services.url, env.services.pool, default_registry(), lease_seconds=30)
    orchestrator = worker.orchestrator
    # Finished under the run's lock (not from what the claim read, nor guarded from a
    # read of the run): one transaction.
    [t1] = await worker.queue.claim(1)
    t1 = dataclasses.replace(t1, known_steps=None)
    real_write = orchestrator._write_completions_planned
    monkeypatch.setattr(orchestrator, "OPTIMISTIC_WRITES", 0)

    async def write_then_fail(*args: Any, **kwargs: Any) -> Any:
        await real_write(*args, **kwargs)
        raise RuntimeError("lost before the commit")

    monkeypatch.setattr(orchestrator, "_write_completions_planned", write_then_fail)
    with pytest.raises(RuntimeError):
        await orchestrator.complete(t1, {"n": 1}, take_next=True)
    assert eid not in orchestrator._runs
    monkeypatch.undo()
    t2 = await orchestrator.complete(t1, {"n": 1}, take_next=True)
    assert t2 is not None and orchestrator._runs[eid][0] == len(await env.events(eid))


async def test_slots_starting_a_new_version_at_once_read_it_once(env: Env) -> None:
    """Every slot of a worker that starts steps of a version it has not compiled yet
    waits for one read and compilation of it (they all get the same workflow), not one
    each; a version that is not there is NotFound for each of them; and a read that was
    cancelled leaves the others to read it themselves."""
    wid = await env.create(fan(3))
    version = await env.services.pool.fetchval(
        "SELECT id FROM workflow_versions WHERE workflow_id = $1", wid
    )
    cache = WorkflowCache(env.services.pool)
    reads: list[Any] = []
    real = cache._load

    async def counted(version_id: Any, source: Any) -> Any:
        reads.append(version_id)
        return await real(version_id, source)

    cache._load = counted  # type: ignore[method-assign]
    found = await asyncio.gather(*(cache.get(version) for _ in range(20)))
    assert reads == [version] and all(f is found[0] for f in found)

    missing = uuid.uuid4()
    failed = await asyncio.gather(*(cache.get(missing) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(f, NotFound) for f in failed) and reads == [version, missing]

    other = WorkflowCache(env.services.pool)
    first = asyncio.create_task(other.get(version))
    await asyncio.sleep(0)  # the first reader is under way
    waiters = [asyncio.create_task(other.get(version)) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    done = await asyncio.gather(*waiters)
    assert all(d is done[0] for d in done) and done[0].nodes.keys() == found[0].nodes.keys()


async def test_a_step_loads_only_the_outputs_it_reads(running: Env) -> None:
    # Found by QA: every step that read one output loaded all of its run's; after twenty
    # 3 MB outputs, six steps reading one each took 368 MB at their peak (a hundred such
    # outputs and a few more readers: gigabytes, and the worker is killed).
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "split", "type": "fork"},
        {"id": "merge", "type": "join"},
        {"id": "end", "type": "end", "data": {"output": "{{ steps.merge.output }}"}},
    ]
    edges = [{"source": "merge", "target": "end"}]
    previous = "start"
    for i in range(20):
        big = {"output": "{{ input.s + input.s + input.s }}"}
        nodes.append({"id": f"big{i}", "type": "transform", "data": big})
        edges.append({"source": previous, "target": f"big{i}"})
        previous = f"big{i}"
    edges.append({"source": previous, "target": "split"})
    readers = {f"one{i}": "{{ size(steps.big0.output) }}" for i in range(5)}
    # One that may read any step (an index from data) still sees them all.
    readers["any"] = "{{ size(steps[input.last].output) }}"
    for name, output in readers.items():
        nodes.append({"id": name, "type": "transform", "data": {"output": output}})
        edges += [{"source": "split", "target": name}, {"source": name, "target": "merge"}]
    wid = await running.create({"nodes": nodes, "edges": edges})
    tracemalloc.start()
    try:
        run = await running.start(wid, {"s": "x" * 1_000_000, "last": "big19"})
        execution = await running.wait(run, timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert execution.status == "COMPLETED", execution.error
    assert execution.output == {name: 3_000_000 for name in readers}
    assert peak < 200 * 2**20  # the run's outputs are 60 MB; each reader loaded them all


class _CountingPool:
    """The worker's pool, counting the statements that read a run's outputs."""

    def __init__(self, pool: Any) -> None:
        self.pool, self.reads = pool, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)

    async def fetch(self, query: str, *args: Any) -> Any:
        if query in (QUERIES["step_outputs"], QUERIES["step_outputs_of"]):
            self.reads += 1
        return await self.pool.fetch(query, *args)


async def test_a_chain_of_small_outputs_reads_them_once(running: Env) -> None:
    # Narrowing what a step reads must not cost a chain a read per step: while the run's
    # outputs are small, the first reader reads them all and they travel on (each later
    # step takes them over from the one before, as before the narrowing).
    assert running.worker is not None
    counting = _CountingPool(running.worker.pool)
    running.worker.pool = counting  # type: ignore[assignment]
    wid = await running.create(chain(8))
    execution = await running.wait(await running.start(wid, {"n": 1}))
    assert execution.status == "COMPLETED" and execution.output == {"n": 9}
    assert counting.reads <= 2, counting.reads  # t1 reads only the input; t2 reads once
