"""Backlog benchmark: claim throughput of the real queue with a small and a large backlog.

    .venv/bin/python bench/backlog_bench.py [--url postgresql://postgres@127.0.0.1:5432]
        [--due-small 1000] [--due-large 1000000] [--delayed 1000000] [--keep | --reuse]

Three cases, each claimed through `flowsync.worker.queue.Queue.claim` (claim_jobs, on a
pool made as a worker's is) by `--clients` concurrent claimers taking `--batch` jobs a
claim, as a worker with that many free slots does:
  small:   `--due-small` due jobs;
  due:     `--due-large` due jobs;
  delayed: `--delayed` jobs due tomorrow (timers, retries) and `--due-small` due ones.
The large cases must keep at least 80 % of the small one's rate. Each case also prints
the claim's plan (EXPLAIN ANALYZE, BUFFERS, in a transaction rolled back), which must stay
an index scan on ix_jobs_claim, the cost of a claim that finds nothing due (an idle
worker's poll: every due job leased), and the cost of the admission's count of due jobs
(queue_depth_bounded, at the default limit) and of the queue report's (global_depth).

A round claims `--round` jobs (at most half the due set: never draining it), then gives
them back (their leases cleared) and vacuums the table outside the timing, so that every
round starts from the same backlog; the rate is jobs claimed over the time spent in
claims in the median round (of those in `--seconds`). Plans are those of the worker's
connections: prepared, generic (plan_cache_mode force_generic_plan), as `EXPLAIN
EXECUTE` shows them.
The backlog is written set-based (INSERT ... SELECT generate_series) as real rows: a
RUNNING execution of a real workflow per job, its steps (start COMPLETED, t1 QUEUED, end
PENDING), as `insert_execution` and `write_plan` leave them; then ANALYZE, as autovacuum
would after such a load.

The benchmark makes its own database on the server (`--db`, dropped at the end unless
`--keep`; `--reuse` keeps a database filled by an earlier `--keep` run when its sizes
match). Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowsync.config import to_asyncpg_dsn  # noqa: E402
from flowsync.db.migrate import upgrade_async  # noqa: E402
from flowsync.db.models import EXECUTION_CHILDREN  # noqa: E402
from flowsync.services.observability import QUERIES as REPORT_QUERIES  # noqa: E402
from flowsync.worker.queue import QUERIES, Connection, Queue, create_pool  # noqa: E402
from tests.conftest import with_database  # noqa: E402

DEFAULT_SERVER = os.environ.get("FLOWSYNC_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
# The admission's limit by default (FLOWSYNC_MAX_QUEUE_DEPTH 100,000, counted up to one more).
ADMISSION_LIMIT = 100_001

DEFINITION = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "t1", "type": "transform", "data": {"output": {"n": 1}}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "t1"}, {"source": "t1", "target": "end"}],
}


async def admin(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(to_asyncpg_dsn(with_database(url, "postgres")))


async def make_db(server: str, name: str, reuse: bool) -> tuple[str, bool]:
    """The bench's database URL, and whether it existed already (kept for reuse)."""
    conn = await admin(server)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and reuse:
            return with_database(server, name), True
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server, name), False


async def drop_db(server: str, name: str) -> None:
    conn = await admin(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def fill_runs(conn: asyncpg.Connection, runs: int) -> None:
    """`runs` RUNNING executions of one workflow, each with its three steps (t1 QUEUED)."""
    have = await conn.fetchval("SELECT count(*) FROM executions")
    if have == runs:
        return
    await conn.execute("TRUNCATE owners, executions, " + ", ".join(EXECUTION_CHILDREN) + " CASCADE")
    owner = await conn.fetchval(
        "INSERT INTO owners (subject, display_name) VALUES ('bench', 'bench') RETURNING id"
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
    t0 = time.perf_counter()
    await conn.execute(
        """
        INSERT INTO executions (owner_id, workflow_id, workflow_version_id, version, status,
                                input, last_sequence, started_at)
        SELECT $1, $2, $3, 1, 'RUNNING', jsonb_build_object('n', g), 4, now()
          FROM generate_series(1, $4) g
        """,
        owner,
        wf,
        version,
        runs,
    )
    await conn.execute(
        """
        INSERT INTO step_executions (execution_id, node_id, node_type, status, attempt,
                                     output, queued_at, started_at, finished_at)
        SELECT e.id, n.node_id, n.node_type, n.status,
               CASE WHEN n.status = 'COMPLETED' THEN 1 ELSE 0 END,
               CASE WHEN n.status = 'COMPLETED' THEN '{}'::jsonb END,
               CASE WHEN n.status <> 'PENDING' THEN now() END,
               CASE WHEN n.status = 'COMPLETED' THEN now() END,
               CASE WHEN n.status = 'COMPLETED' THEN now() END
          FROM executions e,
               (VALUES ('start', 'start', 'COMPLETED'), ('t1', 'transform', 'QUEUED'),
                       ('end', 'end', 'PENDING')) AS n(node_id, node_type, status)
        """
    )
    print(f"    wrote {runs} runs and {3 * runs} steps in {time.perf_counter() - t0:.1f} s")


async def fill_jobs(conn: asyncpg.Connection, due: int, delayed: int) -> None:
    """The job table holds exactly `due` due jobs and `delayed` jobs due tomorrow, each of
    its own run's t1 step (the oldest runs first)."""
    t0 = time.perf_counter()
    await conn.execute("TRUNCATE jobs")
    await conn.execute(
        """
        INSERT INTO jobs (execution_id, step_id, run_at, max_attempts)
        SELECT s.execution_id, s.id,
               CASE WHEN row_number() OVER () <= $1::bigint THEN now() - interval '1 minute'
                    ELSE now() + interval '1 day' END,
               3
          FROM (SELECT execution_id, id FROM step_executions WHERE node_id = 't1'
                 LIMIT $1::bigint + $2::bigint) s
        """,
        due,
        delayed,
    )
    await conn.execute("VACUUM ANALYZE jobs")
    print(f"    queued {due} due and {delayed} delayed jobs in {time.perf_counter() - t0:.1f} s")


async def give_back(conn: asyncpg.Connection) -> None:
    """Every leased job unclaimed again, and the table vacuumed: the next round starts
    from the same backlog."""
    await conn.execute(
        "UPDATE jobs SET lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, "
        "attempts = 0 WHERE lease_token IS NOT NULL"
    )
    await conn.execute("VACUUM jobs")


async def claim_round(queues: list[Queue], jobs: int, batch: int) -> tuple[int, float, int]:
    """Claim `jobs` jobs with one task per queue; jobs claimed, seconds, claims made."""
    left = jobs
    calls = 0

    async def claimer(queue: Queue) -> int:
        nonlocal left, calls
        took = 0
        while left > 0:
            want = min(batch, left)
            left -= want
            got = await queue.claim(want)
            calls += 1
            took += len(got)
            if len(got) < want:
                left = 0  # nothing more due (should not happen: half the set is claimed)
        return took

    t0 = time.perf_counter()
    claimed = await asyncio.gather(*(claimer(q) for q in queues))
    return sum(claimed), time.perf_counter() - t0, calls


def literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


async def explain(conn: Connection, sql: str, *args: object) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of `sql` as the worker's connections run it (prepared,
    with their generic plan), in a transaction rolled back."""
    await conn.execute(f"PREPARE bench_explained AS {sql}")
    tx = conn.transaction()
    await tx.start()
    try:
        rows = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE bench_explained("
            + ", ".join(literal(a) for a in args)
            + ")"
        )
    finally:
        await tx.rollback()
        await conn.execute("DEALLOCATE bench_explained")
    return "\n".join(r[0] for r in rows)


async def timed(conn: Connection, sql: str, *args: Any, repeat: int = 20) -> float:
    """Median ms of `sql` (prepared once, as the worker's pool does)."""
    stmt = await conn.prepare(sql)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await stmt.fetch(*args)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def run_case(
    url: str,
    plain: asyncpg.Connection,
    name: str,
    due: int,
    delayed: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    print(f"case {name}: {due} due, {delayed} delayed")
    await fill_jobs(plain, due, delayed)
    pool = await create_pool(url, min_size=args.clients + 1, max_size=args.clients + 1, worker=True)
    try:
        queues = [Queue(pool, f"bench-{i}", 300) for i in range(args.clients)]
        # The same jobs a round in every case (dead index entries left by claims until
        # the next vacuum are the claims', not the backlog's).
        per_round = max(args.batch, min(args.round, due // 2))
        total, spent, calls, rounds, rates = 0, 0.0, 0, 0, []
        # One round to warm the connections' prepared statements, not counted.
        await claim_round(queues, min(per_round, 200), args.batch)
        await give_back(plain)
        while spent < args.seconds:
            jobs, seconds, made = await claim_round(queues, per_round, args.batch)
            await give_back(plain)
            total, spent, calls, rounds = total + jobs, spent + seconds, calls + made, rounds + 1
            rates.append(jobs / seconds)
        async with pool.acquire() as conn:
            plan = await explain(conn, QUERIES["claim_jobs"], args.batch, 300, "bench-plan")
            # An idle worker's poll: every due job leased, the claim finds nothing (not
            # for a large due set: leasing all of it costs more than the rest).
            empty, empty_plan = None, "(not measured: the due set is large)"
            if due <= 100_000:
                await conn.execute(
                    "UPDATE jobs SET lease_token = gen_random_uuid(), "
                    "lease_expires_at = now() + interval '1 hour' WHERE run_at <= now()"
                )
                await plain.execute("VACUUM jobs")
                empty = await timed(conn, QUERIES["claim_jobs"], args.batch, 300, "bench-idle")
                empty_plan = await explain(
                    conn, QUERIES["claim_jobs"], args.batch, 300, "bench-idle"
                )
                await give_back(plain)
            admission = await timed(conn, QUERIES["queue_depth_bounded"], ADMISSION_LIMIT)
            admission_plan = await explain(conn, QUERIES["queue_depth_bounded"], ADMISSION_LIMIT)
            report = await timed(conn, REPORT_QUERIES["global_depth"], ADMISSION_LIMIT)
    finally:
        await pool.close()
    result = {
        # The median round: a machine shared with other work slows some rounds.
        "rate": statistics.median(rates),
        "mean": total / spent,
        "jobs": total,
        "rounds": rounds,
        "per_claim_ms": spent / calls * 1000,
        "plan": plan,
        "empty_ms": empty,
        "empty_plan": empty_plan,
        "admission_ms": admission,
        "admission_plan": admission_plan,
        "report_ms": report,
    }
    print(
        f"    {result['rate']:.0f} jobs/s, median round ({result['mean']:.0f} overall; "
        f"{total} jobs in {rounds} rounds, "
        f"{result['per_claim_ms']:.2f} ms a claim); idle poll {ms(empty)}; "
        f"admission count {admission:.2f} ms; queue report count {report:.2f} ms"
    )
    return result


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def index_scan(plan: str) -> bool:
    return "ix_jobs_claim" in plan and "Seq Scan on jobs" not in plan


async def main_async(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    url, reused = await make_db(args.url, args.db, args.reuse)
    if not reused:
        await upgrade_async(url)
    plain = await asyncpg.connect(to_asyncpg_dsn(url))
    results: dict[str, dict[str, Any]] = {}
    try:
        await fill_runs(plain, max(args.due_small, args.due_large, args.delayed + args.due_small))
        cases = (("small", args.due_small, 0), ("due", args.due_large, 0),
                 ("delayed", args.due_small, args.delayed))  # fmt: skip
        for name, due, delayed in cases:
            results[name] = await run_case(url, plain, name, due, delayed, args)
    finally:
        await plain.close()
        if not args.keep:
            await drop_db(args.url, args.db)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=DEFAULT_SERVER, help="the server (any database)")
    parser.add_argument("--db", default="benches_backlog", help="the bench's own database")
    parser.add_argument("--due-small", type=int, default=1000)
    parser.add_argument("--due-large", type=int, default=1_000_000)
    parser.add_argument("--delayed", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=32, help="jobs asked for per claim")
    parser.add_argument("--clients", type=int, default=2, help="concurrent claimers")
    parser.add_argument(
        "--round",
        type=int,
        default=500,
        help="jobs claimed between vacuums (at most half the due set)",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="claim time per case")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a database kept by --keep (implies --keep)"
    )
    args = parser.parse_args()
    args.keep = args.keep or args.reuse
    results = asyncio.run(main_async(args))

    small = results["small"]["rate"]
    print(
        f"\nFlowSync backlog benchmark ({os.cpu_count()} cores), server {args.url}: "
        f"{args.clients} claimers, {args.batch} jobs a claim"
    )
    labels = {
        "small": f"{args.due_small} due",
        "due": f"{args.due_large} due",
        "delayed": f"{args.delayed} delayed + {args.due_small} due",
    }
    for name, result in results.items():
        ratio = result["rate"] / small
        shape = "index scan on ix_jobs_claim" if index_scan(result["plan"]) else "NOT an index scan"
        verdict = "" if name == "small" else (" ok" if ratio >= 0.8 else " BELOW 80 %")
        print(
            f"  {labels[name]:>26}: {result['rate']:7.0f} jobs/s ({ratio:.0%} of small){verdict}; "
            f"claim plan {shape}; "
            f"idle poll {ms(result['empty_ms'])}; admission count {result['admission_ms']:.2f} ms; "
            f"queue report count {result['report_ms']:.2f} ms"
        )
    for name, result in results.items():
        print(f"\n--- {labels[name]}: claim_jobs, {args.batch} jobs ---\n{result['plan']}")
        print(f"--- {labels[name]}: claim_jobs finding nothing due ---\n{result['empty_plan']}")
        print(f"--- {labels[name]}: queue_depth_bounded ---\n{result['admission_plan']}")


if __name__ == "__main__":
    main()
