"""The ceiling of HTTP action steps: the action benchmark's loopback target driven by plain
httpx client loops, as many processes as the benchmark has workers, each with as many
requests in flight as a worker runs steps at once (32), for `--seconds` seconds.

    .venv/bin/python bench/httpx_ceiling.py URL [--processes 2] [--concurrency 32]
        [--seconds 5]

Each request is what an action step sends and reads: a POST of a small JSON body, the
reply's JSON body parsed, over one client whose connections are reused, with a worker's
pool limits. Prints requests per second, all processes together; bench/engine_bench.py measures
it in the same run as its HTTP action steps and prints each beside it. Nothing else: no
database, no templates, no redaction: what any Python worker on httpx pays at the least.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def _loop(
    url: str, concurrency: int, begin: float, seconds: float, linear: bool = False
) -> int:
    """Requests completed between `begin` and `begin + seconds` (wall clock). `linear`:
    with the workers' connection pool (flowsync/worker/http_client.py `_Pool`) in place
    of httpcore's, whose bookkeeping grows with the square of its connections."""
    # The pool limits of a worker's client (flowsync/worker/http_client.py).
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    done = 0
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        if linear:
            from flowsync.worker.http_client import _Pool

            transport = client._transport
            assert isinstance(transport, httpx.AsyncHTTPTransport)
            transport._pool.__class__ = _Pool
        await asyncio.sleep(max(begin - time.time(), 0.0))
        end = begin + seconds

        async def one() -> None:
            nonlocal done
            while time.time() < end:
                reply = await client.post(url, json={"n": 1})
                reply.json()
                done += 1

        await asyncio.gather(*(one() for _ in range(concurrency)))
    return done


def measure(
    url: str, processes: int, concurrency: int = 32, seconds: float = 5.0, linear: bool = False
) -> float:
    """Requests per second of `processes` client processes started together."""
    begin = time.time() + 1.5  # every process imported and connected by then
    command = [sys.executable, __file__, url, "--child", "--concurrency", str(concurrency),
               "--seconds", str(seconds), "--begin", repr(begin)]  # fmt: skip
    if linear:
        command.append("--linear")
    children = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)
    ]
    total = 0
    for child in children:
        out, _ = child.communicate(timeout=seconds + 60)
        total += json.loads(out)["requests"]
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--linear", action="store_true", help="with the workers' linear connection pool"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--begin", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        done = asyncio.run(_loop(args.url, args.concurrency, args.begin, args.seconds, args.linear))
        print(json.dumps({"requests": done}))
        return
    rate = measure(args.url, args.processes, args.concurrency, args.seconds, args.linear)
    pool = "the workers' pool" if args.linear else "httpcore's pool"
    print(
        f"httpx ceiling ({pool}), {args.processes} processes x {args.concurrency}: "
        f"{rate:.0f} requests/s"
    )


if __name__ == "__main__":
    main()
