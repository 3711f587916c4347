"""Subscription delivery per transport: the same load over graphql-transport-ws, the
legacy graphql-ws, GraphQL over SSE and multipart subscriptions.

    .venv/bin/python bench/transports_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--subscribers 100] [--owners 10] [--rate 4] [--duration 20]
        [--transports graphql-transport-ws,graphql-ws,sse,multipart]

As bench/subscriptions_bench.py (whose helpers it reuses): one real `flowsync dev` process
(no embedded worker) serves the API, one real `flowsync worker` process runs the steps,
and this process holds the subscribers, each on `executionEvents` of one of `--owners`
owners, while executions of a 5-step chain start through the API at `--rate` per second
for `--duration` seconds. The transports run one after the other on the same processes,
each with its own subscribers, once the previous transport's runs have ended. For each it
prints the delivery latency from an event's commit to its receipt (p50, p99, max: the
event's `at` is its transaction's start, so the figure slightly overstates the delay),
and the events lost (expected and never received) and repeated (received again, or out
of order). Figures are printed; nothing is asserted.

On the 2-core development machine (2026-12-05, load average 2.7-3.6 from other work),
`.venv/bin/python bench/transports_bench.py --subscribers 100 --owners 10 --rate 4 --duration 20`
printed (delivered/expected per line; no errors in any run):

  graphql-transport-ws  p50  29.7 ms  p99 193.9 ms  max 242.2 ms  13600/13600, lost 0, repeated 0
  graphql-ws            p50  20.8 ms  p99  58.9 ms  max 102.9 ms  13600/13600, lost 0, repeated 0
  sse                   p50  25.8 ms  p99  72.3 ms  max  94.9 ms  13600/13600, lost 0, repeated 0
  multipart             p50  24.3 ms  p99  69.1 ms  max  91.6 ms  13600/13600, lost 0, repeated 0

and with `--transports multipart,sse,graphql-ws,graphql-transport-ws` (reversed order):

  multipart             p50  58.5 ms  p99 173.8 ms  max 240.5 ms  13600/13600, lost 0, repeated 0
  sse                   p50  27.3 ms  p99  70.9 ms  max 113.6 ms  13600/13600, lost 0, repeated 0
  graphql-ws            p50  19.7 ms  p99  46.8 ms  max  59.5 ms  13600/13600, lost 0, repeated 0
  graphql-transport-ws  p50  15.9 ms  p99  48.3 ms  max  88.5 ms  13600/13600, lost 0, repeated 0

The transport measured first has the worst tail either way, despite the warm-up runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_bench import url_argument  # noqa: E402
from bench.subscriptions_bench import START, free_port, pct, wait_up  # noqa: E402
from bench.ws_swarm import OWNER_FEED as EVENTS  # noqa: E402
from flowsync.config import Settings  # noqa: E402
from flowsync.services.container import Services, build_services  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from tests.conftest import with_database  # noqa: E402
from tests.support.graphs import chain  # noqa: E402

TRANSPORTS = ("graphql-transport-ws", "graphql-ws", "sse", "multipart")
SSE = "text/event-stream"
MULTIPART = "multipart/mixed;subscriptionSpec=1.0,application/json"


@dataclass
class Tally:
    """What one transport's subscribers received."""

    latencies: list[float] = field(default_factory=list)
    received: set[tuple[int, str, int]] = field(default_factory=set)
    repeated: int = 0
    errors: int = 0
    connected: int = 0
    last: dict[tuple[int, str], int] = field(default_factory=dict)

    def event(self, n: int, payload: dict[str, Any]) -> None:
        """One result of subscriber `n` (`{"data": …}` or `{"errors": …}`)."""
        received = time.time()
        data = payload.get("data")
        if not data:
            self.errors += 1
            return
        event = data["executionEvents"]
        if event["kind"] == "snapshot":
            return
        key = (n, event["executionId"])
        sequence = event["sequence"]
        if sequence <= self.last.get(key, 0):  # seen already, or out of order
            self.repeated += 1
        self.received.add((n, event["executionId"], sequence))
        self.last[key] = max(sequence, self.last.get(key, 0))
        at = datetime.fromisoformat(event["at"]).timestamp()
        self.latencies.append((received - at) * 1000)


Subscriber = Callable[[int, str, str, Tally, asyncio.Event], Coroutine[Any, Any, None]]


async def websocket(
    protocol: str, n: int, base: str, key: str, tally: Tally, stop: asyncio.Event
) -> None:
    url = base.replace("http://", "ws://") + "/graphql"
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    subscribe = {"id": "1", "type": kind, "payload": {"query": EVENTS}}
    async with connect(url, subprotocols=[protocol], max_queue=None, open_timeout=60) as ws:  # type: ignore[list-item]
        await ws.send(orjson.dumps(init).decode())
        while (ack := orjson.loads(await ws.recv()))["type"] == "ka":
            pass
        assert ack["type"] == "connection_ack", ack
        await ws.send(orjson.dumps(subscribe).decode())
        tally.connected += 1
        closer = asyncio.create_task(_close_when(stop, ws.close))
        async for raw in ws:
            message = orjson.loads(raw)
            if message["type"] in ("next", "data"):
                tally.event(n, message["payload"])
            elif message["type"] != "ka":
                tally.errors += 1
        closer.cancel()


async def _close_when(stop: asyncio.Event, close: Callable[[], Awaitable[Any]]) -> None:
    await stop.wait()
    await close()


async def http_stream(
    accept: str, n: int, base: str, key: str, tally: Tally, stop: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Accept": accept}
    body = {"query": EVENTS}
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(60, read=None)) as client,
        client.stream("POST", f"{base}/graphql", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200, response.status_code
        tally.connected += 1
        reading = asyncio.create_task(
            _sse(n, response, tally) if accept == SSE else _multipart(n, response, tally)
        )
        await stop.wait()
        reading.cancel()
        (outcome,) = await asyncio.gather(reading, return_exceptions=True)
        if isinstance(outcome, Exception):  # the stream failed before the end
            tally.errors += 1


async def _sse(n: int, response: httpx.Response, tally: Tally) -> None:
    event: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and event is not None:
            if event == "next":
                tally.event(n, orjson.loads("\n".join(data)))
            event, data = None, []


async def _multipart(n: int, response: httpx.Response, tally: Tally) -> None:
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while "\r\n--graphql" in buffer:
            part, buffer = buffer.split("\r\n--graphql", 1)
            if "\r\n\r\n" in part:
                body = orjson.loads(part.split("\r\n\r\n", 1)[1])
                if body:  # `{}` is a heartbeat
                    tally.event(n, body["payload"])


def subscriber_of(transport: str) -> Subscriber:
    if transport == "sse":
        return lambda *a: http_stream(SSE, *a)
    if transport == "multipart":
        return lambda *a: http_stream(MULTIPART, *a)
    return lambda *a: websocket(transport, *a)


async def phase(
    transport: str,
    args: argparse.Namespace,
    base: str,
    services: Services,
    owners: list[tuple[Principal, str, uuid.UUID]],
) -> None:
    """One transport's subscribers under the load; prints its line."""
    tally = Tally()
    stop = asyncio.Event()
    subscribe = subscriber_of(transport)
    clients = [
        asyncio.create_task(subscribe(n, base, owners[n % len(owners)][1], tally, stop))
        for n in range(args.subscribers)
    ]
    for _ in range(600):
        if tally.connected >= args.subscribers:
            break
        for c in clients:
            if c.done():
                c.result()
        await asyncio.sleep(0.1)
    await asyncio.sleep(2)  # every subscription listening before the first run starts
    gc.collect()
    gc.freeze()
    gc.disable()  # a collection here would count as delivery latency
    started: list[tuple[Principal, uuid.UUID]] = []
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=base) as http:
        i = 0
        while time.perf_counter() - t0 < args.duration:
            me, key, wid = owners[i % len(owners)]
            reply = await http.post(
                "/graphql",
                json={"query": START, "variables": {"w": str(wid)}},
                headers={"Authorization": f"Bearer {key}"},
            )
            execution = reply.json()["data"]["startExecution"]["execution"]
            started.append((me, uuid.UUID(execution["id"])))
            i += 1
            await asyncio.sleep(max(0.0, t0 + i / args.rate - time.perf_counter()))
    for _ in range(300):  # the last runs end, their events arrive
        statuses = [(await services.executions.get(me, eid)).status for me, eid in started[-20:]]
        if all(s not in ("PENDING", "RUNNING") for s in statuses):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(3)
    gc.enable()
    stop.set()
    await asyncio.gather(*clients, return_exceptions=True)

    subscribers_of: dict[uuid.UUID, list[int]] = defaultdict(list)
    for n in range(args.subscribers):
        subscribers_of[owners[n % len(owners)][0].owner_id].append(n)
    expected: set[tuple[int, str, int]] = set()
    for me, eid in started:
        for e in await services.executions.events(me, eid):
            for n in subscribers_of[me.owner_id]:
                expected.add((n, str(eid), e.sequence))
    lost = len(expected - tally.received)
    lat = tally.latencies
    print(
        f"  {transport:21} p50 {pct(lat, 50):6.1f} ms  p99 {pct(lat, 99):6.1f} ms  "
        f"max {max(lat, default=float('nan')):7.1f} ms  over {len(lat)} deliveries of "
        f"{len(expected)} expected; lost {lost}, repeated {tally.repeated}, "
        f"errors {tally.errors}"
    )


async def warm_up(
    base: str, services: Services, owners: list[tuple[Principal, str, uuid.UUID]]
) -> None:
    """Runs with no subscriber, so that the first transport measured does not pay for the
    processes' first requests (connections, caches, prepared statements)."""
    started = []
    async with httpx.AsyncClient(base_url=base) as http:
        for me, key, wid in owners[:10] * 2:
            reply = await http.post(
                "/graphql",
                json={"query": START, "variables": {"w": str(wid)}},
                headers={"Authorization": f"Bearer {key}"},
            )
            started.append((me, reply.json()["data"]["startExecution"]["execution"]["id"]))
    for _ in range(300):
        statuses = [(await services.executions.get(me, eid)).status for me, eid in started]
        if all(s not in ("PENDING", "RUNNING") for s in statuses):
            return
        await asyncio.sleep(0.1)


async def run(args: argparse.Namespace) -> None:
    import asyncpg

    from flowsync.config import to_asyncpg_dsn
    from flowsync.db.migrate import upgrade_async

    name = f"fs_bench_transports_{os.getpid()}"
    admin = await asyncpg.connect(to_asyncpg_dsn(args.url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(args.url, name)
    procs: list[subprocess.Popen[bytes]] = []
    services: Services | None = None
    logs = Path(tempfile.mkdtemp(prefix="flowsync-bench-"))
    try:
        await upgrade_async(url)
        settings = Settings(database_url=url, _env_file=None)
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
        api = subprocess.Popen(
            [sys.executable, "-m", "flowsync", "dev"],
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
        await asyncio.sleep(2)
        await warm_up(f"http://127.0.0.1:{port}", services, owners)
        print(
            f"\nFlowSync subscriptions per transport ({os.cpu_count()} cores): "
            f"{args.subscribers} subscribers over {args.owners} owners on executionEvents, "
            f"{args.rate} runs/s of a 5-step chain for {args.duration} s, each transport in turn"
        )
        for transport in args.transports.split(","):
            await phase(transport.strip(), args, f"http://127.0.0.1:{port}", services, owners)
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
    url_argument(parser)
    parser.add_argument("--subscribers", type=int, default=100, help="per transport")
    parser.add_argument("--owners", type=int, default=10)
    parser.add_argument("--rate", type=float, default=4, help="executions started per second")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load")
    parser.add_argument("--transports", default=",".join(TRANSPORTS))
    args = parser.parse_args()
    unknown = set(args.transports.split(",")) - set(TRANSPORTS)
    if unknown:
        parser.error(f"unknown transports: {', '.join(sorted(unknown))}")
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
