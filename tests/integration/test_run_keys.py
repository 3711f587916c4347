"""A run's owner and version are its workflow's, however it started (one run, a batch, a
child workflow step, a retry; migration 0020). It has no foreign key at all since 0021 and
0022, nor has an audit entry to its owner: a workflow's deletion takes its runs by
trigger, an owner's takes its workflows (and so their runs) and its audit entries, a
trigger's or a run's deletion clears the links to it, and a start holds its workflow and
trigger so that a deletion waits for it and takes (or clears) what it started."""

from __future__ import annotations

import asyncio

import pytest

from flowsync.errors import NotFound
from flowsync.services.executions import _LOCKED_WORKFLOW_SQL, StartItem
from flowsync.services.principal import Principal
from flowsync.worker.queue import QUERIES
from tests.integration.test_child_workflows import calling, doubling
from tests.integration.test_run_children import children
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


async def test_a_workflows_deletion_takes_its_runs_and_their_children_only(env: Env) -> None:
    gone_wid = await env.create(chain(1, delay=60), name="gone")
    kept_wid = await env.create(chain(1, delay=60), name="kept")
    batch = await env.services.executions.start_many(
        env.me, gone_wid, [StartItem({"n": i}) for i in range(3)]
    )
    gone = [s.execution.id for s in batch]
    kept = await env.start(kept_wid, {})
    kept_children = await children(env, kept)
    assert sum(kept_children.values()) > 0
    await env.services.pool.execute("DELETE FROM workflows WHERE id = $1", gone_wid)
    count = "SELECT count(*) FROM executions WHERE id = ANY($1::uuid[])"
    assert await env.services.pool.fetchval(count, gone) == 0
    for run in gone:
        assert sum((await children(env, run)).values()) == 0
    assert await env.services.pool.fetchval(count, [kept]) == 1
    assert await children(env, kept) == kept_children


async def test_an_owners_deletion_takes_its_audit_entries_only(env: Env) -> None:
    other = Principal(await env.services.api_keys.ensure_owner("local:other"), "other")
    mine = await env.create(chain(1, delay=60), name="mine")
    theirs = await env.services.workflows.create(other, "theirs", None, chain(1, delay=60))
    await env.start(mine, {})
    await env.services.executions.start(other, theirs.id, {})
    entries = "SELECT count(*) FROM audit_log WHERE owner_id = $1"
    assert await env.services.pool.fetchval(entries, env.me.owner_id) >= 2
    theirs_before = await env.services.pool.fetchval(entries, other.owner_id)
    assert theirs_before >= 2  # the workflow's creation and the run's start
    await env.services.pool.execute("DELETE FROM owners WHERE id = $1", env.me.owner_id)
    assert await env.services.pool.fetchval(entries, env.me.owner_id) == 0
    assert await env.services.pool.fetchval(entries, other.owner_id) == theirs_before


async def test_a_deletion_waits_for_a_start_of_the_workflow_and_takes_its_run(env: Env) -> None:
    wid = await env.create(chain(1, delay=60))
    pool = env.services.pool
    async with pool.acquire() as starting, pool.acquire() as deleting:
        start = starting.transaction()
        await start.start()
        # What every start reads first (services/executions.py), then its run, uncommitted.
        row = await starting.fetchrow(_LOCKED_WORKFLOW_SQL, wid, env.me.owner_id, None)
        assert row is not None
        created = await starting.fetch(
            QUERIES["insert_execution"], env.me.owner_id, wid, row["version_id"],
            row["version"], {"n": 1}, None, None, "MANUAL", {}, None, "RUNNING",
            ["start"], ["start"], 0, None, None,
        )  # fmt: skip
        run = created[0]["execution_id"]
        backend = await deleting.fetchval("SELECT pg_backend_pid()")
        deletion = asyncio.ensure_future(
            deleting.execute("DELETE FROM workflows WHERE id = $1", wid)
        )
        waiting = False
        for _ in range(200):  # at most ~10 s
            waiting = bool(
                await pool.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                    backend,
                )
            )
            if waiting or deletion.done():
                break
            await asyncio.sleep(0.05)
        assert waiting and not deletion.done(), "the deletion did not wait for the start"
        await start.commit()
        assert await asyncio.wait_for(deletion, 10) == "DELETE 1"
    assert await pool.fetchval("SELECT count(*) FROM executions WHERE id = $1", run) == 0
    assert sum((await children(env, run)).values()) == 0


async def test_a_triggers_deletion_clears_its_runs_link_and_keeps_them(env: Env) -> None:
    wid = await env.create(chain(1, delay=60))
    hook = (await env.services.triggers.create(env.me, wid, "WEBHOOK")).trigger
    started = await env.services.executions.start(
        env.me, wid, {}, trigger_id=hook.id, trigger_type="WEBHOOK"
    )
    run = started.execution.id
    other = await env.start(wid, {})
    link = "SELECT trigger_id FROM executions WHERE id = $1"
    assert await env.services.pool.fetchval(link, run) == hook.id
    await env.services.triggers.delete(env.me, hook.id)
    assert await env.services.pool.fetchval(link, run) is None
    assert (await env.services.executions.get(env.me, run)).trigger_type == "WEBHOOK"
    assert (await env.services.executions.get(env.me, other)).id == other
    # A start by the trigger now gone is refused, as its key used to refuse it.
    with pytest.raises(NotFound, match="trigger"):
        await env.services.executions.start(
            env.me, wid, {}, trigger_id=hook.id, trigger_type="WEBHOOK"
        )


async def test_a_parent_runs_deletion_clears_its_childs_link(running: Env) -> None:
    env = running
    child_wid = await env.create(doubling(), name="child")
    parent = await env.start(await env.create(calling(child_wid, {"n": 2}), name="parent"))
    await env.wait(parent, timeout=30)
    children = "SELECT id FROM executions WHERE parent_execution_id = $1"
    (child,) = [r["id"] for r in await env.services.pool.fetch(children, parent)]
    await env.services.pool.execute("DELETE FROM executions WHERE id = $1", parent)
    link = "SELECT parent_execution_id FROM executions WHERE id = $1"
    assert await env.services.pool.fetchval(link, child) is None
    assert (await env.services.executions.get(env.me, child)).status == "COMPLETED"
