"""Engine benchmark: no-op step throughput, hop latency, chain latency, write cost per step,
timer lateness, and the pgbench ceiling of one bare queue step on the same server, in the
same run.

    .venv/bin/python bench/engine_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--timer-spread 60] [--json PATH] [--bulk-batches 40]

After the figures (a)-(g), one table gives every figure beside its ceiling measured in the
same run (bench/summary.py); `--json PATH` writes that table as JSON, and
`bench/compare.py OLD.json NEW.json` prints the ratios of two such runs.

The URL names a server and a database to connect to for administration; the benchmark
creates (and drops) its own databases there. Worker processes are real `flowsync worker`
processes; each throughput run starts its workers, lets them warm up on a quarter as many
runs of the same workflow (not measured: their connections open and prepare statements,
the workflow is compiled), then measures. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from bench.summary import Figure, table, write  # noqa: E402
from flowsync.config import Settings, to_asyncpg_dsn  # noqa: E402
from flowsync.db.migrate import upgrade_async  # noqa: E402
from flowsync.db.models import EXECUTION_CHILDREN  # noqa: E402
from flowsync.services.container import Services, build_services  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from tests.conftest import with_database  # noqa: E402
from tests.support.graphs import chain, fan  # noqa: E402

# ../shared/bench beside the checkout (from a worktree under ../wt/, the one above it).
SHARED_BENCH = next(
    (p / "shared" / "bench" for p in ROOT.parents if (p / "shared" / "bench").is_dir()),
    ROOT.parent / "shared" / "bench",
)


# The throughput runs' shapes (a fork to 200 branches: issue 20's wide fan-out) and keys.
SHAPE_LABELS = {
    "chain": "10-step chain",
    "fan": "fork/join x20",
    "wide": "fork/join x200",
    "action": "10 HTTP actions",
}
THROUGHPUT_KEYS = [f"{shape}/{procs}" for shape in SHAPE_LABELS for procs in (1, 2)]


# Every run and what goes with it (their steps, events and jobs have no foreign key to it:
# a TRUNCATE ... CASCADE of executions alone would leave them).
TRUNCATE_RUNS = "TRUNCATE executions, " + ", ".join(EXECUTION_CHILDREN) + " CASCADE"


def url_argument(parser: argparse.ArgumentParser) -> None:
    """Every bench's `--url`: the server it makes its own databases on."""
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "FLOWSYNC_BENCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="an administrative connection; the benchmark creates and drops its own database "
        "on that server (default: %(default)s)",
    )


@contextlib.asynccontextmanager
async def bench_services(admin_url: str, name: str) -> AsyncIterator[tuple[str, Services]]:
    """A fresh, migrated database `name` on the server of `admin_url`, and FlowSync's
    services on it (closed on the way out)."""
    url = await fresh_db(admin_url, name)
    await upgrade_async(url)
    services = await build_services(Settings(database_url=url, _env_file=None), url)  # type: ignore[call-arg]
    try:
        yield url, services
    finally:
        await services.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def fresh_db(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(to_asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin_url, name)


def action_chain(url: str, length: int) -> dict[str, Any]:
    """start → length POSTs to the target → end."""
    definition = chain(length)
    for node in definition["nodes"]:
        if node["type"] == "transform":
            node["type"] = "action"
            node["data"] = {"method": "POST", "url": url, "body": {"n": 1}}
        elif node["type"] == "end":
            node["data"] = {"output": {"status": f"{{{{ steps.t{length}.output.status }}}}"}}
    return definition


def ssrf_check_cost() -> dict[str, float]:
    """Microseconds per guard check (resolve and classify) of an IP literal and of a
    name resolved through getaddrinfo."""
    from flowsync.worker.netguard import NetworkPolicy, resolve_checked

    policy = NetworkPolicy(["127.0.0.1/32", "localhost"])

    async def measure(host: str, n: int = 2000) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await resolve_checked(host, 80, policy)
        return (time.perf_counter() - start) / n * 1e6

    async def both() -> dict[str, float]:
        return {"ip literal": await measure("127.0.0.1"), "localhost": await measure("localhost")}

    return asyncio.run(both())


def start_workers(url: str, count: int, concurrency: int, **settings: Any) -> list[Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSYNC_")}
    env.update(FLOWSYNC_DATABASE_URL=url, PYTHONPATH=str(ROOT), FLOWSYNC_LOG_LEVEL="warning")
    for key, value in settings.items():
        env[f"FLOWSYNC_{key.upper()}"] = str(value)
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    return [
        subprocess.Popen(
            [sys.executable, "-m", "flowsync", "worker", "--concurrency", str(concurrency)],
            env=env,
            stdout=(logs / f"flowsync-bench-worker-{i}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for i in range(count)
    ]


def stop_workers(procs: list[Any]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(30)


# Every transaction, read-only ones and single statements included: a measure of round
# trips that end a transaction (of everything on this database during the run).
COMMITS = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"


async def wait_all_done(pool: asyncpg.Pool, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = await pool.fetchval("SELECT count(*) FROM executions WHERE status = 'RUNNING'")
        if left == 0:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("executions did not finish")


async def wait_started(pool: asyncpg.Pool, procs: int, timeout: float = 60) -> None:
    """Until `procs` workers listen for jobs (their last start-up step), and a little
    longer for their pools to open."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'flowsync-worker-listener'"
        )
        if listening >= procs:
            await asyncio.sleep(1.0)
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the workers did not start")


async def throughput(
    services: Services,
    me: Principal,
    definition: dict[str, Any],
    runs: int,
    procs: int,
    **settings: Any,
) -> tuple[float, int, float, float, float, float]:
    """Steps/s with `procs` worker processes over a backlog of `runs` executions, once
    the workers have warmed up (warm_up); also write transactions, WAL bytes and
    transactions of any kind per step, and the worker processes' CPU per step (µs, user
    and system; the server's is not counted)."""
    pool = services.pool
    await pool.execute(TRUNCATE_RUNS)
    wf = await services.workflows.create(me, f"bench-{time.time()}", None, definition)
    for _ in range(runs):
        await services.executions.start(me, wf.id, {"n": 0})
    # Steps run by workers: a run's start node is completed in the transaction that
    # creates the run (before the workers start), so it is neither counted nor timed.
    steps = runs * (len(definition["nodes"]) - 1)
    # The backlog waits until the workers have started: a process's start (~1.7 s of
    # CPU, imports mostly) is not a cost per step, and on 2 cores a second worker still
    # starting would take a core from the first one's steps.
    await pool.execute("UPDATE jobs SET run_at = now() + interval '1 hour'")
    workers = start_workers(services.url, procs, 32, **settings)
    try:
        await wait_started(pool, procs)
        await warm_up(services, me, wf.id, max(1, runs // 4))
    except BaseException:
        stop_workers(workers)
        raise
    xid0 = int(await pool.fetchval("SELECT txid_current()"))
    lsn0 = await pool.fetchval("SELECT pg_current_wal_lsn()")
    commits0 = await pool.fetchval(COMMITS)
    cpu0 = cpu_seconds(workers)
    try:
        await pool.execute("UPDATE jobs SET run_at = now()")
        await pool.execute("SELECT pg_notify('flowsync_jobs', '')")
        await wait_all_done(pool)
        cpu = cpu_seconds(workers) - cpu0
    finally:
        stop_workers(workers)
    xid1 = int(await pool.fetchval("SELECT txid_current()"))
    await asyncio.sleep(0.6)  # the statistics collector's flush interval is 0.5 s
    commits = await pool.fetchval(COMMITS) - commits0
    wal = await pool.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)", lsn0)
    span = await pool.fetchrow(
        "SELECT extract(epoch FROM max(e.finished_at) - min(s.started_at)) AS seconds "
        "FROM executions e JOIN step_executions s ON s.execution_id = e.id "
        "WHERE s.node_type <> 'start'"
    )
    failed = await pool.fetchval("SELECT count(*) FROM executions WHERE status <> 'COMPLETED'")
    assert failed == 0, f"{failed} executions did not complete"
    seconds = float(span["seconds"])
    return (steps / seconds, steps, (xid1 - xid0 - 1) / steps, float(wal) / steps,
            commits / steps, cpu / steps * 1e6)  # fmt: skip


async def warm_up(services: Services, me: Principal, workflow_id: Any, runs: int) -> None:
    """Run `runs` runs of the workflow (not measured, then deleted): a worker's pool
    opens its connections and prepares its statements on first use, and compiles a
    workflow on its first step of it. Those are costs of a process, as its start is, not
    of its steps: a throughput run of a few seconds would count each worker's share,
    twice with two workers."""
    pool = services.pool
    ids = [(await services.executions.start(me, workflow_id, {"n": 0})).execution.id
           for _ in range(runs)]  # fmt: skip
    deadline = time.monotonic() + 120
    while await pool.fetchval(
        "SELECT count(*) FROM executions WHERE id = ANY($1) AND status = 'RUNNING'", ids
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("the warm-up runs did not finish")
        await asyncio.sleep(0.05)
    await pool.execute("DELETE FROM executions WHERE id = ANY($1)", ids)
    # Their commits reach pg_stat_database before it is read: an idle backend (a
    # worker's pooled connection) flushes its statistics after 10 s (PostgreSQL's
    # PGSTAT_IDLE_INTERVAL); read sooner, the warm-up's would count as the run's.
    await asyncio.sleep(11)


def cpu_seconds(procs: list[Any]) -> float:
    """The CPU time (user and system) the processes have used so far (/proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for proc in procs:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick


async def latency(services: Services, me: Principal, runs: int) -> tuple[list[float], list[float]]:
    """A 10-transform chain run one at a time on an idle worker: end-to-end latency of
    each execution and the hop latency between consecutive steps."""
    pool = services.pool
    await pool.execute(TRUNCATE_RUNS)
    definition = chain(10)
    for node in definition["nodes"]:
        if node["type"] == "transform":
            node["data"]["output"]["at"] = "{{ execution.id }}"
    wf = await services.workflows.create(me, "latency", None, definition)
    workers = start_workers(services.url, 1, 16, extra_handlers="transform=bench.handlers:Stamp")
    e2e: list[float] = []
    hops: list[float] = []
    try:
        await asyncio.sleep(2)  # let the worker connect
        for _ in range(runs):
            t0 = time.time()
            started = await services.executions.start(me, wf.id, {"n": 0})
            eid = started.execution.id
            while True:
                row = await pool.fetchrow(
                    "SELECT status, extract(epoch FROM finished_at - created_at) AS s "
                    "FROM executions WHERE id = $1",
                    eid,
                )
                if row["status"] != "RUNNING":
                    break
                await asyncio.sleep(0.001)
            assert row["status"] == "COMPLETED"
            e2e.append(float(row["s"]) * 1000)
            outs = await pool.fetch(
                "SELECT node_id, (output->>'enteredAt')::float8 AS t FROM step_executions "
                "WHERE execution_id = $1 AND node_id LIKE 't%' ORDER BY (output->>'enteredAt')",
                eid,
            )
            times = [r["t"] for r in outs]
            hops += [(b - a) * 1000 for a, b in itertools.pairwise(times)]
            del t0
    finally:
        stop_workers(workers)
    return e2e, hops


TIMER = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "wait", "type": "delay", "data": {"until": "{{ input.at }}"}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "wait"}, {"source": "wait", "target": "end"}],
}


async def timer_lateness(
    services: Services, me: Principal, count: int, spread: float, procs: int = 2
) -> tuple[list[float], int]:
    """`count` delays due from a moment on, `spread` seconds apart in all (0: all at
    once), run by `procs` idle worker processes at the default poll (2 s): how late each
    was claimed after its due time, in ms (the claim's time is the database's, the due
    time this host's: the same clock here). Also how many were first claimed (to be
    parked) only after their due time: their lateness is the start's, not the timer's."""
    pool = services.pool
    await pool.execute(TRUNCATE_RUNS)
    wf = await services.workflows.create(me, f"timers-{time.time()}", None, TIMER)
    workers = start_workers(services.url, procs, 32)
    try:
        await wait_started(pool, procs)
        # Every run starts and parks its timer before the first falls due.
        first = datetime.now(UTC) + timedelta(seconds=5 + count / 100)
        due = [first + timedelta(seconds=spread * i / count) for i in range(count)]
        gate = asyncio.Semaphore(8)

        async def start(at: datetime) -> None:
            async with gate:
                await services.executions.start(me, wf.id, {"at": at.isoformat()})

        await asyncio.gather(*(start(at) for at in due))
        await wait_all_done(pool, timeout=spread + 120)
    finally:
        stop_workers(workers)
    rows = await pool.fetch(
        "SELECT (e.input ->> 'at')::timestamptz AS due, min(v.at) AS parked, "
        "max(v.at) AS claimed "
        "FROM executions e JOIN execution_events v ON v.execution_id = e.id "
        "WHERE v.node_id = 'wait' AND v.kind = 'step.started' GROUP BY e.id"
    )
    assert len(rows) == count, f"{len(rows)} of {count} timers ran"
    late = sum(r["parked"] > r["due"] for r in rows)
    return [(r["claimed"] - r["due"]).total_seconds() * 1000 for r in rows], late


def pgbench_ceiling(admin_url: str) -> float | None:
    """tps of the shared one-bare-queue-step pgbench script at 8 clients."""
    binary = shutil.which("pgbench") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)), None
    )
    script = SHARED_BENCH / "pgbench-queue-step.sql"
    schema = SHARED_BENCH / "pgbench-queue-schema.sql"
    if binary is None or not script.exists():
        print("pgbench or the shared scripts are missing; no ceiling measured")
        return None
    url = asyncio.run(fresh_db(admin_url, "flowsync_pgbench"))
    subprocess.run(["psql", "-q", "-d", url, "-f", str(schema)], check=True, capture_output=True)
    out = subprocess.run(
        [
            str(binary),
            "-n",
            "-M",
            "prepared",
            "-c",
            "8",
            "-j",
            "8",
            "-T",
            "10",
            "-f",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"tps = ([\d.]+)", out)
    return float(match.group(1)) if match else None


async def main_async(
    admin_url: str, runs: int, repeat: int, timers: int, spread: float, only_timers: bool
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with bench_services(admin_url, "flowsync_bench") as (_, services):
        me = Principal(await services.api_keys.ensure_owner("bench"), "bench")
        results["timers/0"] = await timer_lateness(services, me, timers, 0)
        results["timers/spread"] = await timer_lateness(services, me, timers, spread)
        if only_timers:
            return results
        # One and two workers take turns within each repetition, so that a slower or
        # faster phase of the machine meets both alike (issue 20 compares the two).
        for _ in range(repeat):
            for key, shape, count in (
                ("chain", chain(10), runs),
                ("fan", fan(20), runs),
                ("wide", fan(200), max(1, runs // 20)),
            ):
                for procs in (1, 2):
                    run = await throughput(services, me, shape, count, procs)
                    results.setdefault(f"{key}/{procs}", []).append(run)
        results["latency"] = await latency(services, me, 200)
        from bench.action_target import serving
        from bench.httpx_ceiling import measure as httpx_measure

        async with serving() as target:
            actions = action_chain(target, 10)
            for _ in range(repeat):
                for procs in (1, 2):
                    run = await throughput(
                        services, me, actions, runs // 2, procs, allow_networks="127.0.0.1/32"
                    )
                    results.setdefault(f"action/{procs}", []).append(run)
            # Their ceiling, the same target driven by plain httpx loops, in this run.
            for procs in (1, 2):
                results[f"httpx/{procs}"] = await asyncio.to_thread(
                    httpx_measure, target, procs, 32
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    url_argument(parser)
    parser.add_argument("--runs", type=int, default=400, help="executions per throughput run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="throughput runs per shape; the median is shown"
    )
    parser.add_argument("--timers", type=int, default=1000, help="timers per lateness run")
    parser.add_argument(
        "--timer-spread",
        type=float,
        default=15,
        help="seconds over which the second lateness run's timers fall due (60: a minute)",
    )
    parser.add_argument("--only-timers", action="store_true", help="measure timer lateness only")
    parser.add_argument(
        "--bulk-batches", type=int, default=40,
        help="batches of 1,000 per bulk-start measurement (bench/bulk_start_bench.py; 0: none)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the summary table as JSON here")
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

    # The ceiling before and after FlowSync's runs: this machine's speed drifts.
    ceilings = [] if args.only_timers else [pgbench_ceiling(args.url)]
    results = asyncio.run(
        main_async(
            args.url, args.runs, args.repeat, args.timers, args.timer_spread, args.only_timers
        )
    )
    bulk: dict[str, Any] = {}
    if not args.only_timers and args.bulk_batches:
        from bench.bulk_start_bench import CLIENTS
        from bench.bulk_start_bench import measure as bulk_measure

        bulk = bulk_measure(args.url, args.bulk_batches, 1000, CLIENTS)
    if not args.only_timers:
        ceilings.append(pgbench_ceiling(args.url))

    print(f"\nFlowSync engine benchmark ({os.cpu_count()} cores), server {args.url}")
    best = 0.0
    if not args.only_timers:
        print(
            "(a) no-op transform steps per second (backlog drained by worker processes), "
            f"the median of {args.repeat} runs (their range), with that run's costs"
        )
        for key in THROUGHPUT_KEYS:
            runs = sorted(results[key])
            rate, steps, xacts, wal, commits, cpu = runs[len(runs) // 2]
            shape, procs = key.split("/")
            if shape != "action":
                best = max(best, rate)
            label = SHAPE_LABELS[shape]
            print(
                f"    {label:14} {procs} worker(s): {rate:7.0f} steps/s "
                f"({runs[0][0]:.0f}-{runs[-1][0]:.0f}) over {steps} steps; "
                f"{xacts:.2f} write transactions ({commits:.2f} in all), "
                f"{wal / 1024:.1f} KiB WAL and {cpu:.0f} µs of worker CPU per step"
            )
            if shape == "action" and f"httpx/{procs}" in results:
                ceiling = results[f"httpx/{procs}"]
                print(
                    f"        ceiling: plain httpx loops, {procs} process(es) x 32: "
                    f"{ceiling:.0f} requests/s; the steps are {rate / ceiling:.0%} of it"
                )
        e2e, hops = results["latency"]
        print(
            f"(b) hop latency over {len(hops)} hops: p50 {pct(hops, 50):.2f} ms, "
            f"p99 {pct(hops, 99):.2f} ms, max {max(hops):.2f} ms"
        )
        print(
            f"(c) 10-step chain end to end over {len(e2e)} runs: p50 {pct(e2e, 50):.2f} ms, "
            f"p99 {pct(e2e, 99):.2f} ms, mean {statistics.mean(e2e):.2f} ms"
        )
        cost = ssrf_check_cost()
        print(
            "(f) SSRF guard per new connection: "
            + ", ".join(f"{k} {v:.1f} µs" for k, v in cost.items())
        )
    for key, how in (("timers/0", "due at once"),
                     ("timers/spread", f"due over {args.timer_spread:g} s")):  # fmt: skip
        late, early = results[key]
        print(
            f"(d) timer lateness, {len(late)} delays {how} (2 idle workers, poll 2 s): "
            f"p50 {pct(late, 50):.0f} ms, p99 {pct(late, 99):.0f} ms, max {max(late):.0f} ms"
            + (f" ({early} were first claimed after their due time)" if early else "")
        )
    measured = [c for c in ceilings if c]
    if measured and best:
        ceiling = statistics.mean(measured)
        print(
            f"(e) pgbench bare queue step, 8 clients: {' and '.join(f'{c:.0f}' for c in measured)}"
            f" tps (before and after); FlowSync's best {best:.0f} steps/s is "
            f"{best / ceiling:.0%} of their mean"
        )
    if bulk:
        print(
            f"(g) bulk starts, {args.bulk_batches} batches of 1,000, {CLIENTS} in flight: service "
            f"{bulk['service']:.0f} runs/s, REST {bulk['rest']:.0f}, GraphQL "
            f"{bulk['graphql']:.0f} runs/s (goal 20,000); "
            + (f"ceiling {bulk['ceiling']:.0f} runs/s (bare INSERT, "
               f"{bulk['rows_per_run']:.1f} rows per run)"
               if bulk["ceiling"] else "no ceiling measured")
        )  # fmt: skip
    figures = summary(results, measured, bulk, args.only_timers, args.timer_spread)
    print("\nSummary: each figure beside its ceiling from this run")
    print(table(figures))
    if args.json is not None:
        write(args.json, "engine", figures)
        print(f"(written to {args.json}; compare two runs with bench/compare.py OLD NEW)")


PGBENCH = "pgbench bare queue step, 8 clients"
HTTPX = "plain httpx loops, same target and concurrency"


def summary(
    results: dict[str, Any],
    ceilings: list[float],
    bulk: dict[str, Any],
    only_timers: bool,
    spread: float,
) -> list[Figure]:
    """Every figure of the run, each with its ceiling from the same run where one was
    measured: pgbench's bare queue step (the mean of before and after) for no-op steps
    and their hops, plain httpx loops at the same concurrency for HTTP action steps
    (bench/httpx_ceiling.py), a bare INSERT for bulk starts."""
    ceiling = statistics.mean(ceilings) if ceilings else None
    out: list[Figure] = []
    if not only_timers:
        for key in THROUGHPUT_KEYS:
            runs = sorted(results[key])
            rate, _, xacts, wal, _, cpu = runs[len(runs) // 2]
            shape, procs = key.split("/")
            name = f"{SHAPE_LABELS[shape]}, {procs} worker{'s' if procs != '1' else ''}"
            if shape != "action":
                bound, bound_name = ceiling, PGBENCH if ceiling is not None else ""
            else:
                bound, bound_name = results.get(f"httpx/{procs}"), HTTPX
            out.append(Figure(f"{name}: steps/s", rate, "steps/s", "higher", bound,
                              bound_name))  # fmt: skip
            out.append(Figure(f"{name}: write transactions/step", xacts, "xacts", "lower"))
            out.append(Figure(f"{name}: WAL/step", wal / 1024, "KiB", "lower"))
            out.append(Figure(f"{name}: worker CPU/step", cpu, "µs", "lower"))
        e2e, hops = results["latency"]
        out.append(Figure("hop latency p50", pct(hops, 50), "ms", "lower"))
        out.append(Figure("hop latency p99", pct(hops, 99), "ms", "lower"))
        out.append(Figure("10-step chain end to end p50", pct(e2e, 50), "ms", "lower"))
    for key, how in (("timers/0", "at once"), ("timers/spread", f"over {spread:g} s")):
        if key in results:
            late, _ = results[key]
            out.append(Figure(f"timer lateness p99, due {how}", pct(late, 99), "ms", "lower"))
    if bulk:
        for face in ("service", "rest", "graphql"):
            out.append(Figure(f"bulk starts ({face}), batches of 1,000", bulk[face], "runs/s",
                              "higher", bulk["ceiling"],
                              "bare INSERT of a start's rows"))  # fmt: skip
    if ceiling is not None:
        out.append(Figure(PGBENCH, ceiling, "tps", "higher"))
    return out


if __name__ == "__main__":
    main()
