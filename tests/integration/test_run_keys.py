"""A run has a foreign key to its workflow only (migration 0020): its owner and version
are its workflow's, however it started (one run, a batch, a child workflow step, a
retry), so that key implies theirs, and an owner's deletion still takes its runs."""

from __future__ import annotations

from flowsync.services.executions import StartItem
from tests.integration.test_child_workflows import calling, doubling
from tests.support.env import Env
from tests.support.graphs import chain

FAILING = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "boom", "type": "transform", "data": {"output": "{{ input.missing.deeper }}"}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "boom"}, {"source": "boom", "target": "end"}],
}

# Runs whose owner or version is not their workflow's: what the dropped keys would miss.
STRAYS = """
SELECT count(*) FILTER (WHERE e.owner_id <> w.owner_id OR v.workflow_id IS DISTINCT FROM
                              e.workflow_id OR v.version IS DISTINCT FROM e.version),
       count(*)
  FROM executions e
  JOIN workflows w ON w.id = e.workflow_id
  LEFT JOIN workflow_versions v ON v.id = e.workflow_version_id
 WHERE e.owner_id = $1
"""


async def test_every_run_has_its_workflows_owner_and_version(running: Env) -> None:
    env = running
    plain = await env.create(chain(1), name="plain")
    single = await env.start(plain, {"n": 1})
    batch = await env.services.executions.start_many(
        env.me, plain, [StartItem({"n": i}) for i in range(5)]
    )
    child = await env.create(doubling(), name="child")
    parent = await env.start(await env.create(calling(child, {"n": 2}), name="parent"))
    failing = await env.create(FAILING, name="failing")
    failed = await env.start(failing, {})
    for run in [single, parent, failed, *(s.execution.id for s in batch)]:
        await env.wait(run, timeout=30)
    assert (await env.wait(failed)).status == "FAILED"
    retried = (await env.services.executions.retry(env.me, failed)).execution.id
    await env.wait(retried, timeout=30)
    strays, runs = await env.services.pool.fetchrow(STRAYS, env.me.owner_id)
    # single, five batched, parent and its child, the failed run and its retry
    assert (strays, runs) == (0, 10)


async def test_an_owners_deletion_takes_its_runs(env: Env) -> None:
    wid = await env.create(chain(1, delay=60))
    runs = [await env.start(wid, {"n": i}) for i in range(3)]
    count = "SELECT count(*) FROM executions WHERE id = ANY($1::uuid[])"
    assert await env.services.pool.fetchval(count, runs) == 3
    await env.services.pool.execute("DELETE FROM owners WHERE id = $1", env.me.owner_id)
    assert await env.services.pool.fetchval(count, runs) == 0
    assert (
        await env.services.pool.fetchval("SELECT count(*) FROM workflows WHERE id = $1", wid) == 0
    )
