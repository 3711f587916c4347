"""Retention on a real PostgreSQL: old finished runs go with everything that hangs on
them, in batches; running, recent and locked runs stay; dead letters and audit entries
by windows of their own; a dry run counts exactly what a prune deletes and changes
nothing; one pruner at a time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from flowsync.config import to_asyncpg_dsn
from flowsync.retention.prune import QUERIES, Policy, Pruner
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.rest.server import worker
from tests.support.dead_letters import failed_runs
from tests.support.env import Env
from tests.support.graphs import chain

DAYS_30 = Policy(executions=timedelta(days=30))
TABLES = (
    "executions",
    "step_executions",
    "execution_events",
    "dead_letters",
    "audit_log",
    "jobs",
    "webhook_signatures",
)


@pytest.fixture
async def conn(db_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        yield connection
    finally:
        await connection.close()


async def age_run(pool: asyncpg.Pool, execution_id: uuid.UUID, days: int) -> None:
    """Move a run's times `days` into the past, as if it ran then."""
    ago = timedelta(days=days)
    await pool.execute(
        "UPDATE executions SET created_at = created_at - $2::interval, "
        "started_at = started_at - $2::interval, "
        "finished_at = finished_at - $2::interval WHERE id = $1",
        execution_id,
        ago,
    )


async def rows_of(pool: asyncpg.Pool, execution_id: uuid.UUID) -> dict[str, int]:
    """How many rows each table holds for one run."""
    counts = {}
    for table, column in (
        ("executions", "id"),
        ("step_executions", "execution_id"),
        ("execution_events", "execution_id"),
        ("dead_letters", "execution_id"),
    ):
        counts[table] = await pool.fetchval(
            f"SELECT count(*) FROM {table} WHERE {column} = $1", execution_id
        )
    return counts


async def table_counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


async def finished_runs(env: Env, count: int, length: int = 2) -> list[uuid.UUID]:
    wid = await env.create(chain(length), name=f"wf-{uuid.uuid4().hex[:6]}")
    ids = [await env.start(wid, {"n": i}) for i in range(count)]
    for execution_id in ids:
        assert (await env.wait(execution_id)).status == "COMPLETED"
    return ids


async def waiting_run(env: Env) -> uuid.UUID:
    """A run that stays RUNNING: its delay waits an hour."""
    wid = await env.create(chain(1, delay=3600), name=f"wait-{uuid.uuid4().hex[:6]}")
    execution_id = await env.start(wid, {"n": 1})
    for _ in range(300):
        steps = await env.steps(execution_id)
        if steps["wait"].status == "WAITING":
            return execution_id
        await asyncio.sleep(0.05)
    raise AssertionError("the delay did not start waiting")


async def test_old_finished_runs_go_with_their_steps_and_events(
    running: Env,
    conn: asyncpg.Connection,
) -> None:
    env = running
    pool = env.services.pool
    old = await finished_runs(env, 3)
    recent = (await finished_runs(env, 1))[0]
    cancelled = await waiting_run(env)
    await env.services.executions.cancel(env.me, cancelled)
    assert (await env.wait(cancelled)).status == "CANCELLED"
    in_progress = await waiting_run(env)
    for execution_id in [*old, cancelled]:
        await age_run(pool, execution_id, 40)
    await age_run(pool, recent, 29)
    # Old, and with an old finished_at even (as a redriven run's row might carry): still
    # RUNNING, so never touched.
    await age_run(pool, in_progress, 400)
    await pool.execute(
        "UPDATE executions SET finished_at = now() - interval '400 days' WHERE id = $1",
        in_progress,
    )
    doomed = [await rows_of(pool, e) for e in [*old, cancelled]]
    kept = {e: await rows_of(pool, e) for e in (recent, in_progress)}
    assert all(r["step_executions"] >= 3 and r["execution_events"] >= 4 for r in doomed)

    pruned = await Pruner(DAYS_30).prune(conn)

    assert pruned is not None
    assert pruned.executions == 4
    assert pruned.steps == sum(r["step_executions"] for r in doomed)
    assert pruned.events == sum(r["execution_events"] for r in doomed)
    for execution_id in [*old, cancelled]:
        assert set((await rows_of(pool, execution_id)).values()) == {0}
    for execution_id, before in kept.items():
        assert await rows_of(pool, execution_id) == before
    assert (await env.services.executions.get(env.me, in_progress)).status == "RUNNING"
    # The run in progress still has its parked job, untouched.
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE execution_id = $1", in_progress)


async def test_batches_are_small_and_a_pass_takes_them_all(
    running: Env,
    conn: asyncpg.Connection,
) -> None:
    env = running
    ids = await finished_runs(env, 5, length=1)
    for execution_id in ids:
        await age_run(env.services.pool, execution_id, 31)

    pruned = await Pruner(DAYS_30, batch=2).prune(conn)

    assert pruned is not None and pruned.executions == 5
    assert pruned.batches == 3 + 1  # runs: 2, 2, 1; then the signatures' one
    assert await env.services.pool.fetchval("SELECT count(*) FROM executions") == 0


async def test_dry_run_counts_what_prune_deletes_and_changes_nothing(
    running: Env,
    conn: asyncpg.Connection,
) -> None:
    env = running
    pool = env.services.pool
    ids = await finished_runs(env, 3)
    await finished_runs(env, 1)  # recent: stays
    for execution_id in ids:
        await age_run(pool, execution_id, 45)
    await pool.execute("UPDATE audit_log SET at = at - interval '100 days' WHERE id % 2 = 0")
    old_audit = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE at < now() - interval '90 days'"
    )
    assert old_audit > 0
    policy = Policy(
        executions=timedelta(days=30),
        dead_letters=timedelta(days=30),
        audit=timedelta(days=90),
    )
    before = await table_counts(pool)

    preview = await Pruner(policy).preview(conn)

    assert await table_counts(pool) == before
    assert preview.executions == 3 and preview.audit == old_audit
    assert preview.cutoffs.executions is not None and preview.cutoffs.audit is not None
    assert preview.cutoffs.now - preview.cutoffs.executions == timedelta(days=30)
    assert preview.cutoffs.now - preview.cutoffs.audit == timedelta(days=90)

    pruned = await Pruner(policy).prune(conn)

    assert pruned is not None
    counted = ("executions", "steps", "events", "run_dead_letters", "dead_letters", "audit")
    assert {k: getattr(pruned, k) for k in counted} == {k: getattr(preview, k) for k in counted}
    after = await table_counts(pool)
    assert before["executions"] - after["executions"] == 3
    assert before["step_executions"] - after["step_executions"] == preview.steps
    assert before["execution_events"] - after["execution_events"] == preview.events
    assert before["audit_log"] - after["audit_log"] == old_audit
    again = await Pruner(policy).preview(conn)
    assert (again.executions, again.audit, again.dead_letters) == (0, 0, 0)


async def test_nothing_goes_while_every_window_is_off(
    running: Env,
    conn: asyncpg.Connection,
) -> None:
    env = running
    ids = await finished_runs(env, 2)
    for execution_id in ids:
        await age_run(env.services.pool, execution_id, 3650)
    await env.services.pool.execute("UPDATE audit_log SET at = at - interval '3650 days'")
    before = await table_counts(env.services.pool)

    pruned = await Pruner(Policy()).prune(conn)

    assert pruned is not None and pruned.total == 0
    assert await table_counts(env.services.pool) == before


async def test_only_one_pruner_runs_at_a_time(
    running: Env,
    conn: asyncpg.Connection,
    db_url: str,
) -> None:
    env = running
    ids = await finished_runs(env, 2)
    for execution_id in ids:
        await age_run(env.services.pool, execution_id, 40)
    other = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        assert await other.fetchval(QUERIES["lock"])  # another process is pruning
        assert await Pruner(DAYS_30).prune(conn) is None
        assert await env.services.pool.fetchval("SELECT count(*) FROM executions") == 2
        await other.fetchval(QUERIES["unlock"])
        # Two at once: whichever takes the lock holds it until the other has asked, and
        # exactly one of them prunes.
        asked = [0]
        both_asked = asyncio.Event()

        class Slow:
            def __init__(self, inner: asyncpg.Connection):
                self.inner = inner

            async def fetchval(self, query: str, *args: object) -> object:
                value = await self.inner.fetchval(query, *args)
                if query == QUERIES["lock"]:
                    asked[0] += 1
                    if asked[0] == 2:
                        both_asked.set()
                    if value:
                        await asyncio.wait_for(both_asked.wait(), 30)
                return value

            def __getattr__(self, name: str) -> object:
                return getattr(self.inner, name)

        results = await asyncio.gather(
            Pruner(DAYS_30).prune(Slow(conn)),  # type: ignore[arg-type]
            Pruner(DAYS_30).prune(Slow(other)),  # type: ignore[arg-type]
        )
        assert sorted(r is None for r in results) == [False, True]
        assert sum(r.executions for r in results if r is not None) == 2
    finally:
        await other.close()
    # The lock was given back: the next pass runs (with nothing left to do).
    again = await Pruner(DAYS_30).prune(conn)
    assert again is not None and again.executions == 0


async def test_a_locked_run_is_skipped_never_waited_for(
    running: Env,
    conn: asyncpg.Connection,
    db_url: str,
) -> None:
    env = running
    busy, free = await finished_runs(env, 2)
    for execution_id in (busy, free):
        await age_run(env.services.pool, execution_id, 40)
    holder = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        async with holder.transaction():
            # As a retry's insert does (its foreign key to the run it retries).
            await holder.execute("SELECT 1 FROM executions WHERE id = $1 FOR KEY SHARE", busy)
            pruned = await asyncio.wait_for(Pruner(DAYS_30).prune(conn), 60)
        assert pruned is not None and pruned.executions == 1
        assert (await rows_of(env.services.pool, busy))["executions"] == 1
        assert (await rows_of(env.services.pool, free))["executions"] == 0
    finally:
        await holder.close()
    later = await Pruner(DAYS_30).prune(conn)
    assert later is not None and later.executions == 1


async def test_a_run_that_still_has_a_job_is_kept(
    running: Env,
    conn: asyncpg.Connection,
) -> None:
    env = running
    pool = env.services.pool
    (execution_id,) = await finished_runs(env, 1)
    await age_run(pool, execution_id, 40)
    # A cancel's job not swept yet: deleting the run would delete (and lock) a queue row.
    await pool.execute(
        "INSERT INTO jobs (execution_id, step_id) "
        "SELECT execution_id, id FROM step_executions WHERE execution_id = $1 LIMIT 1",
        execution_id,
    )
    pruned = await Pruner(DAYS_30).prune(conn)
    assert pruned is not None and pruned.executions == 0
    await pool.execute("DELETE FROM jobs WHERE execution_id = $1", execution_id)
    pruned = await Pruner(DAYS_30).prune(conn)
    assert pruned is not None and pruned.executions == 1


async def _dead_letter_runs(services: Services) -> tuple[uuid.UUID, uuid.UUID]:
    """Two FAILED runs finished 40 days ago; the first's dead letter is 100 days old,
    the second's 10."""
    owner = await services.api_keys.ensure_owner(f"test:{uuid.uuid4()}")
    me = Principal(owner, "test")
    first, second = await failed_runs(services, me, 2)
    for execution_id, days in ((first, 100), (second, 10)):
        await age_run(services.pool, execution_id, 40)
        await services.pool.execute(
            "UPDATE dead_letters SET created_at = now() - make_interval(days => $2) "
            "WHERE execution_id = $1",
            execution_id,
            days,
        )
    return first, second


async def test_dead_letters_go_by_their_own_window_and_keep_their_runs(
    services: Services, conn: asyncpg.Connection
) -> None:
    first, second = await _dead_letter_runs(services)
    # Runs past their window, dead letters kept forever: a run stays with its dead letter.
    pruned = await Pruner(DAYS_30).prune(conn)
    assert pruned is not None and pruned.executions == 0
    assert await services.pool.fetchval("SELECT count(*) FROM dead_letters") == 2

    # Dead letters alone past 60 days: the first goes, no run does.
    only_letters = Policy(dead_letters=timedelta(days=60))
    pruned = await Pruner(only_letters).prune(conn)
    assert pruned is not None and (pruned.dead_letters, pruned.executions) == (1, 0)
    assert (await rows_of(services.pool, first))["executions"] == 1
    assert (await rows_of(services.pool, first))["dead_letters"] == 0

    # Both windows: the first run (its dead letter gone) goes; the second stays while
    # its dead letter is within its window.
    both = Policy(executions=timedelta(days=30), dead_letters=timedelta(days=60))
    pruned = await Pruner(both).prune(conn)
    assert pruned is not None and pruned.executions == 1
    assert (await rows_of(services.pool, first))["executions"] == 0
    assert await rows_of(services.pool, second) == {
        **(await rows_of(services.pool, second)),
        "executions": 1,
        "dead_letters": 1,
    }

    # Once the second's dead letter is past its window, both go in one pass.
    shorter = Policy(executions=timedelta(days=30), dead_letters=timedelta(days=5))
    pruned = await Pruner(shorter).prune(conn)
    assert pruned is not None and (pruned.dead_letters, pruned.executions) == (1, 1)
    assert set((await rows_of(services.pool, second)).values()) == {0}


async def test_a_run_that_goes_takes_its_dead_letters_with_it(
    services: Services, conn: asyncpg.Connection
) -> None:
    _first, second = await _dead_letter_runs(services)
    # Dead letters kept 200 days, runs 30: the runs stay while their dead letters do.
    keep_letters = Policy(executions=timedelta(days=30), dead_letters=timedelta(days=200))
    pruned = await Pruner(keep_letters).prune(conn)
    assert pruned is not None and pruned.total == 0
    # Dead letters kept 50 days: the first's (100 days old) goes first, then its run.
    pruned = await Pruner(
        Policy(executions=timedelta(days=30), dead_letters=timedelta(days=50))
    ).prune(conn)
    assert pruned is not None
    assert (pruned.dead_letters, pruned.executions, pruned.run_dead_letters) == (1, 1, 0)
    assert (await rows_of(services.pool, second))["executions"] == 1


async def test_audit_entries_go_by_their_own_window(
    running: Env,
    conn: asyncpg.Connection,
) -> None:
    env = running
    pool = env.services.pool
    ids = await finished_runs(env, 2)
    for execution_id in ids:
        await age_run(pool, execution_id, 400)
    await pool.execute("UPDATE audit_log SET at = now() - interval '400 days'")
    await env.create(chain(1), name="fresh")  # one entry written now
    total = await pool.fetchval("SELECT count(*) FROM audit_log")

    pruned = await Pruner(Policy(audit=timedelta(days=365))).prune(conn)

    assert pruned is not None and pruned.audit == total - 1 and pruned.executions == 0
    assert await pool.fetchval("SELECT count(*) FROM audit_log") == 1
    assert await pool.fetchval("SELECT count(*) FROM executions") == 2


async def test_a_pruned_run_frees_what_pointed_at_it(
    services: Services, conn: asyncpg.Connection
) -> None:
    """A retry of a pruned run stays, its retry_of cleared, and so do the steps it
    reused (their link to the old steps cleared)."""
    me = Principal(await services.api_keys.ensure_owner(f"test:{uuid.uuid4()}"), "test")
    pool = services.pool
    (original,) = await failed_runs(services, me, 1)
    retry_id = (await services.executions.retry(me, original)).execution.id
    async with worker(services):
        for _ in range(300):
            if (await services.executions.get(me, retry_id)).status == "FAILED":
                break
            await asyncio.sleep(0.05)
    assert (await services.executions.get(me, retry_id)).status == "FAILED"
    assert await pool.fetchval("SELECT retry_of_id FROM executions WHERE id = $1", retry_id)
    reused = (
        "SELECT count(*) FROM step_executions "
        "WHERE execution_id = $1 AND reused_from_id IS NOT NULL"
    )
    assert await pool.fetchval(reused, retry_id) >= 1
    await age_run(pool, original, 40)
    await pool.execute(
        "UPDATE dead_letters SET created_at = created_at - interval '40 days' "
        "WHERE execution_id = $1",
        original,
    )
    policy = Policy(executions=timedelta(days=30), dead_letters=timedelta(days=30))

    pruned = await Pruner(policy).prune(conn)

    assert pruned is not None and pruned.executions == 1
    assert await pool.fetchval("SELECT retry_of_id FROM executions WHERE id = $1", retry_id) is None
    assert await pool.fetchval(reused, retry_id) == 0
    assert (await rows_of(pool, retry_id))["step_executions"] >= 2
