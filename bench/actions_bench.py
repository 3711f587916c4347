"""HTTP action steps beside their ceiling, alone: the engine benchmark's part (a), 10-action
chains against the loopback target with 1 and 2 worker processes, and plain httpx loops
against the same target at the same concurrency (bench/httpx_ceiling.py), in one run.

    .venv/bin/python bench/actions_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--runs 200] [--repeat 3]

For comparing two commits' HTTP path quickly (bench/engine_bench.py measures the same
and everything else, in about ten times as long). Prints medians and ranges; nothing is
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.action_target import serving  # noqa: E402
from bench.engine_bench import (  # noqa: E402
    action_chain,
    bench_services,
    throughput,
    url_argument,
)
from bench.httpx_ceiling import measure as httpx_measure  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402


async def main_async(args: argparse.Namespace) -> None:
    async with (
        bench_services(args.url, "flowsync_actions_bench") as (_, services),
        serving() as target,
    ):
        await measure_all(services, target, args)


async def measure_all(services: Any, target: str, args: argparse.Namespace) -> None:
    """Action steps and their ceilings, with 1 then 2 worker processes."""
    me = Principal(await services.api_keys.ensure_owner("bench"), "bench")
    actions = action_chain(target, 10)
    for procs in (1, 2):
        rates, cpus = [], []
        for _ in range(args.repeat):
            rate, _, _, _, _, cpu = await throughput(
                services, me, actions, args.runs, procs, allow_networks="127.0.0.1/32"
            )
            rates.append(rate)
            cpus.append(cpu)
        ceilings = [
            await asyncio.to_thread(httpx_measure, target, procs, 32) for _ in range(args.repeat)
        ]
        linear = await asyncio.to_thread(httpx_measure, target, procs, 32, 5.0, True)
        step, ceiling = statistics.median(rates), statistics.median(ceilings)
        print(
            f"{procs} worker(s): {step:.0f} action steps/s ({min(rates):.0f}-{max(rates):.0f}),"
            f" {statistics.median(cpus):.0f} µs worker CPU per step; plain httpx "
            f"{ceiling:.0f} requests/s ({min(ceilings):.0f}-{max(ceilings):.0f}), "
            f"the steps {step / ceiling:.0%} of it; httpx with the workers' linear pool "
            f"{linear:.0f} requests/s, the steps {step / linear:.0%} of it",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    url_argument(parser)
    parser.add_argument("--runs", type=int, default=200, help="executions per throughput run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
