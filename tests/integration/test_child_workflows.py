"""Child workflows on a real PostgreSQL with an in-process worker: a `workflow` step
completes with its child's output, fails when the child fails, waits holding no job
lease, cancelling the parent cancels the child, and the depth limit stops nesting."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from flowsync.services.workflows import WorkflowUpdate
from flowsync.worker.registry import default_registry
from flowsync.worker.runner import Worker
from tests.support.env import Env


def calling(workflow_id: uuid.UUID, input: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {"workflowId": str(workflow_id)}
    if input is not None:
        data["input"] = input
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "call", "type": "workflow", "data": data},
            {"id": "end", "type": "end", "data": {"output": "{{ steps.call.output }}"}},
        ],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "end"}],
    }


def doubling() -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "t", "type": "transform", "data": {"output": {"doubled": "{{ input.n * 2 }}"}}},
            {"id": "end", "type": "end", "data": {"output": "{{ steps.t.output }}"}},
        ],
        "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "end"}],
    }


def waiting(seconds: float) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "nap", "type": "delay", "data": {"seconds": seconds}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "nap"}, {"source": "nap", "target": "end"}],
    }


async def children(env: Env, parent: uuid.UUID) -> list[Any]:
    rows = await env.services.pool.fetch(
        "SELECT id, status, parent_step_id, workflow_depth FROM executions"
        " WHERE parent_execution_id = $1 ORDER BY created_at",
        parent,
    )
    return list(rows)


async def until_child(env: Env, parent: uuid.UUID) -> Any:
    for _ in range(300):
        found = await children(env, parent)
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no child started")


async def test_the_step_completes_with_the_childs_output(running: Env) -> None:
    child = await running.create(doubling(), "child")
    parent = await running.create(calling(child, {"n": "{{ input.n }}"}), "parent")
    eid = await running.start(parent, {"n": 21})
    execution = await running.wait(eid)
    assert execution.status == "COMPLETED", execution.error
    assert execution.output == {"doubled": 42}
    (kid,) = await children(running, eid)
    assert kid["status"] == "COMPLETED" and kid["workflow_depth"] == 1
    steps = await running.steps(eid)
    assert kid["parent_step_id"] == steps["call"].id
    assert steps["call"].output == {"doubled": 42}
    waited = [e for e in await running.events(eid) if e.kind == "step.waiting"]
    assert [e.data for e in waited] == [{"childExecutionId": str(kid["id"])}]


async def test_a_failed_child_fails_the_step(running: Env) -> None:
    child = await running.create(doubling(), "child")
    parent = await running.create(calling(child, {"n": "oops"}), "parent")
    eid = await running.start(parent, {})
    execution = await running.wait(eid)
    assert execution.status == "FAILED"
    (kid,) = await children(running, eid)
    assert kid["status"] == "FAILED"
    assert execution.error["nodeId"] == "call"
    assert execution.error["childExecutionId"] == str(kid["id"])
    assert "ended FAILED" in execution.error["message"]
    assert execution.error["code"] == "child_failed"


async def test_a_waiting_parent_holds_no_lease_and_cancel_reaches_the_child(
    running: Env,
) -> None:
    grandchild = await running.create(waiting(600), "grandchild")
    child = await running.create(calling(grandchild), "child")
    parent = await running.create(calling(child), "parent")
    eid = await running.start(parent, {})
    kid = await until_child(running, eid)
    grandkid = await until_child(running, kid["id"])
    assert grandkid["workflow_depth"] == 2
    step = (await running.steps(eid))["call"]
    for _ in range(100):
        leased = await running.services.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE step_id = $1 AND lease_token IS NOT NULL", step.id
        )
        if leased == 0 and (await running.steps(eid))["call"].status == "WAITING":
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the parent's step still holds a lease")
    await running.services.executions.cancel(running.me, eid)
    for run in (eid, kid["id"], grandkid["id"]):
        assert (await running.wait(run)).status == "CANCELLED"


async def test_the_depth_limit_fails_the_step(env: Env) -> None:
    leaf = await env.create(doubling(), "leaf")
    middle = await env.create(calling(leaf, {"n": 1}), "middle")
    top = await env.create(calling(middle), "top")
    worker = Worker(
        env.services.url, env.services.pool, default_registry(),
        concurrency=4, poll_seconds=0.2, grace_seconds=2, max_workflow_depth=1,
    )  # fmt: skip
    task = asyncio.create_task(worker.run())
    try:
        eid = await env.start(top, {})
        execution = await env.wait(eid)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
    assert execution.status == "FAILED"
    (kid,) = await children(env, eid)
    middle_run = await env.services.executions.get(env.me, kid["id"])
    assert middle_run.status == "FAILED"
    assert "FLOWSYNC_MAX_WORKFLOW_DEPTH" in middle_run.error["message"]
    assert await children(env, kid["id"]) == []


async def test_a_redrive_after_a_failed_child_starts_a_new_child(running: Env) -> None:
    child = await running.create(doubling(), "child")
    parent = await running.create(calling(child, {"n": "{{ input.n }}"}), "parent")
    eid = await running.start(parent, {"n": "oops"})
    assert (await running.wait(eid)).status == "FAILED"
    # The child is fixed (the step runs the newest version), then the step redriven.
    fixed = doubling()
    fixed["nodes"][1]["data"]["output"] = {"doubled": "{{ string(input.n) + string(input.n) }}"}
    await running.services.workflows.update(running.me, child, WorkflowUpdate(definition=fixed))
    (letter,) = (await running.services.dead_letters.list(running.me, execution_id=eid)).items
    await running.services.dead_letters.redrive(running.me, letter.id)
    execution = await running.wait(eid)
    assert execution.status == "COMPLETED", execution.error
    assert execution.output == {"doubled": "oopsoops"}
    assert [k["status"] for k in await children(running, eid)] == ["FAILED", "COMPLETED"]


async def test_a_child_workflow_deleted_since_the_save_fails_the_step(running: Env) -> None:
    child = await running.create(doubling(), "child")
    parent = await running.create(calling(child, {"n": 1}), "parent")
    await running.services.workflows.delete(running.me, child)
    eid = await running.start(parent, {})
    execution = await running.wait(eid)
    assert execution.status == "FAILED"
    assert execution.error["nodeId"] == "call"
    assert execution.error["message"] == f"No workflow {child} to start (deleted?)."
    assert await children(running, eid) == []


async def test_a_parent_that_fails_cancels_its_child(running: Env) -> None:
    child = await running.create(waiting(600), "child")
    parent = await running.create(
        {
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "split", "type": "fork"},
                {"id": "call", "type": "workflow", "data": {"workflowId": str(child)}},
                {"id": "nap", "type": "delay", "data": {"seconds": 0.5}},
                {"id": "bad", "type": "transform", "data": {"output": "{{ input.x.y }}"}},
                {"id": "merge", "type": "join"},
                {"id": "end", "type": "end"},
            ],
            "edges": [
                {"source": "start", "target": "split"},
                {"source": "split", "target": "call"},
                {"source": "split", "target": "nap"},
                {"source": "nap", "target": "bad"},
                {"source": "call", "target": "merge"},
                {"source": "bad", "target": "merge"},
                {"source": "merge", "target": "end"},
            ],
        },
        "parent",
    )
    eid = await running.start(parent, {})
    kid = await until_child(running, eid)
    execution = await running.wait(eid)
    assert execution.status == "FAILED" and execution.error["nodeId"] == "bad"
    cancelled = await running.wait(kid["id"])
    assert cancelled.status == "CANCELLED"
    assert str(eid) in cancelled.error["message"]


async def test_cancelling_the_child_fails_the_parents_step(running: Env) -> None:
    child = await running.create(waiting(600), "child")
    parent = await running.create(calling(child), "parent")
    eid = await running.start(parent, {})
    kid = await until_child(running, eid)
    await running.services.executions.cancel(running.me, kid["id"])
    execution = await running.wait(eid)
    assert execution.status == "FAILED"
    assert execution.error["childExecutionId"] == str(kid["id"])
    assert execution.error["message"] == f"The child execution {kid['id']} ended CANCELLED."


async def test_children_wait_behind_their_workflows_concurrency_limit(running: Env) -> None:
    limited = await running.services.workflows.create(
        running.me, "child", None, waiting(0.3), max_concurrency=1
    )
    call = {"workflowId": str(limited.id)}
    parent = await running.create(
        {
            "nodes": [
                {"id": "start", "type": "start"},
                {"id": "split", "type": "fork"},
                {"id": "a", "type": "workflow", "data": call},
                {"id": "b", "type": "workflow", "data": call},
                {"id": "merge", "type": "join"},
                {"id": "end", "type": "end"},
            ],
            "edges": [
                {"source": "start", "target": "split"},
                {"source": "split", "target": "a"},
                {"source": "split", "target": "b"},
                {"source": "a", "target": "merge"},
                {"source": "b", "target": "merge"},
                {"source": "merge", "target": "end"},
            ],
        },
        "parent",
    )
    eid = await running.start(parent, {})
    execution = await running.wait(eid)
    assert execution.status == "COMPLETED", execution.error
    kids = await children(running, eid)
    assert [k["status"] for k in kids] == ["COMPLETED", "COMPLETED"]
    queued = await running.services.pool.fetchval(
        "SELECT count(*) FROM execution_events WHERE execution_id = ANY($1::uuid[])"
        " AND kind = 'execution.queued'",
        [k["id"] for k in kids],
    )
    assert queued == 1  # the second waited PENDING for the first
