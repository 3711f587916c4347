"""Batch starts (ExecutionService.start_many): one transaction for the whole batch, the
same checks, idempotency, admission and concurrency limit as single starts, and runs that
a worker completes like any other."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from flowsync.db.models import Execution
from flowsync.errors import Backpressure, FlowSyncError, InvalidInput, NotFound
from flowsync.services.executions import ExecutionService, StartItem
from flowsync.services.principal import Principal
from tests.conftest import new_subject
from tests.support.env import Env, run_worker
from tests.support.graphs import chain
from tests.support.target import action


def service(env: Env, **limits: Any) -> ExecutionService:
    """An execution service with its own limits (and counts), on the env's database."""
    return ExecutionService(
        env.services.sessions, env.services.pool, env.services.executions._orchestrator,
        **limits,
    )  # fmt: skip


async def executions(env: Env) -> int:
    return int(await env.services.pool.fetchval("SELECT count(*) FROM executions"))


async def test_a_batch_runs_to_completion_on_a_worker(running: Env) -> None:
    wid = await running.create(chain(2))
    items = [StartItem({"n": i}) for i in range(50)]
    started = await running.services.executions.start_many(running.me, wid, items)
    assert [s.created for s in started] == [True] * 50
    assert [s.execution.input for s in started] == [{"n": i} for i in range(50)]
    for i, s in enumerate(started):
        done = await running.wait(s.execution.id)
        assert (done.status, done.output) == ("COMPLETED", {"n": i + 2})
        sequences = [e.sequence for e in await running.events(s.execution.id)]
        assert sequences == list(range(1, len(sequences) + 1))


def _shape(events: list[Any], steps: dict[str, Any]) -> tuple[Any, ...]:
    return (
        [(e.sequence, e.kind, e.status, e.node_id, e.attempt, e.data, e.step_id is None)
         for e in events],
        {n: (s.status, s.attempt, s.input, s.output, s.error, s.queued_at is None,
             s.started_at is None, s.finished_at is None)
         for n, s in steps.items()},
    )  # fmt: skip


async def test_a_batch_start_writes_what_a_single_start_writes(env: Env) -> None:
    wid = await env.create(chain(2))
    single = await env.start(wid, {"n": 1})
    (batched,) = await env.services.executions.start_many(env.me, wid, [StartItem({"n": 1})])
    assert _shape(await env.events(single), await env.steps(single)) == _shape(
        await env.events(batched.execution.id), await env.steps(batched.execution.id)
    )
    runs = [await env.services.executions.get(env.me, e) for e in (single, batched.execution.id)]
    one, other = ((r.status, r.last_sequence, r.started_at is None, r.input) for r in runs)
    assert one == other
    jobs = "SELECT count(*) FROM jobs WHERE execution_id = $1 AND lease_token IS NULL"
    pool = env.services.pool
    assert await pool.fetchval(jobs, single) == await pool.fetchval(jobs, batched.execution.id)
    # The single start's entry is on its run; the batch's, on the workflow, lists its run.
    audit = "SELECT action, entity_type, data FROM audit_log WHERE entity_id = $1 AND action = $2"
    alone = await pool.fetchrow(audit, str(single), "execution.started")
    batch = await pool.fetchrow(audit, str(wid), "execution.batch_started")
    assert (alone["action"], alone["entity_type"]) == ("execution.started", "execution")
    assert (batch["action"], batch["entity_type"]) == ("execution.batch_started", "workflow")
    assert alone["data"] == {"workflowId": str(wid), "version": 1, "trigger": "MANUAL"}
    assert batch["data"] == {
        "version": 1, "trigger": "MANUAL", "count": 1,
        "executionIds": [str(batched.execution.id)],
    }  # fmt: skip


async def test_each_event_and_job_names_its_own_run_s_step(env: Env) -> None:
    """The batch's steps get their ids from the caller, run by run: every event of a
    node and every job name that node's step of their own run, also where repeated
    keys and runs held PENDING leave places of the batch without a run."""
    wf = await env.services.workflows.create(env.me, "w", None, chain(3), 4)
    svc = env.services.executions
    await svc.start_many(env.me, wf.id, [StartItem({}, "old")])
    items = [StartItem({"n": 0}), StartItem({}, "old"), StartItem({"n": 2}),
             StartItem({"n": 3}, "k"), StartItem({"n": 4}, "k"), StartItem({"n": 5})]  # fmt: skip
    started = await svc.start_many(env.me, wf.id, items)
    ids = list({s.execution.id for s in started})
    pool = env.services.pool
    events = await pool.fetch(
        "SELECT v.execution_id, v.node_id, v.step_id, s.execution_id AS step_run,"
        "       s.node_id AS step_node"
        "  FROM execution_events v LEFT JOIN step_executions s ON s.id = v.step_id"
        " WHERE v.execution_id = ANY($1::uuid[])",
        ids,
    )
    noded = [e for e in events if e["node_id"] is not None]
    assert noded and len(noded) < len(events)  # run events have no step
    assert all(e["step_id"] is None for e in events if e["node_id"] is None)
    assert all((e["step_run"], e["step_node"]) == (e["execution_id"], e["node_id"])
               for e in noded)  # fmt: skip
    jobs = await pool.fetch(
        "SELECT j.execution_id, s.execution_id AS step_run, s.node_id, s.status"
        "  FROM jobs j LEFT JOIN step_executions s ON s.id = j.step_id"
        " WHERE j.execution_id = ANY($1::uuid[])",
        ids,
    )
    # A limit of 4: "old" and the first three new runs run, the last waits without a job.
    running = {s.execution.id for s in started if s.execution.status == "RUNNING"}
    assert sorted(j["execution_id"] for j in jobs) == sorted(running) and len(running) == 4
    assert all((j["step_run"], j["node_id"], j["status"]) == (j["execution_id"], "t1", "QUEUED")
               for j in jobs)  # fmt: skip
    steps = await pool.fetch(
        "SELECT execution_id, count(*) AS n, count(DISTINCT id) AS ids FROM step_executions"
        " WHERE execution_id = ANY($1::uuid[]) GROUP BY execution_id",
        ids,
    )
    assert len(steps) == len(ids) and all(s["n"] == s["ids"] == 5 for s in steps)


async def test_a_key_repeated_within_and_across_batches_returns_its_execution(env: Env) -> None:
    wid = await env.create(chain(1, delay=60))
    svc = env.services.executions
    first = await svc.start_many(
        env.me, wid, [StartItem({}, "a"), StartItem({}, "b"), StartItem({"x": 1}, "a"), StartItem()]
    )
    assert [s.created for s in first] == [True, True, False, True]
    assert first[2].execution.id == first[0].execution.id
    second = await svc.start_many(env.me, wid, [StartItem({}, "b"), StartItem({}, "c")])
    assert [s.created for s in second] == [False, True]
    assert second[0].execution.id == first[1].execution.id
    single = await svc.start(env.me, wid, {}, idempotency_key="c")
    assert (single.created, single.execution.id) == (False, second[1].execution.id)
    repeat = await svc.start_many(env.me, wid, [StartItem({}, "a"), StartItem({}, "c")])
    assert [s.execution.id for s in repeat] == [first[0].execution.id, second[1].execution.id]
    assert await executions(env) == 4


def _stored(execution: Execution) -> dict[str, Any]:
    return {c.key: getattr(execution, c.key) for c in Execution.__table__.columns}


@pytest.mark.parametrize("templated", [True, False])
async def test_a_batch_returns_each_execution_as_stored(
    env: Env, monkeypatch: pytest.MonkeyPatch, templated: bool
) -> None:
    # The batch answers with the rows its statement wrote, not a second read: they
    # must be the stored ones, column for column: running and held PENDING, repeated
    # keys, and runs started one at a time (a graph the templates cannot write).
    from flowsync.engine import orchestrator

    if not templated:
        monkeypatch.setattr(orchestrator, "_templated", lambda plan: False)
    wf = await env.services.workflows.create(env.me, "w", None, chain(1, delay=60), 2)
    svc = env.services.executions
    await svc.start_many(env.me, wf.id, [StartItem({"k": "old"}, "old")])
    items = [StartItem({"n": 0}, "a"), StartItem({"n": 1}), StartItem({"n": 2}, "a"),
             StartItem({"n": 3}, "old"), StartItem(None, "b"), StartItem({"n": 5})]  # fmt: skip
    started = await svc.start_many(env.me, wf.id, items, priority=7)
    # A limit of 2, one taken by "old": the first new run runs, the rest wait.
    assert [(s.created, s.execution.status) for s in started] == [
        (True, "RUNNING"), (True, "PENDING"), (False, "RUNNING"), (False, "RUNNING"),
        (True, "PENDING"), (True, "PENDING"),
    ]  # fmt: skip
    assert started[2].execution.id == started[0].execution.id
    stored = await svc.get_many(env.me, [s.execution.id for s in started])
    for s in started:
        assert _stored(s.execution) == _stored(stored[s.execution.id])
    assert {s.execution.priority for s in started if s.created} == {7}


async def test_a_batch_over_the_limit_names_it_and_starts_nothing(env: Env) -> None:
    wid = await env.create(chain(1))
    with pytest.raises(InvalidInput) as caught:
        await service(env, max_batch_starts=3).start_many(env.me, wid, [StartItem()] * 4)
    assert "at most 3" in caught.value.message and "has 4" in caught.value.message
    assert [p.path for p in caught.value.details] == ["$.inputs"]
    assert await executions(env) == 0


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        (StartItem({}, ""), "$.inputs[2].idempotencyKey"),
        (StartItem({}, "k" * 256), "$.inputs[2].idempotencyKey"),
        (StartItem({"s": "a\x00b"}), "$.inputs[2].input.s"),
        (StartItem({"big": "x" * (1024 * 1024)}), "$.inputs[2].input"),
    ],
)
async def test_an_invalid_item_is_named_by_its_index_and_nothing_starts(
    env: Env, bad: StartItem, path: str
) -> None:
    wid = await env.create(chain(1))
    with pytest.raises(FlowSyncError) as caught:
        await env.services.executions.start_many(env.me, wid, [StartItem(), StartItem(), bad])
    assert [p.path for p in caught.value.details] == [path]
    assert await executions(env) == 0


async def test_backpressure_refuses_a_whole_batch_as_it_would_its_last_start(env: Env) -> None:
    # A start is admitted while at most 2 jobs are due before it: a batch is admitted
    # when its last start would be, counting the batch's own jobs before it.
    wid = await env.create(action("https://example.invalid/"))
    with pytest.raises(Backpressure):
        await service(env, max_queue_depth=2).start_many(env.me, wid, [StartItem()] * 4)
    assert await executions(env) == 0
    svc = service(env, max_queue_depth=2)
    started = await svc.start_many(env.me, wid, [StartItem({}, "a"), StartItem(), StartItem()])
    assert [s.created for s in started] == [True] * 3
    with pytest.raises(Backpressure):
        await svc.start_many(env.me, wid, [StartItem()])
    # A batch of repeats only starts nothing: it is answered, never refused.
    (again,) = await svc.start_many(env.me, wid, [StartItem({}, "a")])
    assert (again.created, again.execution.id) == (False, started[0].execution.id)
    assert await executions(env) == 3


async def test_another_owner_s_workflow_is_not_found_and_keys_are_per_owner(env: Env) -> None:
    theirs = Principal(await env.services.api_keys.ensure_owner(new_subject()), "them")
    their_wid = (await env.services.workflows.create(theirs, "w", None, chain(1))).id
    svc = env.services.executions
    for target in (their_wid, uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(NotFound):
            await svc.start_many(env.me, target, [StartItem({}, "k")])
    assert await executions(env) == 0
    (their_run,) = await svc.start_many(theirs, their_wid, [StartItem({}, "k")])
    wid = await env.create(chain(1))
    (mine,) = await svc.start_many(env.me, wid, [StartItem({}, "k")])
    assert mine.created and mine.execution.id != their_run.execution.id
    with pytest.raises(NotFound):
        await svc.get(env.me, their_run.execution.id)


async def test_a_concurrency_limit_holds_the_rest_of_a_batch_pending_in_order(env: Env) -> None:
    wf = await env.services.workflows.create(env.me, "w", None, chain(1), 2)
    svc = env.services.executions
    started = await svc.start_many(env.me, wf.id, [StartItem({"n": i}) for i in range(5)])
    assert [s.execution.status for s in started] == ["RUNNING"] * 2 + ["PENDING"] * 3
    more = await svc.start_many(env.me, wf.id, [StartItem({"n": 5})])
    assert more[0].execution.status == "PENDING"
    task = await run_worker(env)
    try:
        finished = [await env.wait(s.execution.id) for s in [*started, *more]]
        assert [f.status for f in finished] == ["COMPLETED"] * 6
        # Waiting runs are promoted oldest first (created_at, then id): a batch's keep
        # its order. (Their start times need not: promotions by runs ending at once
        # commit in any order.)
        created = [f.created_at for f in finished[:5]]
        assert created == sorted(created) and len(set(created)) == 5
    finally:
        assert env.worker is not None
        env.worker.stop()
        await asyncio.wait_for(task, 30)


async def test_an_empty_batch_starts_nothing(env: Env) -> None:
    wid = await env.create(chain(1))
    assert await env.services.executions.start_many(env.me, wid, []) == []


async def test_a_batch_that_starts_nothing_still_needs_a_workflow_of_the_caller(
    env: Env,
) -> None:
    """An empty batch, or one of repeated keys only, answers 404 for a workflow that is
    not there or not the caller's, as a batch that starts runs does."""
    svc = env.services.executions
    wid = await env.create(chain(1))
    (first,) = await svc.start_many(env.me, wid, [StartItem({}, "k")])
    theirs = Principal(await env.services.api_keys.ensure_owner(new_subject()), "them")
    their_wid = (await env.services.workflows.create(theirs, "w", None, chain(1))).id
    for target in (their_wid, uuid.uuid4()):
        for items in ([], [StartItem({}, "k")]):
            with pytest.raises(NotFound):
                await svc.start_many(env.me, target, items)
    await env.services.workflows.delete(env.me, wid)
    with pytest.raises(NotFound):
        await svc.start_many(env.me, wid, [StartItem({}, "k")])
    assert await executions(env) == 1 and first.created


async def test_a_first_transition_the_templates_cannot_write_is_written_run_by_run(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No valid graph ends at its start today; should one, each run is started alone,
    # in the same transaction, with the same results.
    from flowsync.engine import orchestrator

    monkeypatch.setattr(orchestrator, "_templated", lambda plan: False)
    wf = await env.services.workflows.create(env.me, "w", None, chain(1), 1)
    svc = env.services.executions
    items = [StartItem({"n": 0}, "a"), StartItem({"n": 1}), StartItem({"n": 2}, "a")]
    started = await svc.start_many(env.me, wf.id, items)
    assert [(s.created, s.execution.status) for s in started] == [
        (True, "RUNNING"), (True, "PENDING"), (False, "RUNNING"),
    ]  # fmt: skip
    assert started[2].execution.id == started[0].execution.id
    assert await executions(env) == 2
