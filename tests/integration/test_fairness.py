"""Priorities and concurrency keys on a real PostgreSQL, at the service level: a run's
priority orders the claim (its jobs carry it), the start's beats the definition's; a
key's limit holds the others PENDING, holding no job, and promotes them in start order
as runs of the key end; a key that fails to evaluate fails its run at once, naming
concurrencyKey; bad input is refused and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from flowsync.errors import DefinitionInvalid, InvalidInput
from flowsync.services.executions import StartItem
from flowsync.services.workflows import WorkflowUpdate
from flowsync.worker.queue import QUERIES
from tests.support.env import Env


def napping(**top: Any) -> dict[str, Any]:
    """start → a long delay → end: a run stays RUNNING until cancelled."""
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "nap", "type": "delay", "data": {"seconds": 600}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "nap"}, {"source": "nap", "target": "end"}],
        **top,
    }


def quick(**top: Any) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "t", "type": "transform", "data": {"output": {"n": "{{ input.n }}"}}},
            {"id": "end", "type": "end", "data": {"output": "{{ steps.t.output }}"}},
        ],
        "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "end"}],
        **top,
    }


KEYED = {"concurrencyKey": "{{ input.tenant }}", "concurrencyKeyLimit": 2}


async def statuses(env: Env, ids: list[uuid.UUID]) -> list[str]:
    rows = await env.services.pool.fetch(
        "SELECT id, status FROM executions WHERE id = ANY($1::uuid[])", ids
    )
    found = {r["id"]: r["status"] for r in rows}
    return [found[i] for i in ids]


async def claim_order(env: Env) -> list[uuid.UUID]:
    """The runs of the jobs the real claim hands out, one claim at a time."""
    order = []
    while True:
        rows = await env.services.pool.fetch(QUERIES["claim_jobs"], 1, 30.0, "test")
        if not rows:
            return order
        order.append(rows[0]["execution_id"])


async def test_priority_orders_the_claim_and_the_start_beats_the_definition(env: Env) -> None:
    wf = await env.create(quick(priority=10))
    default = await env.start(wf, {"n": 1})
    low = await env.start(wf, {"n": 2}, priority=-5)
    high = await env.start(wf, {"n": 3}, priority=50)
    rows = await env.services.pool.fetch(
        "SELECT e.id, e.priority, j.priority AS job FROM executions e"
        " JOIN jobs j ON j.execution_id = e.id"
    )
    assert {r["id"]: (r["priority"], r["job"]) for r in rows} == {
        default: (10, -10),
        low: (-5, 5),
        high: (50, -50),
    }
    assert await claim_order(env) == [high, default, low]
    execution = await env.services.executions.get(env.me, high)
    assert execution.priority == 50


async def test_every_job_of_a_run_carries_its_priority(running: Env) -> None:
    wf = await running.create(quick())
    eid = await running.start(wf, {"n": 1}, priority=-100)
    assert (await running.wait(eid)).status == "COMPLETED"
    # The jobs are gone; what each carried was checked when written (write_plan), and a
    # parked job keeps it: a run that waits shows it.
    nap = await running.create(napping())
    waiting = await running.start(nap, {}, priority=-100)
    for _ in range(200):
        job = await running.services.pool.fetchval(
            "SELECT priority FROM jobs WHERE execution_id = $1 AND lease_token IS NULL", waiting
        )
        if job is not None:
            break
        await asyncio.sleep(0.05)
    assert job == 100
    await running.services.executions.cancel(running.me, waiting)


async def test_a_key_holds_runs_pending_and_promotes_them_in_order(env: Env) -> None:
    wf = await env.create(napping(**KEYED))
    a = [await env.start(wf, {"tenant": "a", "i": i}) for i in range(5)]
    b = await env.start(wf, {"tenant": "b"})
    assert await statuses(env, [*a, b]) == ["RUNNING"] * 2 + ["PENDING"] * 3 + ["RUNNING"]
    held = await env.services.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE execution_id = ANY($1::uuid[])", a[2:]
    )
    assert held == 0  # waiting runs hold no job, so no worker
    keys = await env.services.pool.fetch(
        "SELECT concurrency_key, concurrency_key_limit FROM executions WHERE id = $1", a[0]
    )
    assert (keys[0]["concurrency_key"], keys[0]["concurrency_key_limit"]) == ("a", 2)

    await env.services.executions.cancel(env.me, a[0])
    assert await statuses(env, a) == ["CANCELLED", "RUNNING", "RUNNING", "PENDING", "PENDING"]
    # A waiting run cancelled leaves its place; the next in order still comes next.
    await env.services.executions.cancel(env.me, a[3])
    await env.services.executions.cancel(env.me, a[1])
    assert await statuses(env, a) == ["CANCELLED", "CANCELLED", "RUNNING", "CANCELLED", "RUNNING"]
    for eid in (a[2], a[4], b):
        await env.services.executions.cancel(env.me, eid)


async def test_a_batch_start_admits_by_key_in_order(env: Env) -> None:
    wf = await env.create(napping(**KEYED))
    tenants = ["a", "a", "b", "a", "b", "b"]
    started = await env.services.executions.start_many(
        env.me, wf, [StartItem({"tenant": t}) for t in tenants], priority=7
    )
    ids = [s.execution.id for s in started]
    assert await statuses(env, ids) == ["RUNNING", "RUNNING", "RUNNING", "PENDING", "RUNNING",
                                        "PENDING"]  # fmt: skip
    prios = await env.services.pool.fetch(
        "SELECT DISTINCT e.priority, j.priority AS job FROM executions e"
        " JOIN jobs j ON j.execution_id = e.id WHERE e.id = ANY($1::uuid[])",
        ids,
    )
    assert [(r["priority"], r["job"]) for r in prios] == [(7, -7)]
    await env.services.executions.cancel(env.me, ids[0])
    assert (await statuses(env, ids))[3] == "RUNNING"
    assert (await statuses(env, ids))[5] == "PENDING"


async def test_keyed_runs_all_complete_with_a_worker(running: Env) -> None:
    wf = await running.create(quick(**KEYED))
    ids = [await running.start(wf, {"tenant": "a", "n": i}) for i in range(6)]
    for i, eid in enumerate(ids):
        execution = await running.wait(eid)
        assert execution.status == "COMPLETED" and execution.output == {"n": i}


@pytest.mark.parametrize(
    ("key", "input", "said"),
    [
        ("{{ input.customer.id }}", {}, "concurrencyKey failed"),
        ("{{ input.customer }}", {"customer": {"id": 1}}, "concurrencyKey gave an object"),
        ("{{ input.customer }}", {"customer": None}, "concurrencyKey gave null"),
    ],
)
async def test_a_failing_key_fails_the_run_at_once(
    env: Env, key: str, input: Any, said: str
) -> None:
    wf = await env.create(napping(concurrencyKey=key, concurrencyKeyLimit=1))
    eid = await env.start(wf, input)
    execution = await env.services.executions.get(env.me, eid)
    assert execution.status == "FAILED"
    assert execution.error["path"] == "$.concurrencyKey"
    assert execution.error["nodeId"] == "start"
    assert said in execution.error["message"]
    steps = await env.steps(eid)
    assert steps["start"].status == "FAILED" and steps["nap"].status == "CANCELLED"
    jobs = await env.services.pool.fetchval("SELECT count(*) FROM jobs")
    assert jobs == 0  # nothing queued, nothing hangs
    # A batch with such a run: that run fails, the others start.
    started = await env.services.executions.start_many(
        env.me, wf, [StartItem(input), StartItem({"customer": "x", "customer_id": "y"})]
    )
    got = await statuses(env, [s.execution.id for s in started])
    assert got[0] == "FAILED"


async def test_bad_priorities_are_refused_and_change_nothing(env: Env) -> None:
    wf = await env.create(quick())
    for bad in (101, -101, 1.5, True, "high"):
        with pytest.raises(InvalidInput) as caught:
            await env.start(wf, {}, priority=bad)
        assert caught.value.details[0].path == "priority"
        assert "-100 to 100" in caught.value.message
        with pytest.raises(InvalidInput):
            await env.services.executions.start_many(env.me, wf, [StartItem({})], priority=bad)
    assert await env.services.pool.fetchval("SELECT count(*) FROM executions") == 0


@pytest.mark.parametrize(
    ("top", "path", "said"),
    [
        ({"priority": 500}, "$.definition.priority", "from -100 to 100"),
        ({"priority": "high"}, "$.definition.priority", "whole number"),
        (
            {"concurrencyKey": "{{ input.t }}"},
            "$.definition.concurrencyKey",
            "needs concurrencyKeyLimit",
        ),
        (
            {"concurrencyKeyLimit": 3},
            "$.definition.concurrencyKeyLimit",
            "only with a concurrencyKey",
        ),
        (
            {"concurrencyKey": "{{ input.t }}", "concurrencyKeyLimit": 0},
            "$.definition.concurrencyKeyLimit",
            "from 1 to",
        ),
        (
            {"concurrencyKey": "{{ input. }}", "concurrencyKeyLimit": 1},
            "$.definition.concurrencyKey",
            "",
        ),
        (
            {"concurrencyKey": "{{ steps.t.output }}", "concurrencyKeyLimit": 1},
            "$.definition.concurrencyKey",
            "only input and trigger",
        ),
        (
            {"concurrencyKey": 5, "concurrencyKeyLimit": 1},
            "$.definition.concurrencyKey",
            "template string",
        ),
    ],
)
async def test_bad_fairness_fields_are_named_and_change_nothing(
    env: Env, top: dict[str, Any], path: str, said: str
) -> None:
    with pytest.raises(DefinitionInvalid) as caught:
        await env.create(quick(**top))
    problems = caught.value.details
    assert any(p.path == path and said in p.message for p in problems), problems
    assert await env.services.pool.fetchval("SELECT count(*) FROM workflows") == 0


async def test_the_fields_are_stored_with_the_definition(env: Env) -> None:
    wf = await env.create(quick(priority=-3, **KEYED))
    found = await env.services.workflows.get(env.me, wf)
    definition = found.definition if hasattr(found, "definition") else None
    stored = await env.services.pool.fetchval(
        "SELECT v.definition FROM workflow_versions v WHERE v.workflow_id = $1", wf
    )
    assert stored["priority"] == -3
    assert stored["concurrencyKey"] == "{{ input.tenant }}"
    assert stored["concurrencyKeyLimit"] == 2
    del definition


async def test_a_key_and_the_workflows_limit_both_hold(env: Env) -> None:
    wf = await env.create(napping(**KEYED))
    await env.services.workflows.update(env.me, wf, WorkflowUpdate(max_concurrency=3))
    a = [await env.start(wf, {"tenant": "a"}) for _ in range(3)]
    b = [await env.start(wf, {"tenant": "b"}) for _ in range(2)]
    # a: two run, the third waits for its key; b: one runs, the workflow is then full.
    assert await statuses(env, [*a, *b]) == ["RUNNING", "RUNNING", "PENDING", "RUNNING",
                                             "PENDING"]  # fmt: skip
    await env.services.executions.cancel(env.me, a[0])
    # The workflow's room goes to the oldest waiting run whose key has room.
    assert await statuses(env, [*a, *b]) == ["CANCELLED", "RUNNING", "RUNNING", "RUNNING",
                                             "PENDING"]  # fmt: skip
    await env.services.executions.cancel(env.me, b[0])
    assert (await statuses(env, b)) == ["CANCELLED", "RUNNING"]
    for eid in (a[1], a[2], b[1]):
        await env.services.executions.cancel(env.me, eid)


def failing_or_holding(**top: Any) -> dict[str, Any]:
    """start → check (input.fail) → true: pay, a wait that times out after 1 s and fails
    the run (a dead letter); false: hold, a wait for "go" that holds its run RUNNING."""
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "check", "type": "condition", "data": {"expression": "input.fail"}},
            {"id": "pay", "type": "wait", "data": {"signal": "paid", "timeoutSeconds": 1}},
            {"id": "hold", "type": "wait", "data": {"signal": "go"}},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": "start", "target": "check"},
            {"source": "check", "target": "pay", "sourceHandle": "true"},
            {"source": "check", "target": "hold", "sourceHandle": "false"},
            {"source": "pay", "target": "end"},
            {"source": "hold", "target": "end"},
        ],
        **top,
    }


async def kinds(env: Env, eid: uuid.UUID) -> list[str]:
    return [e.kind for e in await env.events(eid)]


@pytest.mark.parametrize("limit", ["key", "workflow"])
async def test_a_retry_and_a_redrive_wait_for_room_under_the_limits(
    running: Env, limit: str
) -> None:
    """A retry (a new run reusing its original's outputs) and a dead letter's redrive
    (the failed run resuming) wait PENDING, holding no job, while the run's key (limit 1)
    or its workflow (maxConcurrency 1) is full, and go on, in order, as room comes."""
    top = {"concurrencyKey": "{{ input.tenant }}", "concurrencyKeyLimit": 1}
    wf = await running.create(failing_or_holding(**(top if limit == "key" else {})))
    if limit == "workflow":
        await running.services.workflows.update(running.me, wf, WorkflowUpdate(max_concurrency=1))
    redriven = await running.start(wf, {"tenant": "a", "fail": True})
    assert (await running.wait(redriven)).status == "FAILED"
    retried = await running.start(wf, {"tenant": "a", "fail": True})
    assert (await running.wait(retried)).status == "FAILED"
    holder = await running.start(wf, {"tenant": "a", "fail": False})
    for _ in range(200):
        if (await running.steps(holder))["hold"].status == "WAITING":
            break
        await asyncio.sleep(0.05)
    assert (await running.steps(holder))["hold"].status == "WAITING"

    letter = await running.services.pool.fetchval(
        "SELECT id FROM dead_letters WHERE execution_id = $1", redriven
    )
    await running.services.dead_letters.redrive(running.me, letter)
    retry = (await running.services.executions.retry(running.me, retried)).execution.id
    assert await statuses(running, [holder, redriven, retry]) == ["RUNNING", "PENDING", "PENDING"]
    held = await running.services.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE execution_id = ANY($1::uuid[])", [redriven, retry]
    )
    assert held == 0  # waiting, they hold no job and no worker
    assert (await kinds(running, redriven))[-1] == "execution.queued"
    assert (await running.services.executions.get(running.me, redriven)).error is None

    await running.services.executions.signal_execution(running.me, holder, "go", {})
    assert (await running.wait(holder)).status == "COMPLETED"
    # The redriven run resumes first (it started first), its wait fails again, and the
    # retry then runs, reusing its original's start and check.
    again = await running.wait(redriven)
    assert again.status == "FAILED"
    assert (await kinds(running, redriven)).count("execution.resumed") == 1
    assert (await running.wait(retry)).status == "FAILED"
    steps = await running.steps(retry)
    assert steps["check"].status == "COMPLETED" and steps["pay"].status == "FAILED"
    assert steps["hold"].status == "SKIPPED"
    reused = await running.services.pool.fetch(
        "SELECT n.node_id FROM step_executions n JOIN step_executions o"
        " ON o.id = n.reused_from_id WHERE n.execution_id = $1 AND o.execution_id = $2"
        " ORDER BY n.node_id",
        retry, retried,
    )  # fmt: skip
    assert [r["node_id"] for r in reused] == ["check", "start"]
    assert (await kinds(running, retry)).count("step.reused") == 2
    # Never two of them running at once: each went on as the one before it ended.
    rows = await running.services.pool.fetch(
        "SELECT execution_id, kind, at FROM execution_events"
        " WHERE execution_id = ANY($1::uuid[]) ORDER BY id",
        [holder, redriven, retry],
    )
    at = {(r["execution_id"], r["kind"]): r["at"] for r in rows}  # the last of each kind
    assert at[holder, "execution.completed"] <= at[redriven, "execution.resumed"]
    assert at[redriven, "execution.failed"] <= at[retry, "execution.started"]
