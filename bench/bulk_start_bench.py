"""Bulk starts benchmark: executions started per second in batches (startExecutions'
service method, then POST /api/workflows/{id}/executions:batch and GraphQL's
startExecutions on a real `flowsync serve` process), beside the ceiling of the same
server in the same run: plain rows written by pgbench, one `INSERT ... SELECT` of a
batch's worth per transaction into a bare table, divided by the rows a start writes per
run (its execution, steps, events and job, and its share of the batch's audit entry):
the rate if those rows cost no more than bare ones (no foreign keys, one index).

    .venv/bin/python bench/bulk_start_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--batches 40] [--size 1000] [--clients 4] [--length 1]

Each started run is of a chain of `--length` transforms (start → t1 … → end: 3 nodes by
default, so 3 step rows, 4 events and 1 job per run, and one audit entry per batch; its
start node done and its first step queued in the start's transaction, as any start does);
no worker runs meanwhile. The URL names a server and a database to connect to for
administration; the benchmark creates its own databases there. Goal (issue 20): 20,000
runs/s on 2 cores. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_bench import TRUNCATE_RUNS, cpu_seconds, fresh_db, url_argument  # noqa: E402
from flowsync.config import Settings  # noqa: E402
from flowsync.db.migrate import upgrade_async  # noqa: E402
from flowsync.eventloop import settle_heap  # noqa: E402
from flowsync.services.container import Services, build_services  # noqa: E402
from flowsync.services.executions import StartItem  # noqa: E402
from flowsync.services.principal import Principal  # noqa: E402
from tests.support.graphs import chain  # noqa: E402


class Pid:
    """A process by its id, as cpu_seconds takes it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid


def postgres_processes() -> list[Pid]:
    """This machine's PostgreSQL server processes (none when the server is elsewhere)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                found.append(Pid(int(entry.name)))
        except OSError:
            continue
    return found


def cpu_of(procs: list[Pid]) -> float:
    """cpu_seconds of those of `procs` still running."""
    total = 0.0
    for proc in procs:
        try:
            total += cpu_seconds([proc])
        except OSError:  # ended meanwhile (its time is then not counted)
            continue
    return total


# Batches in flight at once. With 2, a quarter of the 2 cores stayed idle: the API's one
# event loop and the database took turns (a batch's transaction waits for the loop
# between its statements while the loop encodes another batch's reply). A backfill or a
# load test sends several batches at once.
CLIENTS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def service_rate(
    services: Services, me: Principal, batches: int, size: int, clients: int, length: int
) -> float:
    """Runs started per second through ExecutionService.start_many, `clients` batches
    in flight at once."""
    wf = await services.workflows.create(me, f"bulk-{time.time()}", None, chain(length))
    await services.executions.start_many(me, wf.id, [StartItem({"n": 0})])  # compiled, warm
    queue = list(range(batches))

    async def client() -> None:
        while queue:
            queue.pop()
            await services.executions.start_many(
                me, wf.id, [StartItem({"n": i}) for i in range(size)]
            )

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return batches * size / (time.perf_counter() - t0)


class CpuPerRun:
    """CPU time per run started (µs, user and system) of the API process, the local
    PostgreSQL server's processes and this client process, from `begin` to `end`. A
    server process that started meanwhile (a pool's new connection) counts whole; one
    that ended meanwhile is not counted."""

    def __init__(self, api: list[Pid], runs: int) -> None:
        self.api, self.runs = api, runs
        self.me = [Pid(os.getpid())]

    def begin(self) -> None:
        self.before = (cpu_of(self.api), self._postgres(), cpu_of(self.me))

    def end(self) -> dict[str, float]:
        api, me, postgres = cpu_of(self.api), cpu_of(self.me), self._postgres()
        server = sum(spent - self.before[1].get(pid, 0.0) for pid, spent in postgres.items())
        spent = (api - self.before[0], server, me - self.before[2])
        names = ("api", "postgres", "client")
        return {name: s * 1e6 / self.runs for name, s in zip(names, spent, strict=True)}

    @staticmethod
    def _postgres() -> dict[int, float]:
        found = {}
        for proc in postgres_processes():
            try:
                found[proc.pid] = cpu_seconds([proc])
            except OSError:  # ended meanwhile
                continue
        return found


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


# The GraphQL face's batch start, asking for what a caller of a batch needs back.
START_EXECUTIONS = """
mutation Start($workflowId: ID!, $inputs: [StartExecutionItem!]!) {
  startExecutions(workflowId: $workflowId, inputs: $inputs) {
    __typename
    ... on StartExecutionsPayload { results { created execution { id status } } }
  }
}
"""


async def api_rates(
    services: Services,
    me: Principal,
    url: str,
    batches: int,
    size: int,
    clients: int,
    length: int,
) -> dict[str, Any]:
    """Runs started per second on one `flowsync serve` process, `clients` requests in
    flight at once: through POST /api/workflows/{id}/executions:batch ("rest"), then,
    on emptied tables, through GraphQL's startExecutions ("graphql")."""
    key = (await services.api_keys.create(me, "bulk bench")).secret
    wf = await services.workflows.create(me, f"bulk-rest-{time.time()}", None, chain(length))
    port = free_port()
    logs = Path(tempfile.mkdtemp(prefix="flowsync-bulk-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWSYNC_")}
    env.update(
        FLOWSYNC_DATABASE_URL=url,
        FLOWSYNC_PORT=str(port),
        FLOWSYNC_LOG_LEVEL="warning",
        FLOWSYNC_RATE_LIMIT_PER_IP="1000000/minute",
        FLOWSYNC_RATE_LIMIT_PER_PRINCIPAL="1000000/minute",
        FLOWSYNC_MAX_QUEUE_DEPTH="10000000",
        PYTHONPATH=str(ROOT),
    )
    api = subprocess.Popen(
        [sys.executable, "-m", "flowsync", "serve"],
        env=env,
        stdout=(logs / "api.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        await wait_up(port, api)
        headers = {"Authorization": f"Bearer {key}"}
        path = f"/api/workflows/{wf.id}/executions:batch"
        body = {"inputs": [{"input": {"n": i}} for i in range(size)]}
        mutation = {
            "query": START_EXECUTIONS,
            "variables": {"workflowId": str(wf.id), "inputs": body["inputs"]},
        }
        out: dict[str, Any] = {}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120
        ) as http:
            (await http.post(path, json={"inputs": [{}]})).raise_for_status()  # warm
            warm = {**mutation, "variables": {"workflowId": str(wf.id), "inputs": [{}]}}
            (await http.post("/graphql", json=warm)).raise_for_status()

            # The client shares the server's two cores: each body is encoded once (every
            # batch sends the same), and a GraphQL reply is checked by its first bytes
            # (fields come in the query's order) instead of parsing 1,000 results.
            json_type = {"Content-Type": "application/json"}
            rest_body = orjson.dumps(body)
            graphql_body = orjson.dumps(mutation)
            payload = b'{"data":{"startExecutions":{"__typename":"StartExecutionsPayload"'

            async def rest() -> None:
                reply = await http.post(path, content=rest_body, headers=json_type)
                assert reply.status_code == 201, reply.text[:500]

            async def graphql() -> None:
                reply = await http.post("/graphql", content=graphql_body, headers=json_type)
                assert reply.content.startswith(payload), reply.text[:500]

            for face, send in (("rest", rest), ("graphql", graphql)):
                await services.pool.execute(TRUNCATE_RUNS)
                queue = list(range(batches))

                async def client(send: Any = send, queue: list[int] = queue) -> None:
                    while queue:
                        queue.pop()
                        await send()

                cpu = CpuPerRun([Pid(api.pid)], batches * size)
                cpu.begin()
                t0 = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(clients)))
                out[face] = batches * size / (time.perf_counter() - t0)
                out[f"{face}_cpu"] = cpu.end()
        return out
    finally:
        api.terminate()
        api.wait(30)


# Every row the starts wrote, per run started.
ROWS_PER_RUN = """
SELECT ((SELECT count(*) FROM executions) + (SELECT count(*) FROM step_executions)
        + (SELECT count(*) FROM execution_events) + (SELECT count(*) FROM jobs)
        + (SELECT count(*) FROM audit_log WHERE action = 'execution.batch_started'))::float8
       / (SELECT count(*) FROM executions)
"""

BARE_TABLE = """
DROP TABLE IF EXISTS bare_runs;
CREATE TABLE bare_runs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), input jsonb NOT NULL,
                        created_at timestamptz NOT NULL DEFAULT now());
"""


def bare_insert_ceiling(admin_url: str, size: int, clients: int, seconds: int = 5) -> float | None:
    """Rows per second that pgbench writes to a bare table (uuid key, jsonb, time), one
    `INSERT ... SELECT` of `size` rows per transaction, `clients` at once: the most runs a
    start that writes one row each could reach on this server."""
    binary = shutil.which("pgbench") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)), None
    )
    if binary is None:
        print("pgbench is missing; no bulk-start ceiling measured")
        return None
    url = asyncio.run(fresh_db(admin_url, "flowsync_bulk_ceiling"))
    subprocess.run(["psql", "-q", "-d", url, "-c", BARE_TABLE], check=True, capture_output=True)
    script = Path(tempfile.mkdtemp(prefix="flowsync-bulk-")) / "insert.sql"
    script.write_text(
        "INSERT INTO bare_runs (input) "
        f"SELECT jsonb_build_object('n', g) FROM generate_series(1, {size}) g;\n"
    )
    out = subprocess.run(
        [str(binary), "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
         "-T", str(seconds), "-f", str(script), url],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    match = re.search(r"tps = ([\d.]+)", out)
    return float(match.group(1)) * size if match else None


async def rates(
    admin_url: str, batches: int, size: int, clients: int, length: int
) -> dict[str, float]:
    """The service's and the REST face's rates, on a fresh database."""
    url = await fresh_db(admin_url, "flowsync_bulk")
    await upgrade_async(url)
    settings = Settings(database_url=url, max_queue_depth=10_000_000, _env_file=None)  # type: ignore[call-arg]
    services = await build_services(settings, url)
    try:
        me = Principal(await services.api_keys.ensure_owner("bench:bulk"), "bench")
        settle_heap()  # as an API process does before it serves
        # The service runs in this process: its CPU is the API's, none is the client's.
        cpu = CpuPerRun([Pid(os.getpid())], batches * size)
        cpu.begin()
        out: dict[str, Any] = {
            "service": await service_rate(services, me, batches, size, clients, length)
        }
        out["service_cpu"] = {**cpu.end(), "client": 0.0}
        out["rows_per_run"] = float(await services.pool.fetchval(ROWS_PER_RUN))
        out.update(await api_rates(services, me, url, batches, size, clients, length))
        return out
    finally:
        await services.close()


def measure(
    admin_url: str, batches: int, size: int, clients: int, length: int = 1
) -> dict[str, Any]:
    """Every figure of this benchmark: {"service", "rest", "graphql", "ceiling"} in runs
    per second, "rows_per_run" and "bare_rows" (rows/s). The ceiling is the bare INSERT's
    rows/s over the rows a start writes per run (None without pgbench)."""
    found: dict[str, Any] = dict(asyncio.run(rates(admin_url, batches, size, clients, length)))
    found["bare_rows"] = bare_insert_ceiling(admin_url, size, clients)
    found["ceiling"] = found["bare_rows"] / found["rows_per_run"] if found["bare_rows"] else None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    url_argument(parser)
    parser.add_argument("--batches", type=int, default=40, help="batches per measurement")
    parser.add_argument("--size", type=int, default=1000, help="runs per batch")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="batches in flight at once")
    parser.add_argument("--length", type=int, default=1, help="transforms in each run's chain")
    args = parser.parse_args()
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    found = measure(args.url, args.batches, args.size, args.clients, args.length)
    ceiling = found["ceiling"]
    print(
        f"\nBulk starts ({os.cpu_count()} cores), {args.batches} batches of {args.size} runs "
        f"of a {args.length}-step chain, {args.clients} in flight, server {args.url}"
    )
    for name, label in (
        ("service", "service (start_many)"),
        ("rest", "REST executions:batch"),
        ("graphql", "GraphQL startExecutions"),
    ):
        share = f", {found[name] / ceiling:.0%} of the ceiling" if ceiling else ""
        print(f"    {label:24} {found[name]:8.0f} runs/s{share} (goal 20,000)")
        cpu = found[f"{name}_cpu"]
        print(
            f"    {'':24} CPU per run: API {cpu['api']:.1f} µs, PostgreSQL "
            f"{cpu['postgres']:.1f} µs, client {cpu['client']:.1f} µs"
        )
    if ceiling:
        print(f"    ceiling {ceiling:.0f} runs/s: pgbench's bare INSERT of {args.size} rows per "
              f"transaction wrote {found['bare_rows']:.0f} rows/s; a start writes "
              f"{found['rows_per_run']:.1f} rows per run (run, steps, events, job; "
              "an audit entry per batch)")  # fmt: skip


if __name__ == "__main__":
    main()
