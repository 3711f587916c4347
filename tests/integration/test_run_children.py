"""A run's steps, events and jobs have no foreign key to it (migration 0018): they go with
it by the trigger executions_children_gone, whatever deletes it (one statement of many
runs, an owner's deletion through its own cascade), and nobody else's go."""

from __future__ import annotations

import uuid

from flowsync.db.models import EXECUTION_CHILDREN
from tests.support.env import Env
from tests.support.graphs import chain


async def children(env: Env, execution_id: uuid.UUID) -> dict[str, int]:
    return {
        table: int(
            await env.services.pool.fetchval(
                f"SELECT count(*) FROM {table} WHERE execution_id = $1", execution_id
            )
        )
        for table in EXECUTION_CHILDREN
    }


async def test_deleting_runs_deletes_their_steps_events_and_jobs_only(env: Env) -> None:
    wid = await env.create(chain(2, delay=60))  # queued jobs stay: no worker runs
    gone = [await env.start(wid, {"n": i}) for i in range(3)]
    kept = await env.start(wid, {"n": 9})
    before = await children(env, kept)
    assert before == {"step_executions": 5, "execution_events": 4, "jobs": 1}
    assert [await children(env, e) for e in gone] == [before] * 3
    deleted = await env.services.pool.execute(
        "DELETE FROM executions WHERE id = ANY($1::uuid[])", gone
    )
    assert deleted == "DELETE 3"
    for e in gone:
        assert await children(env, e) == dict.fromkeys(EXECUTION_CHILDREN, 0)
    assert await children(env, kept) == before


async def test_an_owners_deletion_takes_its_runs_children(env: Env) -> None:
    wid = await env.create(chain(1, delay=60))
    run = await env.start(wid, {})
    assert sum((await children(env, run)).values()) > 0
    await env.services.pool.execute("DELETE FROM owners WHERE id = $1", env.me.owner_id)
    assert await children(env, run) == dict.fromkeys(EXECUTION_CHILDREN, 0)
