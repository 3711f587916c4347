"""Fairness benchmark: does one tenant's backlog delay another's runs, and what do keys
and priorities cost the claim?

    .venv/bin/python bench/fairness_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--backlog 10000] [--few 10] [--workers 2] [--concurrency 16]
    .venv/bin/python bench/fairness_bench.py --only-claims [--jobs 5000] [--turns 5]

Default: real `flowsync worker` processes (`--workers` of them, `--concurrency` slots
each) are started and left idle; tenant A then queues `--backlog` runs of a one-step
workflow (batch starts of 1,000), and tenant B queues `--few`. Printed: the seconds from
B's last start until B's runs are all done, and how many of A's were done by then, for
  none:     no key, no priority (B waits behind A's backlog, first in, first out);
  key:      the definition's concurrencyKey `{{ input.tenant }}`, concurrencyKeyLimit 8
            (A's runs beyond 8 wait PENDING, holding no job);
  priority: no key, B's runs started with priority 50.

`--only-claims`: the cost of the claim itself. `--jobs` due jobs are queued by starting
runs (batch starts) of a workflow without a key, of one with a concurrencyKey (each run
its own key, limit 1: every run RUNNING), and of the unkeyed one with the runs spread over
five priorities; each is claimed in full (claim_jobs, `--batch` a claim, as a worker with
that many free slots does), in paired turns (the three in turn, `--turns` times, the
queue emptied between). Printed: each one's median claim rate and the ratios to "no
keys". Figures are printed; nothing is asserted. The benchmark makes (and drops) its own
database on the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from bench.engine_bench import fresh_db  # noqa: E402
from flowsync.config import Settings, to_asyncpg_dsn  # noqa: E402
from flowsync.db.migrate import upgrade_async  # noqa: E402
from flowsync.services.container import Services, build_services  # noqa: E402
from flowsync.services.executions import StartItem  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from flowsync.worker.queue import Queue, create_pool  # noqa: E402
from tests.support.processes import Process, flowsync_env  # noqa: E402

ONE_STEP: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "t", "type": "transform", "data": {"output": {"i": "{{ input.i }}"}}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "end"}],
}
KEYED = {**ONE_STEP, "concurrencyKey": "{{ input.tenant }}", "concurrencyKeyLimit": 8}
BATCH = 1000


async def start_all(
    services: Services,
    me: Principal,
    wf: uuid.UUID,
    inputs: list[dict[str, Any]],
    priority: int | None = None,
) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for at in range(0, len(inputs), BATCH):
        items = [StartItem(x) for x in inputs[at : at + BATCH]]
        started = await services.executions.start_many(me, wf, items, priority)
        ids.extend(s.execution.id for s in started)
    return ids


async def until(count: Callable[[], Awaitable[Any]], at_least: int) -> None:
    """Poll `count` until it reaches `at_least`."""
    for _ in range(10**7):
        if int(await count()) >= at_least:
            return
        await asyncio.sleep(0.01)


async def done_count(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM executions WHERE id = ANY($1::uuid[]) AND status = 'COMPLETED'",
            ids,
        )
    )


async def scenario(
    services: Services, me: Principal, name: str, backlog: int, few: int
) -> tuple[float, int]:
    wf = (await services.workflows.create(me, name, None, KEYED if name == "key" else ONE_STEP)).id
    a = await start_all(services, me, wf, [{"tenant": "A", "i": i} for i in range(backlog)])
    b = await start_all(
        services, me, wf, [{"tenant": "B", "i": i} for i in range(few)],
        50 if name == "priority" else None,
    )  # fmt: skip
    t0 = time.perf_counter()
    await until(lambda: done_count(services.pool, b), few)
    took = time.perf_counter() - t0
    a_done = await done_count(services.pool, a)
    # Let A's backlog drain before the next scenario (cancel what is left: faster).
    await services.pool.execute(
        "UPDATE executions SET status = 'CANCELLED', finished_at = now()"
        " WHERE workflow_id = $1 AND status IN ('PENDING', 'RUNNING')",
        wf,
    )
    await services.pool.execute(
        "DELETE FROM jobs j USING executions e WHERE e.id = j.execution_id AND e.workflow_id = $1",
        wf,
    )
    return took, a_done


async def fairness(url: str, args: argparse.Namespace) -> None:
    settings = Settings(_env_file=None, database_url=url, max_batch_starts=BATCH)  # type: ignore[call-arg]
    services = await build_services(settings, url)
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    procs: list[Process] = []
    try:
        me = Principal(await services.api_keys.ensure_owner("bench"), "bench")
        env = flowsync_env(url, poll_seconds=0.5)
        procs = [
            Process(
                ["worker", "--concurrency", str(args.concurrency)],
                env,
                logs / f"fairness-worker-{os.getpid()}-{n}.log",
            )
            for n in range(args.workers)
        ]
        await until(lambda: services.pool.fetchval("SELECT count(*) FROM workers"), args.workers)
        print(
            f"tenant A queues {args.backlog} runs, then tenant B {args.few}; "
            f"{args.workers} worker processes x {args.concurrency} slots"
        )
        for name in ("none", "key", "priority"):
            took, a_done = await scenario(services, me, name, args.backlog, args.few)
            label = {
                "none": "no key, no priority",
                "key": "concurrencyKey per tenant, limit 8",
                "priority": "B at priority 50",
            }[name]
            print(
                f"{label:>36}: B's {args.few} done {took:6.2f} s after B queued; "
                f"A's runs done by then: {a_done} of {args.backlog}"
            )
    finally:
        for proc in procs:
            proc.close()
        await services.close()


async def claim_turn(
    services: Services, me: Principal, wf: uuid.UUID, jobs: int, how: str, batch: int
) -> float:
    """Queue `jobs` due jobs (one per run), then claim them all; the claim rate."""
    if how == "keys":
        inputs = [{"tenant": f"t{i}", "i": i} for i in range(jobs)]
    else:
        inputs = [{"tenant": "x", "i": i} for i in range(jobs)]
    if how == "priorities":
        for p, part in enumerate(range(0, jobs, jobs // 5)):
            await start_all(services, me, wf, inputs[part : part + jobs // 5], (p - 2) * 20)
    else:
        await start_all(services, me, wf, inputs)
    await services.pool.execute("VACUUM ANALYZE jobs")
    pool = await create_pool(services.url, min_size=4, max_size=4)
    try:
        queue = Queue(pool, "bench", 60.0)
        claimed = 0
        t0 = time.perf_counter()

        async def claimer() -> None:
            nonlocal claimed
            while True:
                got = await queue.claim(batch)
                if not got:
                    return
                claimed += len(got)

        await asyncio.gather(*(claimer() for _ in range(4)))
        took = time.perf_counter() - t0
    finally:
        await pool.close()
    await services.pool.execute("TRUNCATE jobs")
    await services.pool.execute(
        "UPDATE executions SET status = 'CANCELLED' WHERE status IN ('PENDING', 'RUNNING')"
    )
    return claimed / took


async def claims(url: str, args: argparse.Namespace) -> None:
    settings = Settings(_env_file=None, database_url=url, max_batch_starts=BATCH)  # type: ignore[call-arg]
    services = await build_services(settings, url)
    try:
        me = Principal(await services.api_keys.ensure_owner("bench"), "bench")
        plain = (await services.workflows.create(me, "plain", None, ONE_STEP)).id
        keyed_def = {**ONE_STEP, "concurrencyKey": "{{ input.tenant }}", "concurrencyKeyLimit": 1}
        keyed = (await services.workflows.create(me, "keyed", None, keyed_def)).id
        rates: dict[str, list[float]] = {"no keys": [], "keys": [], "priorities": []}
        for turn in range(args.turns):
            order = ["no keys", "keys", "priorities"]
            if turn % 2:
                order.reverse()  # paired turns: neither goes first every time
            for how in order:
                wf = keyed if how == "keys" else plain
                rate = await claim_turn(services, me, wf, args.jobs, how, args.batch)
                rates[how].append(rate)
        base = statistics.median(rates["no keys"])
        print(f"claims of {args.jobs} due jobs, {args.batch} a claim, 4 claimers, "
              f"{args.turns} paired turns (medians):")  # fmt: skip
        for how, found in rates.items():
            median = statistics.median(found)
            print(f"{how:>11}: {median:8.0f} jobs/s  ({median / base:.0%} of no keys)")
    finally:
        await services.close()


async def run(args: argparse.Namespace) -> None:
    name = f"fairness_bench_{os.getpid()}"
    url = await fresh_db(args.url, name)
    try:
        await upgrade_async(url)
        await (claims(url, args) if args.only_claims else fairness(url, args))
    finally:
        conn = await asyncpg.connect(to_asyncpg_dsn(args.url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--few", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--only-claims", action="store_true")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--turns", type=int, default=5)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
