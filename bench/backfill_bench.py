"""Backfill benchmark: how long one backfill of a cron trigger takes (one transaction,
one run per fire time), with and without maxConcurrentRuns, and a repeat that skips
every time; and how many jobs a limited backfill leaves in the queue.

    .venv/bin/python bench/backfill_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--ticks 1000]

The URL names a server and a database to connect to for administration; the benchmark
creates (and drops) its own database there. No worker runs: it measures the backfill
itself. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_bench import fresh_db  # noqa: E402
from flowsync.config import Settings, to_asyncpg_dsn  # noqa: E402
from flowsync.db.migrate import upgrade_async  # noqa: E402
from flowsync.services.container import build_services  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from tests.support.graphs import chain  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)


async def run(admin_url: str, ticks: int) -> None:
    name = f"backfill_bench_{os.getpid()}"
    url = await fresh_db(admin_url, name)
    try:
        await upgrade_async(url)
        settings = Settings(_env_file=None, database_url=url, backfill_max_ticks=ticks)  # type: ignore[call-arg]
        services = await build_services(settings, url)
        try:
            owner = await services.api_keys.ensure_owner("bench")
            me = Principal(owner, "bench")
            end = START + timedelta(minutes=ticks - 1)
            for limit in (None, 10):
                wf = await services.workflows.create(me, f"w{limit}", None, chain(1))
                made = await services.triggers.create(
                    me, wf.id, "CRON", {"expression": "* * * * *", "input": {"n": 1}},
                    max_concurrent_runs=limit,
                )  # fmt: skip
                tid = made.trigger.id
                t0 = time.perf_counter()
                done = await services.backfills.backfill(
                    me, tid, START.isoformat(), end.isoformat()
                )
                first = time.perf_counter() - t0
                t0 = time.perf_counter()
                again = await services.backfills.backfill(
                    me, tid, START.isoformat(), end.isoformat()
                )
                repeat = time.perf_counter() - t0
                jobs = await services.pool.fetchval(
                    "SELECT count(*) FROM jobs j JOIN executions e ON e.id = j.execution_id "
                    "WHERE e.trigger_id = $1",
                    tid,
                )
                print(
                    f"maxConcurrentRuns={limit}: {done.started} runs started in {first:.2f} s "
                    f"({done.started / first:.0f}/s, {first / done.started * 1000:.2f} ms each); "
                    f"repeat: {again.skipped} skipped in {repeat:.2f} s; jobs queued: {jobs}"
                )
        finally:
            await services.close()
    finally:
        import asyncpg

        conn = await asyncpg.connect(to_asyncpg_dsn(admin_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--ticks", type=int, default=1000, help="fire times per backfill")
    args = parser.parse_args()
    asyncio.run(run(args.url, args.ticks))


if __name__ == "__main__":
    main()
