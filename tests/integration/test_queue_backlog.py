"""The queue with a backlog: a claim and the counts of due jobs cost what they take or count,
never what waits behind them (bench/backlog_bench.py measures the rates; these tests hold
the plans and the order that make them so)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from flowsync.config import to_asyncpg_dsn
from flowsync.services.observability import QUERIES as REPORT_QUERIES
from flowsync.worker.queue import QUERIES, Connection, Queue, create_pool

# (due, delayed): many timers behind a few due jobs; many due jobs (a generic plan's
# guesses grow with them).
BACKLOGS = [(300, 3000), (20_000, 300)]

DEFINITION = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "t1", "type": "transform", "data": {"output": {"n": 1}}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "t1"}, {"source": "t1", "target": "end"}],
}


async def _backlog(db_url: str, due: int, delayed: int) -> None:
    """`due` due jobs and `delayed` jobs due tomorrow, each the t1 step of a RUNNING run,
    written set-based as the backlog bench writes them; then ANALYZE."""
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        owner = await conn.fetchval(
            "INSERT INTO owners (subject, display_name) VALUES ('backlog', 'b') RETURNING id"
        )
        wf = await conn.fetchval(
            "INSERT INTO workflows (owner_id, name) VALUES ($1, 'backlog') RETURNING id", owner
        )
        version = await conn.fetchval(
            "INSERT INTO workflow_versions (workflow_id, version, definition) "
            "VALUES ($1, 1, $2::jsonb) RETURNING id",
            wf,
            json.dumps(DEFINITION),
        )
        await conn.execute(
            "INSERT INTO executions (owner_id, workflow_id, workflow_version_id, version, "
            "status, started_at) "
            "SELECT $1, $2, $3, 1, 'RUNNING', now() FROM generate_series(1, $4)",
            owner,
            wf,
            version,
            due + delayed,
        )
        await conn.execute(
            "INSERT INTO step_executions (execution_id, node_id, node_type, status, queued_at) "
            "SELECT id, 't1', 'transform', 'QUEUED', now() FROM executions"
        )
        await conn.execute(
            "INSERT INTO jobs (execution_id, step_id, run_at) "
            "SELECT execution_id, id, CASE WHEN row_number() OVER () <= $1::bigint "
            "THEN now() - interval '1 minute' ELSE now() + interval '1 day' END "
            "FROM step_executions",
            due,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def _plan(conn: Connection, sql: str, *args: Any) -> dict[str, Any]:
    """The plan that `conn` runs `sql` with as a prepared statement (a worker's
    connections: generic plans), executed and rolled back."""
    await conn.execute(f"PREPARE explained AS {sql}")
    literals = ", ".join(f"'{a}'" if isinstance(a, str) else str(a) for a in args)
    try:
        async with conn.transaction():
            plan = await conn.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE explained({literals})"
            )
            raise _RolledBack(plan)
    except _RolledBack as done:
        result = done.plan
    finally:
        await conn.execute("DEALLOCATE explained")
    parsed = result if isinstance(result, list) else json.loads(result)
    node: dict[str, Any] = parsed[0]["Plan"]
    return node


class _RolledBack(Exception):
    def __init__(self, plan: object):
        self.plan = plan


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize(("due", "delayed"), BACKLOGS)
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("claim_jobs", (32, 30.0, "w")),
        ("queue_depth_bounded", (100_001,)),
        ("global_depth", (100_001,)),
    ],
)
async def test_scans_of_due_jobs_stop_at_the_first_timer(
    db_url: str, name: str, args: tuple[Any, ...], due: int, delayed: int
) -> None:
    """Every scan of ix_jobs_claim for due jobs is bounded by run_at (one priority at a
    time, so that run_at is a bound of the index scan and not a filter of it): a claim
    that finds fewer due jobs than it asks for, or a count of them, reads no timer. And
    no plan joins the queue by hash or merge (a generic plan's guess of a tenth of the
    table for LIMIT $1 made the claim's update join every job by hash)."""
    await _backlog(db_url, due, delayed)
    query = REPORT_QUERIES[name] if name == "global_depth" else QUERIES[name]
    pool = await create_pool(db_url, worker=True)
    try:
        async with pool.acquire() as conn:
            plan = await _plan(conn, query, *args)
    finally:
        await pool.close()
    nodes = list(_nodes(plan))
    assert not [n["Node Type"] for n in nodes if n["Node Type"] in ("Hash Join", "Merge Join")]
    jobs = [
        n for n in nodes if n.get("Relation Name") == "jobs" and n["Node Type"] != "ModifyTable"
    ]
    # A Tid Scan: the claim's update finds the rows it locked by their address.
    assert all(n["Node Type"] in ("Index Scan", "Index Only Scan", "Tid Scan") for n in jobs)
    due_scans = [n for n in jobs if "run_at" in n.get("Index Cond", "")]
    assert due_scans, "the due jobs are found through ix_jobs_claim"
    for scan in due_scans:
        assert scan["Index Name"] == "ix_jobs_claim"
        assert "priority = " in scan["Index Cond"]
        # Rows the scan returned: due jobs only, never more than exist.
        assert scan["Actual Rows"] * scan["Actual Loops"] <= due
    assert not [n for n in jobs if "run_at" in n.get("Filter", "")]


async def test_a_claim_takes_due_jobs_by_priority_then_age(db_url: str) -> None:
    """Priorities in order, each one's due jobs oldest first, timers never; and the counts
    of due jobs count the due ones of every priority."""
    await _backlog(db_url, 6, 4)
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM jobs ORDER BY id")]
        due, delayed = ids[:6], ids[6:]
        # Two due jobs of priority 1, one of them older than every job of priority 0; and
        # a timer of priority -1, which must not be taken.
        await conn.execute("UPDATE jobs SET priority = 1 WHERE id = ANY($1)", due[:2])
        await conn.execute(
            "UPDATE jobs SET run_at = now() - interval '1 hour' WHERE id = $1", due[0]
        )
        await conn.execute(
            "UPDATE jobs SET run_at = now() - interval '2 minutes' WHERE id = $1", due[5]
        )
        await conn.execute("UPDATE jobs SET priority = -1 WHERE id = $1", delayed[0])
    finally:
        await conn.close()
    pool = await create_pool(db_url, worker=True)
    try:
        assert await pool.fetchval(QUERIES["queue_depth_bounded"], 100) == 6
        assert await pool.fetchval(QUERIES["queue_depth_bounded"], 4) == 4
        assert await pool.fetchval(REPORT_QUERIES["global_depth"], 100) == 6
        queue = Queue(pool, "w", 30)
        first = [job.job_id for job in await queue.claim(3)]
        rest = [job.job_id for job in await queue.claim(10)]
    finally:
        await pool.close()
    # The claim returns its jobs by id; which ones it took is what the order decides.
    assert sorted(first) == sorted([due[5], due[2], due[3]])
    assert sorted(rest) == sorted([due[4], due[0], due[1]])
