"""Live subscriptions benchmark: N websocket subscribers on one API process (or on
`flowsync serve --workers N`) while executions run, and the cost of the executions query.

    .venv/bin/python bench/subscriptions_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--subscribers 1000] [--owners 1000,100,10] [--single-share 0] [--watchers-per-run 5]
        [--delay 0] [--rate 4] [--duration 20] [--clients 2] [--serve-workers 0]

One real `flowsync dev` process (no embedded worker), or with `--serve-workers N` one
`flowsync serve --workers N` (a supervisor and N processes on one port), serves the API;
one real `flowsync worker` process runs the steps. `--clients` processes
(bench/ws_swarm.py: raw `graphql-transport-ws` over websockets' sans-I/O protocol, no
task per connection) hold the subscribers, and this process starts executions of a 5-step
chain (after a `--delay` step) at `--rate` per second, spread over `--owners` owners.
Of the `--subscribers` websockets, the share `--single-share` watches single runs: as each
run starts, `--watchers-per-run` of its owner's watching connections subscribe to
`executionUpdated(id)` (a snapshot, then its events, then `complete`); the others hold
`executionEvents`, spread over the owners. Prints:

* delivery latency from an event's commit to each subscriber (p50, p99, max; with
  BENCH_DETAIL=1 also by event kind and the worst of each half second): the event's `at`
  is its transaction's start, so the figure overstates the true delay by the time the
  transaction took;
* events delivered per second (all subscribers together) and events lost, out of order
  or repeated (every owner subscriber must see every event of its owner's runs, every
  single-run subscription every event after its snapshot, then `complete`);
* the API's CPU (per process) and RSS (summed over its processes): idle, with the
  subscribers connected, peak and at the end; the API's open files limit (this process
  raises its own soft limit to the hard one, and the API inherits it);
* latency and SQL statement count of `executions(first: 50) { … steps { status } }`.

BENCH_PROFILE_API=PATH runs the API (`dev` only) under bench/profiled.py: cProfile, the
collector's pauses and the event loop's stalls while the runs go (BENCH_PROFILE_PHASE=
connect: while the subscribers connect; PROFILE_CPU=0: pauses and stalls only).

The URL names a server and a database to connect to for administration; the benchmark
creates (and drops) its own database there. Figures are printed; nothing is asserted.

10,000 subscribers (issue 20 item 3), on this 2-core machine (shared: other benchmarks ran
between these, never during one), each command under `flock /tmp/bench.lock`:

    .venv/bin/python bench/subscriptions_bench.py --subscribers 10000 --owners 1000 \
        --single-share 0.5 --delay 2 --duration 30 --clients 2 [--serve-workers 2]

5,000 websockets on `executionEvents` (5 per owner) and 5,000 watching single runs (5 per
owner; 5 subscribe to each run as it starts: 600 `executionUpdated` subscriptions over
the run), 120 runs at 4/s, ~620 deliveries/s:

* one `flowsync dev`, load average 0.9: 10,000 connected in 74.6 s (80.2 s of API
  CPU); latency p50 40.6 ms, p99 215 ms, max 462 ms; 21,600 of 21,600 events, none lost
  or repeated; API CPU 19.0 s over the 35 s (54% of a core); RSS idle 126 MB, connected
  601 MB, peak 640 MB, end 642 MB;
* the same, load average 2.2: connected in 91.8 s (87.9 s); p50 51.5 ms, p99 389 ms,
  max 604 ms; 21,600 of 21,600; API CPU 20.0 s; RSS 127 / 597 / 644 / 646 MB;
* `--serve-workers 2`, load average 4.9: connected in 94.1 s (98.2 s over both);
  p50 37.7 ms, p99 341 ms, max 598 ms; 21,628 of 21,628; API CPU 12.1 s + 10.1 s; RSS
  summed over its 4 processes (supervisor, resource tracker, 2 servers) 379 / 866 / 920
  / 922 MB;
* the control, `--subscribers 1000` and otherwise the same (5 watchers per run, the
  owner feeds one per owner on half of them: 4,322 deliveries, 124/s), load average 0.5:
  connected in 5.0 s (9.2 s); p50 10.4 ms, p99 27.6 ms, max 62.4 ms; none lost or
  repeated; API CPU 7.1 s; RSS 126 / 174 / 198 / 199 MB.

One process holds 10,000: nothing lost or repeated, ~48 KB per connection (601 MB), but
the p99 goal of 100 ms is missed on this machine, and what limits it is CPU:

* connecting costs the API ~8-10 ms of CPU per websocket (the HTTP upgrade through the
  middleware stack, `connection_init`'s key lookup in a database session, the
  subscription's resolver and, for `executionEvents`, `watch_state`'s query): 10,000
  connect in 75-95 s with the API's core saturated, and a reconnect storm (an API
  restart) would take as long;
* held idle, each connection costs wake-ups: its credential watchdog and its feed's
  re-check every `credential_check_seconds` (5 s), and uvicorn's keepalive ping every
  20 s: ~3,000 wake-ups/s at 10,000, a quarter of the API's CPU during the runs;
* the collector: with 10,000 connections the young generations fill with objects that
  live seconds (those wake-ups' timers), and a middle-generation collection took 32 ms
  on average, up to 145 ms (BENCH_PROFILE_API with PROFILE_CPU=0: 16 stalls of the loop
  over 50 ms in 35 s, all in collections or while delivering); a full one while
  connecting took 557 ms at 3,000;
* the machine: API (~55% of a core), worker, PostgreSQL and the client processes share
  2 cores; by kind, the worker's events (step.started, step.completed: p99 215-220 ms)
  lag more than the API's own (execution.started: p99 124 ms), since `at` is their
  transaction's start.

`--serve-workers 2` shares the load (the two processes' CPU 12.1 s and 10.1 s) at ~250 MB
more RSS; on 2 cores it cannot add CPU, so the tail stays where the machine puts it.

After the idle wake-ups were removed (the feeds no longer re-check credentials; one
watch per process re-checks every socket's key in one query per period: commits 11dc709
and e7e74da), the same command, load average 0.7-0.9, three runs:

* connected in 34.7-52.2 s; p50 16.7-23.3 ms; 21,525-21,602 events, none lost or
  repeated; API CPU 9.8-13.3 s over the 35 s (was 19-20 s), 451-616 µs per delivered
  event; RSS 129 / 579-594 / 618-632 / 620-633 MB;
* p99 1,366-1,896 ms, max 1,623-2,077 ms: each window held one full collection (the
  first after the connections were made): BENCH_PROFILE_API with PROFILE_CPU=0 found a
  generation-2 pause of 1,541 ms (1,681 ms in another run), the loop's only stall over
  50 ms; at the end the collector tracked 2,563,070 objects (~250 per connection: lists,
  cells, coroutines, bound methods, dicts, contexts, deques of the websocket, the
  handler, the ASGI stack and the feed), and one more full collection took 1,668 ms.
  Every other half-second's worst delivery: 57 ms at most in that run, 113-130 ms in
  the others; generation-1 collections 3.7 ms on average (were 32 ms).

So the tail at 10,000 on one process was CPython's full collection, proportional to the
objects of the connections. Since 5044f54 (flowsync.eventloop.LongLived) those objects
are frozen out of full collections in batches of 500 connections as they open, and given
back to the collector once half of them closed. The same command, load average 0.9-1.3,
two runs (the first under BENCH_PROFILE_API, PROFILE_CPU=0):

* connected in 33.8 s (35.0-35.4 s of API CPU); p50 20.6 / 21.4 ms, p99 46.3 / 47.6 ms,
  max 56.0 / 59.9 ms: the goal of p99 < 100 ms is met; 21,600 of 21,600 events, none
  lost or repeated, every single-run subscription completed; API CPU 9.5 / 9.4 s over
  the 35 s (433-440 µs per delivered event); RSS 128-129 / 592-593 / 634-641 /
  635-643 MB;
* the profile: no stall of the loop over 50 ms; the longest collection 9.5 ms (the
  middle generation); at the end 342,533 objects tracked and 2,554,006 frozen, and a
  full collection took 361 ms (was 1,668 ms);
* the executions query's p99 (338-1,077 ms) is taken while the 10,000 sockets close:
  half of them closed gives everything back to the collector, and its next full
  collection walks it all once.

Churn, `--churn 12` (after the runs, 12 cycles of 1,000 more connections opened and
closed while the 10,000 stay): p50 17.4 ms, p99 40.8 ms, max 64.5 ms over the runs, and
the API's RSS after each cycle 695, 726, 756, 786, 815, 846, 866, 866, 866, 866, 866,
866 MB: what the closed connections left stays frozen until 5,000 (half of those open)
have closed, then the collector frees it and the memory is reused. (A first version
that counted closes only since the last freeze never gave it back under churn: 695 to
1,027 MB, +30 MB a cycle; tests/unit/test_long_lived.py holds that case now.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_bench import url_argument  # noqa: E402
from bench.ws_swarm import OWNER_SUBSCRIPTION, Spec, SwarmResult, run_swarm  # noqa: E402
from flowsync.config import Settings  # noqa: E402
from flowsync.services.container import Services, build_services  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from tests.conftest import with_database  # noqa: E402
from tests.support.graphs import chain  # noqa: E402

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


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (`flowsync serve --workers N`: the supervisor
    and its N children)."""
    found = [pid]
    for p in found:
        for task in Path(f"/proc/{p}/task").iterdir():
            children = (task / "children").read_text().split()
            found.extend(int(c) for c in children if int(c) not in found)
    return found


def tree_rss_mb(pid: int) -> float:
    return sum(rss_mb(p) for p in descendants(pid))


def open_files_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return " / ".join(line.split()[3:5])
    return "?"


def detail(results: list[SwarmResult]) -> None:
    """Latency by event kind, and the worst latency of each half second."""
    kinds: dict[str, array[float]] = {}
    timeline = array("d")
    for r in results:
        for kind, raw in r.by_kind.items():
            kinds.setdefault(kind, array("d")).frombytes(raw)
        timeline.frombytes(r.timeline)
    for kind, values in sorted(kinds.items()):
        print(f"    {kind:24} p50 {pct(list(values), 50):7.1f} p99 {pct(list(values), 99):7.1f}")
    pairs = list(zip(timeline[::2], timeline[1::2], strict=True))
    first = min((t for t, _ in pairs), default=0.0)
    worst: dict[int, float] = {}
    for t, ms in pairs:
        b = int((t - first) * 2)
        worst[b] = max(worst.get(b, 0.0), ms)
    print("    worst per 0.5 s:", " ".join(f"{worst[b]:.0f}" for b in sorted(worst)))


@dataclass
class Plan:
    """Which connection is which: the first `owner_feeds` hold `executionEvents` (owner
    `index % owners`), the rest wait to watch single executions of owner
    `(index - owner_feeds) % owners`; connection `index` lives in swarm `index % swarms`."""

    subscribers: int
    owner_feeds: int
    owners: int
    swarms: int

    def owner_of(self, index: int) -> int:
        if index < self.owner_feeds:
            return index % self.owners
        return (index - self.owner_feeds) % self.owners

    def watchers_of(self, owner: int) -> list[int]:
        return list(range(self.owner_feeds + owner, self.subscribers, self.owners))


async def run(args: argparse.Namespace) -> None:
    import asyncpg

    from flowsync.config import to_asyncpg_dsn
    from flowsync.db.migrate import upgrade_async

    # 10,000 websockets need as many descriptors in the API process, which inherits ours.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    name = f"fs_bench_subs_{os.getpid()}"
    admin = await asyncpg.connect(to_asyncpg_dsn(args.url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(args.url, name)
    procs: list[subprocess.Popen[bytes]] = []
    swarms: list[tuple[Any, Connection]] = []
    services: Services | None = None
    logs = Path(tempfile.mkdtemp(prefix="flowsync-bench-"))
    try:
        await upgrade_async(url)
        settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
        services = await build_services(settings, url)
        owners: list[tuple[Principal, str, uuid.UUID]] = []
        workflow = chain(5, delay=args.delay or None)
        for i in range(args.owners):
            owner = await services.api_keys.ensure_owner(f"bench:{i}")
            me = Principal(owner, "bench")
            key = (await services.api_keys.create(me, "bench")).secret
            wid = (await services.workflows.create(me, "chain", None, workflow)).id
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
        # A path: the API runs under cProfile, on only while the executions run.
        profile = os.environ.get("BENCH_PROFILE_API")
        # BENCH_PROFILE_PHASE=connect: profile while the subscribers connect instead.
        connecting = os.environ.get("BENCH_PROFILE_PHASE") == "connect"
        if args.serve_workers:
            command = ["-m", "flowsync", "serve", "--workers", str(args.serve_workers)]
        else:
            command = [*([str(ROOT / "bench/profiled.py"), profile] if profile else [])]
            command += ["-m", "flowsync", "dev"]
        api = subprocess.Popen(
            [sys.executable, *command],
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
        api_pids = descendants(api.pid)
        idle = tree_rss_mb(api.pid)

        watchers = round(args.subscribers * args.single_share)
        plan = Plan(args.subscribers, args.subscribers - watchers, args.owners, args.clients)
        ws_url = f"ws://127.0.0.1:{port}/graphql"
        specs: list[list[Spec]] = [[] for _ in range(plan.swarms)]
        for index in range(plan.subscribers):
            key = owners[plan.owner_of(index)][1]
            specs[index % plan.swarms].append(Spec(index, key, index < plan.owner_feeds))
        began = time.perf_counter()
        if profile and connecting:
            os.kill(api.pid, signal.SIGUSR1)
        spawn = multiprocessing.get_context("spawn")
        for share in specs:
            ours, theirs = spawn.Pipe()
            swarm = spawn.Process(target=run_swarm, args=(theirs, ws_url, share), daemon=True)
            swarm.start()
            swarms.append((swarm, ours))
        connect_seconds = 0.0
        for _, pipe in swarms:
            if not await asyncio.to_thread(pipe.poll, 600):
                raise SystemExit("a client process did not connect its subscribers in time")
            _, count, seconds = pipe.recv()
            connect_seconds = max(connect_seconds, seconds)
        connected_at = time.perf_counter() - began
        if profile and connecting:
            os.kill(api.pid, signal.SIGUSR2)
        # The subscriptions are sent without an answer: give the API time to start them.
        await asyncio.sleep(max(3.0, args.subscribers / 2000))
        subscribed = tree_rss_mb(api.pid)
        gc.collect()
        gc.freeze()

        connect_cpu = sum(cpu_seconds(p) for p in api_pids)
        cpu_before = {p: cpu_seconds(p) for p in api_pids}
        if profile and not connecting:
            os.kill(api.pid, signal.SIGUSR1)
        started: list[tuple[int, uuid.UUID]] = []
        watches: list[tuple[int, str, uuid.UUID]] = []
        rotation = [0] * args.owners
        t0 = time.perf_counter()
        interval = 1 / args.rate
        i = 0
        peak = subscribed
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")
        while time.perf_counter() - t0 < args.duration:
            # Through the API, as a client starts runs: the start's transaction (and the
            # `at` of its first events) is the API process's own.
            o = i % len(owners)
            _, key, wid = owners[o]
            reply = await http.post(
                "/graphql",
                json={"query": START, "variables": {"w": str(wid)}},
                headers={"Authorization": f"Bearer {key}"},
            )
            eid = uuid.UUID(reply.json()["data"]["startExecution"]["execution"]["id"])
            started.append((o, eid))
            # Its watchers subscribe while it waits in its delay step, as a dashboard
            # opens a run just started.
            pool = plan.watchers_of(o)
            for _ in range(min(args.watchers_per_run, len(pool))):
                index = pool[rotation[o] % len(pool)]
                rotation[o] += 1
                sub = f"e{i}"
                swarms[index % plan.swarms][1].send(("watch", index, sub, str(eid)))
                watches.append((index, sub, eid))
            i += 1
            if i % 10 == 0:
                peak = max(peak, tree_rss_mb(api.pid))
            await asyncio.sleep(max(0.0, t0 + i * interval - time.perf_counter()))
        await http.aclose()
        # Let the last executions finish and their events arrive.
        for _ in range(300):
            statuses = [
                (await services.executions.get(owners[o][0], e)).status for o, e in started[-20:]
            ]
            if all(s not in ("PENDING", "RUNNING") for s in statuses):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)
        elapsed = time.perf_counter() - t0
        end = tree_rss_mb(api.pid)
        if profile and not connecting:
            os.kill(api.pid, signal.SIGUSR2)
        api_cpu = {p: cpu_seconds(p) - cpu_before[p] for p in api_pids}
        load = os.getloadavg()
        # Churn: while the subscribers stay, more connect (to executionEvents) and go away
        # again, cycle after cycle; the API's memory after each shows whether what closed
        # connections leave is given back (flowsync.eventloop.LongLived).
        churn_rss: list[float] = []
        for cycle in range(args.churn):
            extra = [
                Spec(plan.subscribers + n, owners[n % len(owners)][1], True)
                for n in range(args.churn_size)
            ]
            ours, theirs = spawn.Pipe()
            swarm = spawn.Process(target=run_swarm, args=(theirs, ws_url, extra), daemon=True)
            swarm.start()
            for message in ("connected", "result"):  # told to stop once connected
                if not await asyncio.to_thread(ours.poll, 600):
                    raise SystemExit(f"churn cycle {cycle}: no {message} from its clients")
                ours.recv()
                if message == "connected":
                    ours.send(("stop",))
            swarm.join(30)
            await asyncio.sleep(1)  # the API's side of the closes
            churn_rss.append(tree_rss_mb(api.pid))
        results: list[SwarmResult] = []
        for _, pipe in swarms:
            pipe.send(("stop",))
        for _, pipe in swarms:
            results.append(pipe.recv()[1])
        gc.unfreeze()

        count: dict[uuid.UUID, int] = {}
        for o, eid in started:
            count[eid] = len(await services.executions.events(owners[o][0], eid))
        tallies: dict[tuple[int, str, str], list[int]] = {}
        completed: set[tuple[int, str]] = set()
        owner_lat, watch_lat = array("d"), array("d")
        errors: list[str] = []
        for r in results:
            tallies.update(r.tallies)
            completed |= r.completed
            owner_lat.frombytes(r.owner_latencies)
            watch_lat.frombytes(r.watch_latencies)
            errors.extend(r.errors)
        expected = delivered = disorder = incomplete = 0
        for index in range(plan.owner_feeds):
            for o, eid in started:
                if o != plan.owner_of(index):
                    continue
                tally = tallies.get((index, OWNER_SUBSCRIPTION, str(eid)), [-1, 0, 0, 0])
                expected += count[eid]
                delivered += min(tally[2], count[eid])
                disorder += tally[3]
        for index, sub, eid in watches:
            tally = tallies.get((index, sub, str(eid)))
            if tally is None:  # not even the snapshot
                expected += count[eid]
                incomplete += 1
                continue
            expected += count[eid] - tally[0]
            delivered += min(tally[2], count[eid] - tally[0])
            disorder += tally[3]
            incomplete += (index, sub) not in completed
        total = len(owner_lat) + len(watch_lat)

        statements, timings = await query_cost(services, owners[0][1], port)

        lat = list(owner_lat) + list(watch_lat)
        if os.environ.get("BENCH_DETAIL"):
            detail(results)
        print(f"\nFlowSync subscriptions benchmark ({os.cpu_count()} cores), server {args.url}")
        processes = (
            f"`flowsync serve --workers {args.serve_workers}`"
            if args.serve_workers
            else "one `flowsync dev`"
        )
        print(
            f"  API: {processes} ({len(api_pids)} processes, open files limit "
            f"{open_files_limit(api_pids[-1])}); subscribers held by {plan.swarms} client "
            "processes"
        )
        print(
            f"  {plan.subscribers} websockets over {args.owners} owners: {plan.owner_feeds} on "
            f"executionEvents, {watchers} watching single runs with executionUpdated "
            f"({args.watchers_per_run} per run, {len(watches)} subscriptions); connected in "
            f"{connect_seconds:.1f} s ({connected_at:.1f} s with the clients' start; API CPU "
            f"until then {connect_cpu:.1f} s)"
        )
        print(
            f"  {len(started)} executions of a 5-step chain"
            f"{f' after a {args.delay:g} s delay' if args.delay else ''} at {args.rate:g}/s "
            f"for {args.duration:g} s"
        )
        print(
            f"  delivery latency commit→subscriber over {total} deliveries: "
            f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
            f"max {max(lat, default=0):.1f} ms"
            f" (executionEvents p99 {pct(list(owner_lat), 99):.1f} ms, executionUpdated p99 "
            f"{pct(list(watch_lat), 99):.1f} ms)"
        )
        print(
            f"  delivered {delivered} of {expected} expected events ({total / elapsed:.0f} "
            f"events/s over {elapsed:.1f} s); lost {expected - delivered}; out of order or "
            f"repeated {disorder}; single-run subscriptions not completed {incomplete}; "
            f"errors {len(errors)}; connections lost {sum(r.lost_connections for r in results)}"
        )
        for error in errors[:5]:
            print(f"    {error[:300]}")
        per_process = ", ".join(f"{api_cpu[p]:.1f}" for p in api_pids if p in api_cpu)
        print(
            f"  API CPU: {sum(api_cpu.values()):.1f} s over the run ({per_process} per process), "
            f"{sum(api_cpu.values()) / max(1, total) * 1e6:.0f} µs per delivered event; "
            f"client processes {sum(r.cpu_seconds for r in results):.1f} s; load average "
            f"{load[0]:.1f}"
        )
        print(
            f"  API RSS (all its processes): idle {idle:.0f} MB, {plan.subscribers} subscribed "
            f"{subscribed:.0f} MB, peak {peak:.0f} MB, end {end:.0f} MB "
            f"(growth {end - idle:+.0f} MB)"
        )
        if churn_rss:
            print(
                f"  churn: {args.churn} cycles of {args.churn_size} more connections opened and "
                "closed; API RSS after each: " + ", ".join(f"{m:.0f}" for m in churn_rss) + " MB"
            )
        print(
            f"  executions(first: 50) {{ … steps {{ status }} }}: {statements} SQL statements; "
            f"p50 {pct(timings, 50):.1f} ms, p99 {pct(timings, 99):.1f} ms over HTTP"
        )
    finally:
        for swarm, _ in swarms:
            swarm.kill()
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if services is not None:
            await services.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if re.match(r"/tmp/flowsync-bench-", str(logs)):
            subprocess.run(["rm", "-rf", str(logs)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    url_argument(parser)
    parser.add_argument("--subscribers", type=int, default=1000, help="websocket connections")
    parser.add_argument(
        "--owners",
        default="1000,100,10",
        help="comma-separated: one run per value, the subscribers spread over that many "
        "owners (1000: one subscriber each; 10: every event goes to 100 subscribers)",
    )
    parser.add_argument(
        "--single-share",
        type=float,
        default=0.0,
        help="the share of the connections that watch single runs (executionUpdated) "
        "instead of holding executionEvents",
    )
    parser.add_argument(
        "--watchers-per-run",
        type=int,
        default=5,
        help="connections of the run's owner that subscribe to each run as it starts",
    )
    parser.add_argument(
        "--delay",
        type=float,
        default=0.0,
        help="seconds each run waits (a delay step) before its five steps",
    )
    parser.add_argument("--rate", type=float, default=4, help="executions started per second")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load")
    parser.add_argument("--clients", type=int, default=2, help="processes holding the subscribers")
    parser.add_argument(
        "--churn",
        type=int,
        default=0,
        help="after the runs: cycles of --churn-size more connections opened and closed, "
        "the API's RSS printed after each",
    )
    parser.add_argument("--churn-size", type=int, default=1000, help="connections per cycle")
    parser.add_argument(
        "--serve-workers",
        type=int,
        default=0,
        help="run `flowsync serve --workers N` (RSS and CPU summed over its processes) "
        "instead of one `flowsync dev`",
    )
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    for owners in [int(o) for o in str(args.owners).split(",") if o.strip()]:
        asyncio.run(run(argparse.Namespace(**{**vars(args), "owners": owners})))


if __name__ == "__main__":
    main()
