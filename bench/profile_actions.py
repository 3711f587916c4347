"""Where a worker's time goes on HTTP action steps: the engine benchmark's 10-action chains
against its loopback target (bench/action_target.py), run by one worker in this process
under cProfile; prints the functions with the most time of their own and the most time
under them.

    .venv/bin/python bench/profile_actions.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--runs 200] [--concurrency 32] [--top 30]

The worker is the real one (flowsync.worker.runner.Worker, the default handlers, a network
policy that allows only 127.0.0.1), in-process so that cProfile sees it; the rate it
prints is lower than a worker process's (the profiler's own cost), so read the shares,
not the rate. It makes its own database and drops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.action_target import serving  # noqa: E402
from bench.engine_bench import (  # noqa: E402
    action_chain,
    bench_services,
    url_argument,
    wait_all_done,
)
from flowsync.config import to_asyncpg_dsn  # noqa: E402
from flowsync.services.executions import StartItem  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from flowsync.worker.netguard import NetworkPolicy  # noqa: E402
from flowsync.worker.registry import default_registry  # noqa: E402
from flowsync.worker.runner import Worker  # noqa: E402


async def main_async(args: argparse.Namespace) -> None:
    import asyncpg

    try:
        async with (
            bench_services(args.url, "flowsync_profile_actions") as (url, services),
            serving() as target,
        ):
            await profiled(services, url, target, args)
    finally:
        admin = await asyncpg.connect(to_asyncpg_dsn(args.url))
        try:
            await admin.execute('DROP DATABASE IF EXISTS "flowsync_profile_actions" WITH (FORCE)')
        finally:
            await admin.close()


async def profiled(services: Any, url: str, target: str, args: argparse.Namespace) -> None:
    """Run the chains with one in-process worker under cProfile; print the profile."""
    me = Principal(await services.api_keys.ensure_owner("bench"), "bench")
    wf = await services.workflows.create(me, "actions", None, action_chain(target, 10))
    items = [StartItem({"n": i}) for i in range(args.runs)]
    for at in range(0, len(items), 500):
        await services.executions.start_many(me, wf.id, items[at : at + 500])
    registry = default_registry(NetworkPolicy(["127.0.0.1/32"]))
    worker = Worker(
        url, services.pool, registry, concurrency=args.concurrency, poll_seconds=0.2
    )  # fmt: skip
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    task = asyncio.create_task(worker.run())
    await wait_all_done(services.pool)
    profile.disable()
    seconds = time.perf_counter() - began
    worker.stop()
    await asyncio.wait_for(task, 30)
    steps = args.runs * 10
    print(f"{steps} action steps in {seconds:.1f} s under cProfile: {steps / seconds:.0f}/s")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order).print_stats(args.top)
        print(f"\n== by {order}\n" + out.getvalue().split("\n\n", 1)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    url_argument(parser)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
