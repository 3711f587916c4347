"""Wait and approval steps on a real PostgreSQL with an in-process worker: a waiting
step holds no worker, a signal completes it (sent before or after the run gets there),
a timeout fails it or takes its "timeout" edge, and the bad signals change nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from flowsync.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    TriggerInvalid,
    WebhookReplayed,
)
from flowsync.services.principal import Principal
from flowsync.services.webhooks import sign
from flowsync.services.workflows import WorkflowUpdate
from tests.conftest import new_subject
from tests.support.env import Env, run_worker
from tests.support.graphs import approving, waiting


async def until_waiting(env: Env, eid: uuid.UUID, node: str = "wait") -> None:
    for _ in range(200):
        if (await env.steps(eid))[node].status == "WAITING":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{node} never waited")


async def signals_of(env: Env, eid: uuid.UUID) -> list[dict[str, Any]]:
    rows = await env.services.pool.fetch(
        "SELECT name, payload, node_id, taken_at IS NOT NULL AS taken FROM signals"
        " WHERE execution_id = $1 ORDER BY id",
        eid,
    )
    return [dict(r) for r in rows]


async def test_a_wait_holds_no_worker_and_a_signal_completes_it(running: Env) -> None:
    wid = await running.create(waiting("paid"))
    eid = await running.start(wid, {"order": 7})
    await until_waiting(running, eid)
    job = await running.services.pool.fetchrow(
        "SELECT lease_token, run_at > now() + interval '1 year' AS parked FROM jobs"
        " WHERE execution_id = $1",
        eid,
    )
    assert job is not None and job["lease_token"] is None and job["parked"]
    _, sent = await running.services.executions.signal_execution(
        running.me, eid, "paid", {"amount": 12}
    )
    assert sent.node_id == "wait"
    done = await running.wait(eid)
    assert done.status == "COMPLETED" and done.output == {"amount": 12}
    steps = await running.steps(eid)
    assert steps["wait"].output == {"amount": 12} and steps["got"].status == "COMPLETED"
    kinds = [e.kind for e in await running.events(eid)]
    assert kinds.index("step.waiting") < kinds.index("signal.received")
    assert await signals_of(running, eid) == [
        {"name": "paid", "payload": {"amount": 12}, "node_id": "wait", "taken": True}
    ]
    audit = await running.services.pool.fetchrow(
        "SELECT action, data FROM audit_log WHERE entity_id = $1 AND action LIKE '%ed'"
        " AND action <> 'execution.started'",
        str(eid),
    )
    assert audit is not None and audit["action"] == "execution.signalled"


async def test_a_signal_sent_before_the_wait_is_kept_then_taken(env: Env) -> None:
    """No worker runs until the signal is in: the run has not reached its wait."""
    wid = await env.create(waiting("paid"))
    eid = await env.start(wid, {})
    _, sent = await env.services.executions.signal_execution(env.me, eid, "paid", {"early": 1})
    assert sent.node_id is None
    assert (await signals_of(env, eid))[0]["taken"] is False
    worker = await run_worker(env)
    try:
        done = await env.wait(eid)
    finally:
        assert env.worker is not None
        env.worker.stop()
        await worker
    assert done.status == "COMPLETED" and done.output == {"early": 1}
    assert (await signals_of(env, eid))[0] == {
        "name": "paid", "payload": {"early": 1}, "node_id": "wait", "taken": True
    }  # fmt: skip


async def test_a_timeout_takes_the_timeout_edge(running: Env) -> None:
    wid = await running.create(waiting("paid", timeout=0.5, timeout_branch=True))
    done = await running.wait(await running.start(wid, {}))
    assert done.status == "COMPLETED"
    assert done.output["timedOut"] is True and done.output["signal"] == "paid"
    steps = await running.steps(done.id)
    assert steps["late"].status == "COMPLETED" and steps["got"].status == "SKIPPED"
    assert "step.timed_out" in [e.kind for e in await running.events(done.id)]


async def test_a_timeout_without_a_timeout_edge_fails_the_run(running: Env) -> None:
    wid = await running.create(waiting("paid", timeout=0.5))
    done = await running.wait(await running.start(wid, {}))
    assert done.status == "FAILED"
    assert done.error["nodeId"] == "wait" and done.error["code"] == "WAIT_TIMED_OUT"
    # A signal after the end changes nothing: 409.
    with pytest.raises(Conflict):
        await running.services.executions.signal_execution(running.me, done.id, "paid", {})


async def test_a_timed_out_wait_redriven_waits_again_for_its_signal(running: Env) -> None:
    # Its wait after the redrive times out too: 3 s leave the signal room on a busy machine.
    wid = await running.create(waiting("paid", timeout=3))
    eid = await running.start(wid, {})
    assert (await running.wait(eid)).status == "FAILED"
    letter = await running.services.pool.fetchval(
        "SELECT id FROM dead_letters WHERE execution_id = $1", eid
    )
    await running.services.dead_letters.redrive(running.me, letter)
    await until_waiting(running, eid)
    await running.services.executions.signal_execution(running.me, eid, "paid", {"late": 1})
    done = await running.wait(eid)
    assert done.status == "COMPLETED" and done.output == {"late": 1}


@pytest.mark.parametrize(
    ("payload", "way"), [({"approved": True, "by": "ann", "comment": "ok"}, "approved"),
                         ({"approved": False, "comment": "no"}, "rejected")],
)  # fmt: skip
async def test_an_approval_takes_its_decision_and_is_audited(
    running: Env, payload: dict[str, Any], way: str
) -> None:
    wid = await running.create(approving())
    eid = await running.start(wid, {})
    await until_waiting(running, eid, "review")
    await running.services.executions.signal_execution(running.me, eid, "approval", payload)
    done = await running.wait(eid)
    assert done.status == "COMPLETED" and done.output["way"] == way
    review = done.output["review"]
    assert review["approved"] is (way == "approved")
    assert review["by"] == payload.get("by", running.me.actor)
    audit = await running.services.pool.fetchrow(
        "SELECT actor, action, data FROM audit_log WHERE entity_id = $1"
        " AND action <> 'execution.started'",
        str(eid),
    )
    assert audit is not None and audit["action"] == f"execution.{way}"
    assert audit["actor"] == running.me.actor
    assert audit["data"]["by"] == review["by"] and audit["data"]["comment"] == payload["comment"]


async def test_bad_signals_are_refused_and_change_nothing(running: Env) -> None:
    wid = await running.create(approving())
    eid = await running.start(wid, {})
    await until_waiting(running, eid, "review")
    signal = running.services.executions.signal_execution
    with pytest.raises(InvalidInput, match="'paid'"):
        await signal(running.me, eid, "paid", {})
    with pytest.raises(InvalidInput) as bad:
        await signal(running.me, eid, "approval", {"approved": "yes", "extra": 1})
    assert [p.path for p in bad.value.details] == ["$.payload.approved", "$.payload.extra"]
    with pytest.raises(InvalidInput):
        await signal(running.me, eid, "has space", {})
    with pytest.raises(PayloadTooLarge):
        await signal(running.me, eid, "approval", {"approved": True, "comment": "x" * (1 << 20)})
    other = Principal(await running.services.api_keys.ensure_owner(new_subject()), "other")
    with pytest.raises(NotFound):
        await signal(other, eid, "approval", {"approved": True})
    with pytest.raises(NotFound):
        await signal(running.me, uuid.uuid4(), "approval", {"approved": True})
    assert await signals_of(running, eid) == []
    assert (await running.steps(eid))["review"].status == "WAITING"
    assert "signal.received" not in [e.kind for e in await running.events(eid)]


# -- a webhook that signals instead of starting --------------------------------------------

SIGNALLING = {"name": "paid", "match": "trigger.body.orderId == input.orderId"}
JSON = {"content-type": "application/json"}


async def test_a_signalling_webhook_completes_the_matching_run(running: Env) -> None:
    wid = await running.create(waiting("paid"))
    created = await running.services.triggers.create(
        running.me, wid, "WEBHOOK", {"signal": SIGNALLING}
    )
    assert created.trigger.config["signal"] == SIGNALLING
    tid, secret = created.trigger.id, created.secret
    assert secret is not None
    runs = {n: await running.start(wid, {"orderId": n}) for n in (1, 2, 3)}
    await until_waiting(running, runs[2])
    body = b'{"orderId": 2, "amount": 40}'
    headers = {**JSON, "X-FlowSync-Signature": sign(secret, body, int(time.time()))}
    result = await running.services.webhooks.receive(tid, body, headers, "")
    assert (result.status, result.execution_id) == (202, runs[2])
    assert result.body == {"executionId": str(runs[2]), "signal": "paid", "takenBy": "wait"}
    done = await running.wait(runs[2])
    assert done.status == "COMPLETED" and done.output == {"orderId": 2, "amount": 40}
    for other in (runs[1], runs[3]):
        assert (await running.services.executions.get(running.me, other)).status == "RUNNING"
    # The same signed delivery again is a replay; no run matching is a 404; neither
    # signals anything.
    with pytest.raises(WebhookReplayed):
        await running.services.webhooks.receive(tid, body, headers, "")
    body = b'{"orderId": 99}'
    headers = {**JSON, "X-FlowSync-Signature": sign(secret, body, int(time.time()) - 1)}
    with pytest.raises(NotFound, match="matches"):
        await running.services.webhooks.receive(tid, body, headers, "")
    taken = await running.services.pool.fetchval("SELECT count(*) FROM signals")
    assert taken == 1
    audit = await running.services.pool.fetchrow(
        "SELECT actor FROM audit_log WHERE action = 'execution.signalled'"
    )
    assert audit is not None and audit["actor"] == f"webhook:{tid}"


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"signal": {**SIGNALLING, "match": "trigger.body.orderId =="}},
         "$.config.signal.match"),
        ({"signal": {**SIGNALLING, "match": "steps.x.output == 1"}}, "$.config.signal.match"),
        ({"signal": {**SIGNALLING, "name": "no spaces"}}, "$.config.signal.name"),
        ({"signal": SIGNALLING, "mode": "sync"}, "$.config.mode"),
        ({"signal": SIGNALLING, "input": {"a": 1}}, "$.config.input"),
        ({"signal": {"name": "paid"}}, "$.config.signal.match"),
    ],
)  # fmt: skip
async def test_a_bad_signalling_webhook_is_refused_at_its_path(
    env: Env, config: dict[str, Any], path: str
) -> None:
    wid = await env.create(waiting("paid"))
    with pytest.raises(TriggerInvalid) as bad:
        await env.services.triggers.create(env.me, wid, "WEBHOOK", config)
    assert path in [p.path for p in bad.value.details], bad.value.details


async def test_signals_racing_the_runs_to_their_waits_are_each_taken_once(running: Env) -> None:
    """Signals sent while the runs start, park and wake: kept or taken, each signal
    completes its run exactly once, and none is left behind."""
    wid = await running.create(waiting("go"))
    eids = [await running.start(wid, {"i": i}) for i in range(20)]
    signal = running.services.executions.signal_execution
    await asyncio.gather(*(signal(running.me, eid, "go", {"i": i}) for i, eid in enumerate(eids)))
    for i, eid in enumerate(eids):
        done = await running.wait(eid)
        assert done.status == "COMPLETED" and done.output == {"i": i}
        completed = [e for e in await running.events(eid) if e.kind == "step.completed"]
        assert [e.node_id for e in completed].count("wait") == 1
    left = await running.services.pool.fetchval(
        "SELECT count(*) FROM signals WHERE taken_at IS NULL"
    )
    assert left == 0
    assert await running.services.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_a_run_queued_behind_its_limit_keeps_its_signal_until_it_runs(
    running: Env,
) -> None:
    wid = await running.create(waiting("go"))
    await running.services.workflows.update(running.me, wid, WorkflowUpdate(max_concurrency=1))
    first = await running.start(wid, {"n": 1})
    queued = await running.start(wid, {"n": 2})
    assert (await running.services.executions.get(running.me, queued)).status == "PENDING"
    _, kept = await running.services.executions.signal_execution(running.me, queued, "go", {"q": 1})
    assert kept.node_id is None
    await until_waiting(running, first)
    await running.services.executions.signal_execution(running.me, first, "go", {"f": 1})
    assert (await running.wait(first)).output == {"f": 1}
    done = await running.wait(queued)  # promoted when the first ended: takes its signal
    assert done.status == "COMPLETED" and done.output == {"q": 1}
    events = [e.kind for e in await running.events(queued)]
    assert "signal.received" not in events  # queued runs log events once they start
