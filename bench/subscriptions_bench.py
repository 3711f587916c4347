"""Live subscriptions benchmark: N websocket subscribers on one API process while
executions run, and the cost of the executions query.

    .venv/bin/python bench/subscriptions_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--subscribers 1000] [--owners 1000,100,10] [--rate 4] [--duration 20]

One real `flowsync dev` process (no embedded worker) serves the API; one real
`flowsync worker` process runs the steps; this process holds the subscribers (raw
`graphql-transport-ws` over the `websockets` library, lighter than a full client) and
starts executions of a 5-step chain at `--rate` per second, spread over `--owners` owners,
each owner's subscribers on `executionEvents`. Prints:

* delivery latency from an event's commit to each subscriber (p50, p99, max): the event's
  `at` is its transaction's start, so the figure slightly overstates the true delay;
* events delivered per second (all subscribers together) and events lost or repeated;
* the API process's RSS: idle, with the subscribers connected, and at the end;
* latency and SQL statement count of `executions(first: 50) { … steps { status } }`.

The URL names a server and a database to connect to for administration; the benchmark
creates (and drops) its own database there. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowsync.config import Settings  # noqa: E402
from flowsync.services.container import Services, build_services  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from tests.conftest import with_database  # noqa: E402
from tests.support.graphs import chain  # noqa: E402

EVENTS = "subscription { executionEvents { executionId sequence kind at } }"
QUERY = "{ executions(first: 50) { edges { node { steps { status } } } } }"
START = """mutation($w: ID!) { startExecution(workflowId: $w, input: {n: 1}) {
  ... on StartExecutionPayload { execution { id } } } }"""


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    samples: list[tuple[float, str, float]] = field(default_factory=list)
    delivered: int = 0
    problems: int = 0
    connected: int = 0
    # (subscriber, execution) -> last sequence seen
    last: dict[tuple[int, str], int] = field(default_factory=dict)


async def close_when(stop: asyncio.Event, ws: Any) -> None:
    await stop.wait()
    await ws.close()


async def subscriber(n: int, url: str, key: str, stats: Stats, stop: asyncio.Event) -> None:
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}
    protocols = ["graphql-transport-ws"]
    async with connect(url, subprotocols=protocols, max_queue=None, open_timeout=60) as ws:  # type: ignore[arg-type]
        await ws.send(orjson.dumps(init).decode())
        ack = orjson.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        await ws.send(orjson.dumps(subscribe).decode())
        stats.connected += 1
        # Closed when the run ends; meanwhile every message is read as it comes (a
        # timeout per read would cost this process a task per message).
        closer = asyncio.create_task(close_when(stop, ws))
        async for raw in ws:
            received = time.time()
            message = orjson.loads(raw)
            if message.get("type") != "next":
                stats.problems += 1
                continue
            event = message["payload"]["data"]["executionEvents"]
            key_ = (n, event["executionId"])
            previous = stats.last.get(key_)
            if event["kind"] == "snapshot":
                stats.last[key_] = event["sequence"]
                continue
            if (previous is None and event["sequence"] != 1) or (
                previous is not None and event["sequence"] != previous + 1
            ):
                stats.problems += 1
            stats.last[key_] = event["sequence"]
            stats.delivered += 1
            at = datetime.fromisoformat(event["at"]).timestamp()
            stats.latencies.append((received - at) * 1000)
            stats.samples.append((received, event["kind"], (received - at) * 1000))
        closer.cancel()


async def wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit("the API process exited")
            try:
                await client.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise SystemExit("the API process did not start")


async def query_cost(services: Services, key: str, port: int) -> tuple[int, list[float]]:
    """Statements of the executions query (in-process app on the same database, counted
    with SQLAlchemy's cursor events) and its latency against the API process."""
    from sqlalchemy import event

    from flowsync.app import create_app

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    app = create_app(services, live_events=False)
    headers = {"Authorization": f"Bearer {key}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await client.post("/graphql", json={"query": QUERY}, headers=headers)  # warm
        event.listen(services.engine.sync_engine, "before_cursor_execute", count)
        reply = await client.post("/graphql", json={"query": QUERY}, headers=headers)
        event.remove(services.engine.sync_engine, "before_cursor_execute", count)
        assert "errors" not in reply.json(), reply.text
    timings: list[float] = []
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            began = time.perf_counter()
            reply = await client.post(
                f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, headers=headers
            )
            timings.append((time.perf_counter() - began) * 1000)
            assert reply.status_code == 200
    return len(statements), timings


async def run(args: argparse.Namespace) -> None:
    import asyncpg

    from flowsync.config import to_asyncpg_dsn
    from flowsync.db.migrate import upgrade_async

    name = f"fs_bench_subs_{os.getpid()}"
    admin = await asyncpg.connect(to_asyncpg_dsn(args.url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(args.url, name)
    procs: list[subprocess.Popen[bytes]] = []
    services: Services | None = None
    logs = Path(tempfile.mkdtemp(prefix="flowsync-bench-"))
    try:
        await upgrade_async(url)
        settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
        services = await build_services(settings, url)
        owners: list[tuple[Principal, str, uuid.UUID]] = []
        for i in range(args.owners):
            owner = await services.api_keys.ensure_owner(f"bench:{i}")
            me = Principal(owner, "bench")
            key = (await services.api_keys.create(me, "bench")).secret
            wid = (await services.workflows.create(me, "chain", None, chain(5))).id
            owners.append((me, key, wid))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSYNC_")}
        env.update(
            FLOWSYNC_DATABASE_URL=url,
            FLOWSYNC_PORT=str(port),
            FLOWSYNC_DEV_WORKER="false",
            FLOWSYNC_DATA_DIR=str(logs),
            FLOWSYNC_LOG_LEVEL="warning",
            FLOWSYNC_RATE_LIMIT_PER_IP="1000000/minute",
            FLOWSYNC_RATE_LIMIT_PER_PRINCIPAL="1000000/minute",
            PYTHONPATH=str(ROOT),
        )
        profile = os.environ.get("BENCH_PROFILE_API")  # a path: the API runs under cProfile
        api = subprocess.Popen(
            [
                sys.executable,
                *(["-m", "cProfile", "-o", profile] if profile else []),
                "-m",
                "flowsync",
                "dev",
            ],
            env=env,
            stdout=(logs / "api.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        procs.append(api)
        await wait_up(port, api)
        worker = subprocess.Popen(
            [sys.executable, "-m", "flowsync", "worker", "--concurrency", "16"],
            env=env,
            stdout=(logs / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        procs.append(worker)
        await asyncio.sleep(2)  # both warm before anything is measured
        idle = rss_mb(api.pid)

        stats = Stats()
        stop = asyncio.Event()
        ws_url = f"ws://127.0.0.1:{port}/graphql"
        began = time.perf_counter()
        clients = []
        for n in range(args.subscribers):
            key = owners[n % len(owners)][1]
            clients.append(asyncio.create_task(subscriber(n, ws_url, key, stats, stop)))
            if n % 50 == 49:
                await asyncio.sleep(0.05)
        while stats.connected < args.subscribers:
            if any(c.done() for c in clients):
                for c in clients:
                    if c.done():
                        c.result()
            await asyncio.sleep(0.1)
        connect_seconds = time.perf_counter() - began
        await asyncio.sleep(2)
        subscribed = rss_mb(api.pid)
        # This process is the measuring instrument: a collection of its million objects
        # (a thousand connections, the samples) stops every subscriber at once for ~100
        # ms, and the events read after it would count the pause as delivery latency.
        gc.collect()
        gc.freeze()
        gc.disable()

        cpu_before = cpu_seconds(api.pid)
        own_before = time.process_time()
        started: list[tuple[Principal, uuid.UUID]] = []
        t0 = time.perf_counter()
        interval = 1 / args.rate
        i = 0
        peak = subscribed
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")
        while time.perf_counter() - t0 < args.duration:
            # Through the API, as a client starts runs: the start's transaction (and the
            # `at` of its first events) is the API process's own.
            me, key, wid = owners[i % len(owners)]
            reply = await http.post(
                "/graphql",
                json={"query": START, "variables": {"w": str(wid)}},
                headers={"Authorization": f"Bearer {key}"},
            )
            execution = reply.json()["data"]["startExecution"]["execution"]
            started.append((me, uuid.UUID(execution["id"])))
            i += 1
            peak = max(peak, rss_mb(api.pid))
            await asyncio.sleep(max(0.0, t0 + i * interval - time.perf_counter()))
        await http.aclose()
        # Let the last executions finish and their events arrive.
        for _ in range(300):
            statuses = [
                (await services.executions.get(me, eid)).status for me, eid in started[-20:]
            ]
            if all(s not in ("PENDING", "RUNNING") for s in statuses):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)
        elapsed = time.perf_counter() - t0
        end = rss_mb(api.pid)
        api_cpu = cpu_seconds(api.pid) - cpu_before
        own_cpu = time.process_time() - own_before
        gc.enable()
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)

        expected = 0
        per_owner: dict[uuid.UUID, int] = defaultdict(int)
        for me, eid in started:
            per_owner[me.owner_id] += len(await services.executions.events(me, eid))
        subs_per_owner = defaultdict(int)
        for n in range(args.subscribers):
            subs_per_owner[owners[n % len(owners)][0].owner_id] += 1
        expected = sum(per_owner[o] * subs_per_owner[o] for o in per_owner)

        statements, timings = await query_cost(services, owners[0][1], port)

        lat = stats.latencies
        if os.environ.get("BENCH_DETAIL"):
            by_kind: dict[str, list[float]] = defaultdict(list)
            for _, kind, ms in stats.samples:
                by_kind[kind].append(ms)
            for kind, values in sorted(by_kind.items()):
                print(f"    {kind:20} p50 {pct(values, 50):7.1f} p99 {pct(values, 99):7.1f}")
            first = stats.samples[0][0] if stats.samples else 0
            buckets: dict[int, float] = defaultdict(float)
            for when, _, ms in stats.samples:
                buckets[int((when - first) * 2)] = max(buckets[int((when - first) * 2)], ms)
            print("    worst per 0.5 s:", " ".join(f"{int(v)}" for _, v in sorted(buckets.items())))
        print(f"\nFlowSync subscriptions benchmark ({os.cpu_count()} cores), server {args.url}")
        print(
            f"  {args.subscribers} subscribers over {args.owners} owners, connected in "
            f"{connect_seconds:.1f} s; {len(started)} executions of a 5-step chain at "
            f"{args.rate}/s for {args.duration} s"
        )
        print(
            f"  delivery latency commit→subscriber over {len(lat)} deliveries: "
            f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, max {max(lat):.1f} ms"
        )
        print(
            f"  delivered {stats.delivered} of {expected} expected events "
            f"({stats.delivered / elapsed:.0f} events/s over {elapsed:.1f} s); "
            f"out-of-order, repeated or error messages: {stats.problems}"
        )
        print(
            f"  API process CPU: {api_cpu:.1f} s over the run, "
            f"{api_cpu / max(1, stats.delivered) * 1e6:.0f} µs per delivered event; "
            f"the subscribers' own process: {own_cpu:.1f} s"
        )
        print(
            f"  API process RSS: idle {idle:.0f} MB, {args.subscribers} subscribed "
            f"{subscribed:.0f} MB, peak {peak:.0f} MB, end {end:.0f} MB "
            f"(growth {end - idle:+.0f} MB)"
        )
        print(
            f"  executions(first: 50) {{ … steps {{ status }} }}: {statements} SQL statements; "
            f"p50 {pct(timings, 50):.1f} ms, p99 {pct(timings, 99):.1f} ms over HTTP"
        )
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if services is not None:
            await services.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if re.match(r"/tmp/flowsync-bench-", str(logs)):
            subprocess.run(["rm", "-rf", str(logs)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "FLOWSYNC_BENCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument(
        "--owners",
        default="1000,100,10",
        help="comma-separated: one run per value, the subscribers spread over that many "
        "owners (1000: one subscriber each; 10: every event goes to 100 subscribers)",
    )
    parser.add_argument("--rate", type=float, default=4, help="executions started per second")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load")
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    for owners in [int(o) for o in str(args.owners).split(",") if o.strip()]:
        asyncio.run(run(argparse.Namespace(**{**vars(args), "owners": owners})))


if __name__ == "__main__":
    main()
