"""The queue's SQL, statement by statement: what the engine's correctness rests on."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from flowsync.config import to_asyncpg_dsn
from flowsync.engine.validation import validate_workflow_document
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from flowsync.worker.queue import QUERIES, Queue, create_pool, init_connection
from tests.conftest import new_subject
from tests.support.graphs import fan


async def test_take_job_notices_a_transition_committed_while_it_waited(
    services: Services, db_url: str
) -> None:
    """take_job reads the steps with its statement's snapshot. When another transition of
    the run commits while take_job waits for the execution's lock, the snapshot's
    sequence number differs from the locked row's, which tells the engine to re-read."""
    me = Principal(await services.api_keys.ensure_owner(new_subject()), "t")
    wf = await services.workflows.create(me, "fan", None, fan(2))
    eid = (await services.executions.start(me, wf.id, {})).execution.id
    [job] = await Queue(services.pool, "w", 30).claim(1)

    holder = await asyncpg.connect(to_asyncpg_dsn(db_url))
    taker = await asyncpg.connect(to_asyncpg_dsn(db_url))
    await init_connection(taker)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.fetchrow(QUERIES["lock_execution"], eid)
        await holder.execute(
            "UPDATE executions SET last_sequence = last_sequence + 1 WHERE id = $1", eid
        )
        taking = asyncio.create_task(
            taker.fetchrow(QUERIES["take_job"], job.job_id, job.lease_token, job.step_id)
        )
        await asyncio.sleep(0.3)
        assert not taking.done()  # waiting for the execution's lock
        await tx.commit()
        head = await asyncio.wait_for(taking, 5)
        assert head is not None
        assert head["last_sequence"] == head["seen_sequence"] + 1

        # Without a concurrent transition the two agree, and the steps come along.
        [other] = await Queue(services.pool, "w", 30).claim(1) or [None]
        assert other is None  # only the start job existed
    finally:
        await holder.close()
        await taker.close()


async def test_take_job_refuses_a_stale_lease(services: Services) -> None:
    me = Principal(await services.api_keys.ensure_owner(new_subject()), "t")
    wf = await services.workflows.create(me, "fan", None, fan(2))
    await services.executions.start(me, wf.id, {})
    [job] = await Queue(services.pool, "w", 30).claim(1)
    take = QUERIES["take_job"]
    assert await services.pool.fetchrow(take, job.job_id, uuid.uuid4(), job.step_id) is None
    assert await services.pool.fetchrow(take, job.job_id, job.lease_token, uuid.uuid4()) is None
    head = await services.pool.fetchrow(take, job.job_id, job.lease_token, job.step_id)
    assert head is not None and head["seen_sequence"] == head["last_sequence"]
    assert sorted(head["node_ids"]) == sorted(["start", "split", "merge", "end", "b0", "b1"])


async def test_the_claim_uses_the_partial_index_even_after_analyze_on_an_empty_table(
    services: Services, db_url: str
) -> None:
    """Stack notes: a claim planned from statistics of an empty table can turn into a scan
    and sort of the whole backlog. On a worker's connections the claim is an
    index-ordered LIMIT over ix_jobs_claim whatever the statistics say."""
    await services.pool.execute("ANALYZE jobs")
    pool = await create_pool(db_url, worker=True)
    try:
        async with pool.acquire() as conn:
            plan = await conn.fetchval(
                "EXPLAIN (FORMAT JSON) " + QUERIES["claim_jobs"], 10, 30.0, "w"
            )
    finally:
        await pool.close()
    scans = list(_scans(plan if isinstance(plan, list) else json.loads(plan)))
    jobs = [(node, index) for node, relation, index in scans if relation == "jobs"]
    assert ("Index Scan", "ix_jobs_claim") in jobs
    assert all(node != "Seq Scan" for node, _ in jobs)


def _scans(node: object) -> Iterator[tuple[str, str | None, str | None]]:
    """(node type, relation, index) of every scan in an EXPLAIN (FORMAT JSON) tree."""
    if isinstance(node, list):
        for item in node:
            yield from _scans(item)
    elif isinstance(node, dict):
        if "Relation Name" in node:
            yield node["Node Type"], node["Relation Name"], node.get("Index Name")
        for value in node.values():
            yield from _scans(value)


def test_the_documented_example_validates() -> None:
    path = Path(__file__).parents[2] / "docs" / "examples" / "order-sync.json"
    doc = validate_workflow_document(json.loads(path.read_text()))
    assert doc.name == "order-sync"


async def test_a_retried_completion_cannot_finish_a_job_handed_on(services: Services) -> None:
    """When a commit's reply is lost, the worker retries the completion. If the commit
    did land, the job row was handed on to the next step under the same lease; the retry
    must then get "lease lost", not finish (and delete) the next step's job."""
    from flowsync.engine.orchestrator import Orchestrator, WorkflowCache
    from flowsync.errors import LeaseLost
    from tests.support.graphs import chain

    me = Principal(await services.api_keys.ensure_owner(new_subject()), "t")
    wf = await services.workflows.create(me, "chain", None, chain(2))
    eid = (await services.executions.start(me, wf.id, {"n": 0})).execution.id
    queue = Queue(services.pool, "w", 30)
    orchestrator = Orchestrator(services.pool, WorkflowCache(services.pool), worker_id="w")
    [t1] = await queue.claim(1)
    nxt = await orchestrator.complete(t1, {"n": 0}, take_next=True)
    assert nxt is not None and nxt.node_id == "t2"
    assert (nxt.job_id, nxt.lease_token) == (t1.job_id, t1.lease_token)

    try:
        await orchestrator.complete(t1, {"n": 0}, take_next=True)
        raise AssertionError("the retry should have lost the lease")
    except LeaseLost:
        pass
    row = await services.pool.fetchrow("SELECT step_id, lease_token FROM jobs")
    assert row is not None and row["step_id"] == nxt.step_id
    status = await services.pool.fetchval(
        "SELECT status FROM step_executions WHERE execution_id = $1 AND node_id = 't2'", eid
    )
    assert status == "RUNNING"
    after = await orchestrator.complete(nxt, {"n": 1}, take_next=True)
    assert after is not None and after.node_id == "end"
