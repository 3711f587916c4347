"""Database failover under load: a PostgreSQL primary with a synchronous streaming standby
(made by the test from the machine's server binaries), a real `flowsync serve` and a real
`flowsync worker` given both servers in one URL with target_session_attrs=read-write, and a
client that starts runs at a steady rate (each with an idempotency key, retried until
acknowledged) while a websocket subscriber follows them. The primary is killed (SIGKILL
of all its processes) and the standby promoted; no FlowSync process is restarted.

It shows: every acknowledged run finishes COMPLETED; each idempotency key made exactly one
run (a start that failed visibly but had committed is the run its retry returned); each
step's completion is recorded once; the subscriber saw every run end; and it prints how
long starting a run was out of service (first failed start to the first that succeeded
after it). Where the machine has no PostgreSQL server binaries, it skips saying so."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from flowsync.config import Settings, to_asyncpg_dsn
from flowsync.db.migrate import upgrade
from flowsync.db.preflight import check_schema
from flowsync.errors import ConfigurationError
from flowsync.services.container import build_services
from flowsync.services.principal import Principal
from tests.graphql.conftest import free_port
from tests.support.graphs import chain
from tests.support.processes import Process, flowsync_env
from tests.support.replication import ReplicatedPostgres, Unavailable

pytestmark = [pytest.mark.failover, pytest.mark.slow]

# The load: a run started every INTERVAL seconds, RUNS in all; the primary is killed once
# KILL_AFTER of them are acknowledged, and the standby promoted PROMOTE_AFTER seconds later
# (what an operator or a failover manager takes to decide).
RUNS = 50
INTERVAL = 0.1
KILL_AFTER = 15
PROMOTE_AFTER = 1.0
STEPS = 3
# Short leases, as in the other process tests, so a step lost with the primary comes
# back within seconds; a small sleep in each step keeps steps in flight at the kill.
SETTINGS: dict[str, Any] = {
    "lease_seconds": 2,
    "heartbeat_seconds": 0.5,
    "reclaim_seconds": 0.5,
    "poll_seconds": 0.5,
    "subscription_poll_seconds": 0.5,
    "extra_handlers": "transform=tests.support.handlers:SlowTransform",
    "rate_limit_per_ip": "100000/minute",
    "rate_limit_per_principal": "100000/minute",
    "shutdown_grace_seconds": 2,
}
EVENTS = """subscription($wid: ID!) {
  executionEvents(workflowId: $wid) { executionId kind status sequence } }"""
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


@pytest.fixture
def servers() -> Iterator[ReplicatedPostgres]:
    try:
        pair = ReplicatedPostgres()
    except Unavailable as exc:
        pytest.skip(f"no PostgreSQL server binaries to make a primary and standby: {exc}")
    try:
        pair.start()
        pair.psql(pair.primary_port, "CREATE DATABASE flowsync")
        yield pair
    finally:
        pair.close()


@dataclass
class Subscriber:
    """Follows executionEvents of one workflow over graphql-transport-ws; when the socket
    closes it connects and subscribes again (the feed's snapshot is the resync)."""

    port: int
    key: str
    workflow_id: str
    ended: dict[str, str] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0

    async def run(self) -> None:
        for _attempt in range(200):  # bounded: the test lasts about a minute
            with contextlib.suppress(OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                await self._follow()
            self.reconnects += 1
            await asyncio.sleep(0.2)

    async def _follow(self) -> None:
        async with websockets.connect(
            f"ws://127.0.0.1:{self.port}/graphql",
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
            open_timeout=5,
        ) as ws:
            await ws.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"Authorization": f"Bearer {self.key}"}}
                )
            )
            async with asyncio.timeout(10):
                assert json.loads(await ws.recv())["type"] == "connection_ack"
            payload = {"query": EVENTS, "variables": {"wid": self.workflow_id}}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] != "next":
                    self.seen[f"message {message['type']}"] += 1
                    if message["type"] in ("error", "complete"):
                        return
                    continue
                if message["payload"].get("errors"):
                    self.seen["errors"] += 1
                    return
                event = message["payload"]["data"]["executionEvents"]
                self.seen[event["kind"]] += 1
                if event["status"] in TERMINAL and event["kind"] != "step.completed":
                    self.ended[event["executionId"]] = event["status"]


@dataclass
class Load:
    """Starts RUNS runs, one every INTERVAL seconds, each with its own idempotency key
    and retried until acknowledged; notes when starting failed and when it worked."""

    http: httpx.AsyncClient
    workflow_id: str
    acknowledged: dict[str, str] = field(default_factory=dict)  # key → execution id
    failures: list[tuple[float, str]] = field(default_factory=list)
    successes: list[float] = field(default_factory=list)
    retried_keys: set[str] = field(default_factory=set)

    async def start(self, key: str, n: int) -> None:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                reply = await self.http.post(
                    "/api/executions",
                    json={"workflowId": self.workflow_id, "input": {"n": n, "sleep": 0.1}},
                    headers={"Idempotency-Key": key},
                    timeout=10,
                )
            except httpx.TransportError as exc:
                why = f"{type(exc).__name__}: {exc}"
            else:
                if reply.status_code in (200, 201):
                    self.acknowledged[key] = reply.json()["id"]
                    self.successes.append(time.monotonic())
                    return
                # Visible failure: an error status with an error body, never a 2xx.
                assert reply.status_code >= 500 or reply.status_code == 429, reply.text
                why = f"{reply.status_code} {reply.text[:200]}"
            self.failures.append((time.monotonic(), why))
            self.retried_keys.add(key)
            await asyncio.sleep(0.1)
        raise AssertionError(f"run {key} was never acknowledged: {self.failures[-3:]}")


async def _ready(proc: Process, port: int) -> None:
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.proc.poll() is None, proc.output()
            with contextlib.suppress(httpx.TransportError):
                reply = await client.get(f"http://127.0.0.1:{port}/api/ready", timeout=5)
                if reply.status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the API was not ready within 60 s:\n{proc.output()}")


async def _api_key(url: str) -> str:
    await asyncio.to_thread(upgrade, url)
    services = await build_services(Settings(_env_file=None, database_url=url), url)
    try:
        owner = await services.api_keys.ensure_owner(f"test:{uuid.uuid4().hex}", "failover")
        return (await services.api_keys.create(Principal(owner, "test"), "failover")).secret
    finally:
        await services.close()


async def _promote(servers: ReplicatedPostgres, delay: float) -> float:
    """Promote the standby after `delay` seconds; when it accepts writes."""
    await asyncio.sleep(delay)
    await asyncio.to_thread(servers.promote_standby)
    return time.monotonic()


@contextlib.asynccontextmanager
async def _running(task: asyncio.Task[Any]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_primary_killed_standby_promoted_every_run_finishes_once(
    servers: ReplicatedPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = servers.url()
    # A standby given as the only host is refused in one line; both hosts are not.
    with pytest.raises(ConfigurationError, match="is a standby"):
        standby = servers.standby_url()
        await asyncio.to_thread(
            check_schema, Settings(_env_file=None, database_url=standby), standby
        )
    key = await _api_key(url)
    await asyncio.to_thread(check_schema, Settings(_env_file=None, database_url=url), url)

    port = free_port()
    env = flowsync_env(url, **SETTINGS)
    api = Process(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    worker = Process(["worker", "--concurrency", "8"], env, tmp_path / "worker.log")
    promotion: asyncio.Task[float] | None = None
    try:
        await _ready(api, port)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ) as http:
            created = await http.post(
                "/api/workflows", json={"name": "failover", "definition": chain(STEPS)}
            )
            assert created.status_code == 201, created.text
            wid = created.json()["id"]
            subscriber = Subscriber(port, key, wid)
            load = Load(http, wid)
            async with _running(asyncio.create_task(subscriber.run())):
                await asyncio.sleep(0.5)  # subscribed before the first run
                killed_at = 0.0
                for n in range(RUNS):
                    tick = time.monotonic()
                    if n == KILL_AFTER:
                        servers.kill_primary()
                        killed_at = time.monotonic()
                        promotion = asyncio.create_task(_promote(servers, PROMOTE_AFTER))
                    await load.start(f"run-{n}", n)
                    await asyncio.sleep(max(0.0, INTERVAL - (time.monotonic() - tick)))
                assert promotion is not None
                promoted_at = await promotion

                conn = await asyncpg.connect(to_asyncpg_dsn(url))
                try:
                    ids = list(load.acknowledged.values())
                    loaded_at = settled_at = time.monotonic()
                    deadline = time.monotonic() + 40
                    while time.monotonic() < deadline:
                        done = await conn.fetchval(
                            "SELECT count(*) FROM executions WHERE id = ANY($1::uuid[])"
                            " AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')",
                            ids,
                        )
                        if done == len(ids) and len(subscriber.ended) >= len(ids):
                            settled_at = time.monotonic()
                            break
                        await asyncio.sleep(0.2)
                    statuses = Counter(
                        r["status"]
                        for r in await conn.fetch(
                            "SELECT status FROM executions WHERE workflow_id = $1::uuid", wid
                        )
                    )
                    completions = await conn.fetch(
                        "SELECT execution_id, node_id, count(*) AS n FROM execution_events"
                        " WHERE execution_id = ANY($1::uuid[]) AND kind = 'step.completed'"
                        " GROUP BY execution_id, node_id",
                        ids,
                    )
                finally:
                    await conn.close()
    except BaseException:
        print(api.output()[-6000:])
        print(worker.output()[-6000:])
        raise
    finally:
        if promotion is not None and not promotion.done():
            promotion.cancel()
        api.close()
        worker.close()

    outage_start = min((t for t, _ in load.failures), default=None)
    after = [t for t in load.successes if outage_start is not None and t > outage_start]
    # The figure goes to the terminal whether or not output is captured.
    with capsys.disabled():
        print(
            f"\nfailover: primary killed at +0.00 s, standby promoted at "
            f"+{promoted_at - killed_at:.2f} s; starting runs failed from "
            f"+{(outage_start or killed_at) - killed_at:.2f} s to "
            f"+{(after[0] if after else killed_at) - killed_at:.2f} s: "
            f"{(after[0] - outage_start) if after and outage_start else 0:.2f} s without "
            f"service ({len(load.failures)} failed attempts over {len(load.retried_keys)} runs); "
            f"the last of {RUNS} runs acknowledged at +{loaded_at - killed_at:.2f} s, all "
            f"finished and seen ended by the subscriber at +{settled_at - killed_at:.2f} s; "
            f"subscriber reconnects: {subscriber.reconnects}; first errors: "
            f"{sorted({why[:80] for _, why in load.failures})[:4]}"
        )
    # Every run was acknowledged once per key and exists once: a start that answered
    # an error after committing is the run its retry was given, not a second one.
    assert len(load.acknowledged) == RUNS
    assert len(set(load.acknowledged.values())) == RUNS
    assert sum(statuses.values()) == RUNS, statuses
    assert statuses == {"COMPLETED": RUNS}, statuses
    # Each step's completion recorded once: the chain's transforms and its end.
    assert len(completions) == RUNS * (STEPS + 2), len(completions)
    assert all(r["n"] == 1 for r in completions), [dict(r) for r in completions if r["n"] > 1]
    # The subscriber, resynced after the outage, saw every run end, completed.
    assert set(subscriber.ended) == set(load.acknowledged.values()), subscriber.seen
    assert set(subscriber.ended.values()) == {"COMPLETED"}
    # The outage happened and ended (the test would prove nothing otherwise).
    assert load.failures and after
