"""Table upkeep on a real PostgreSQL: the jobs table, and the run history's tables, are
vacuumed by the process that runs retention when dead rows pile up, whatever autovacuum
does, and left alone when a vacuum ran recently or the dead rows are few."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from flowsync.config import to_asyncpg_dsn
from flowsync.retention.prune import Policy, Pruner, RetentionLoop
from flowsync.retention.upkeep import QueueUpkeep
from flowsync.services.executions import StartItem
from tests.support.env import Env
from tests.support.graphs import chain

CHURN = 3000


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        yield connection
    finally:
        await connection.close()


async def no_autovacuum(env: Env) -> None:
    """As on a server with autovacuum off (or busy elsewhere): only upkeep vacuums jobs
    in this test's database (and an autovacuum cannot make its decisions moot)."""
    await env.services.pool.execute("ALTER TABLE jobs SET (autovacuum_enabled = false)")


async def churn(env: Env, rows: int = CHURN) -> None:
    """Queue `rows` jobs (never due) for a finished run's step and delete them, as claims
    and completions do: `rows` dead rows in jobs; wait until the statistics count them."""
    wid = await env.create(chain(1), name=f"wf-{uuid.uuid4().hex[:6]}")
    execution_id = await env.start(wid, {"n": 1})
    assert (await env.wait(execution_id)).status == "COMPLETED"
    async with env.services.pool.acquire() as c:
        await c.execute(
            "INSERT INTO jobs (execution_id, step_id, run_at) "
            "SELECT execution_id, id, now() + interval '1 day' "
            "  FROM step_executions, generate_series(1, $2) "
            " WHERE execution_id = $1 LIMIT $2",
            execution_id,
            rows,
        )
        await c.execute("DELETE FROM jobs WHERE execution_id = $1", execution_id)
        await c.execute("SELECT pg_stat_force_next_flush()")
    await until(env, "n_dead_tup >= $1", rows)


async def stat(env: Env, column: str) -> int:
    value = await env.services.pool.fetchval(
        f"SELECT {column} FROM pg_stat_user_tables WHERE relid = 'jobs'::regclass"
    )
    return int(value or 0)


async def until(env: Env, condition: str, value: int) -> None:
    """Wait (at most 10 s) until the jobs table's statistics meet `condition`."""
    query = f"SELECT {condition} FROM pg_stat_user_tables WHERE relid = 'jobs'::regclass"
    for _ in range(200):
        if await env.services.pool.fetchval(query, value):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the jobs table's statistics never met {condition} ({value})")


async def test_dead_rows_get_a_vacuum_then_none_until_the_interval_passed(
    running: Env, conn: asyncpg.Connection
) -> None:
    env = running
    await no_autovacuum(env)
    await churn(env)
    vacuums = await stat(env, "vacuum_count")
    upkeep = QueueUpkeep(interval=3600, min_dead=CHURN // 2)
    decided = await upkeep.run(conn)
    assert [s.table for s in decided] == ["jobs"] and decided[0].dead >= CHURN
    await until(env, "vacuum_count > $1", vacuums)
    assert await stat(env, "n_dead_tup") < CHURN // 2
    # More dead rows, but a vacuum ran within the hour: nothing is done.
    await churn(env)
    assert await upkeep.run(conn) == []


async def test_few_dead_rows_are_left_to_autovacuum(running: Env, conn: asyncpg.Connection) -> None:
    env = running
    await churn(env, 200)
    dead = await stat(env, "n_dead_tup")
    assert await QueueUpkeep(interval=1, min_dead=dead + 1).run(conn) == []


async def test_the_retention_loop_keeps_the_queue_with_every_window_off(
    running: Env, db_url: str
) -> None:
    env = running
    # Retention's windows all off (the default): the loop still vacuums the queue.
    await no_autovacuum(env)
    await churn(env)
    vacuums = await stat(env, "vacuum_count")
    loop = RetentionLoop(
        db_url, Pruner(Policy()), interval=3600, upkeep=QueueUpkeep(0.2, min_dead=CHURN // 2)
    )
    task = asyncio.create_task(loop.run())
    try:
        await until(env, "vacuum_count > $1", vacuums)
    finally:
        loop.stop()
        await asyncio.wait_for(task, 10)


HISTORY = ("executions", "step_executions", "execution_events")


async def test_the_run_history_is_vacuumed_too(running: Env, conn: asyncpg.Connection) -> None:
    """Retention deletes whole runs with their steps and events: dead rows that only a
    vacuum makes room of, here (as on a server with autovacuum off) upkeep's."""
    env = running
    for table in HISTORY:
        await env.services.pool.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    wid = await env.create(chain(3), name="history")
    started = await env.services.executions.start_many(
        env.me, wid, [StartItem({"n": i}) for i in range(100)]
    )
    for item in started:
        assert (await env.wait(item.execution.id, timeout=60)).status == "COMPLETED"
    pruned = await Pruner(Policy(executions=timedelta(0))).prune(conn)
    assert pruned is not None and pruned.executions == 100
    await conn.execute("SELECT pg_stat_force_next_flush()")
    # The statistics are counted per server process and sent on at most every 10 s by an
    # idle one: the worker's last updates may arrive after the deletions, and the page
    # pruning counted against them (a count never goes below 0) with them. Wait for the
    # counts to hold the deleted rows (100 runs, 500 steps less a few pruned) first.
    dead = "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = $1"
    least = {"executions": 100, "step_executions": 401, "execution_events": 100}
    for _ in range(300):
        seen = {t: await env.services.pool.fetchval(dead, t) for t in HISTORY}
        if all(seen[t] >= least[t] for t in HISTORY):
            break
        await asyncio.sleep(0.05)
    counts = "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = $1"
    before = {t: await env.services.pool.fetchval(counts, t) for t in HISTORY}
    decided = await QueueUpkeep(interval=3600, min_dead=100).run(conn)
    vacuumed = {s.table: s for s in decided}
    assert set(HISTORY) <= set(vacuumed)
    for table in HISTORY:
        for _ in range(200):
            if await env.services.pool.fetchval(counts, table) > before[table]:
                break
            await asyncio.sleep(0.05)
        assert await env.services.pool.fetchval(counts, table) > before[table], table
    # The 500 step rows deleted (5 steps a run; the statistics' counts are estimates,
    # and pruning a page on access may drop a few) are gone once vacuumed.
    assert vacuumed["step_executions"].dead > 400
    assert await env.services.pool.fetchval(dead, "step_executions") < 100
    # Just vacuumed: nothing more to do within the interval.
    assert await QueueUpkeep(interval=3600, min_dead=100).run(conn) == []
