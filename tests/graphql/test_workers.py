"""Worker processes and their heartbeats through GraphQL: a worker appears when it
starts, reports its steps in flight on each heartbeat, and leaves on a clean exit; a
worker that stopped heartbeating is listed dead for ten minutes. Every authenticated
caller sees the same list; nobody unauthenticated does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from flowsync.worker.registry import default_registry
from flowsync.worker.runner import Worker
from tests.graphql.conftest import Api, op
from tests.support.graphs import chain
from tests.support.handlers import SlowTransform

WORKERS = """{ workers { id hostname pid concurrency running heartbeatSeconds startedAt
  lastHeartbeatAt alive } }"""


@contextlib.asynccontextmanager
async def quick_worker(api: Api) -> AsyncIterator[Worker]:
    """An in-process worker that heartbeats every 0.2 s and runs slow transforms."""
    registry = default_registry()
    registry.register("transform", SlowTransform())
    worker = Worker(
        api.services.url, api.services.pool, registry, concurrency=3, poll_seconds=0.1,
        heartbeat_seconds=0.2, grace_seconds=2,
    )  # fmt: skip
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 20)


async def until(
    session: Any, check: Callable[[list[dict[str, Any]]], bool], what: str
) -> list[dict[str, Any]]:
    for _ in range(200):
        found: list[dict[str, Any]] = (await session.execute(op(WORKERS)))["workers"]
        if check(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"the workers never showed {what}: {found}")


async def test_a_worker_joins_heartbeats_its_steps_in_flight_and_leaves(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    wid = (await api.services.workflows.create(a.principal, "slow", None, chain(1))).id
    async with api.http(a.key) as s:
        assert (await s.execute(op(WORKERS)))["workers"] == []
        async with quick_worker(api) as worker:
            [me] = await until(s, lambda w: len(w) == 1, "the worker")
            assert me["id"] == worker.worker_id and me["alive"] is True
            assert (me["hostname"], me["pid"]) == (socket.gethostname(), os.getpid())
            assert (me["concurrency"], me["heartbeatSeconds"], me["running"]) == (3, 0.2, 0)
            await api.services.executions.start(a.principal, wid, {"n": 1, "sleep": 2})
            busy = await until(s, lambda w: w[0]["running"] == 1, "a step in flight")
            assert busy[0]["lastHeartbeatAt"] > me["lastHeartbeatAt"]
            assert busy[0]["startedAt"] == me["startedAt"]
            # Workers belong to no tenant: another owner sees the same process.
            async with api.http(b.key) as other:
                theirs = (await other.execute(op(WORKERS)))["workers"]
                assert [w["id"] for w in theirs] == [worker.worker_id]
            await until(s, lambda w: w[0]["running"] == 0, "the step done")
        assert (await s.execute(op(WORKERS)))["workers"] == []  # a clean exit leaves


async def test_a_silent_worker_is_listed_dead_for_ten_minutes(api: Api) -> None:
    a = await api.owner()
    await api.services.pool.execute(
        """INSERT INTO workers (id, hostname, pid, concurrency, running, heartbeat_ms,
                                started_at, last_heartbeat_at)
           VALUES ('fresh', 'h1', 1, 4, 2, 1000, now(), now()),
                  ('silent', 'h2', 2, 4, 1, 1000, now() - interval '1 hour',
                   now() - interval '4 seconds'),
                  ('slow-beat', 'h3', 3, 4, 0, 2000, now(), now() - interval '5 seconds'),
                  ('gone', 'h4', 4, 4, 1, 1000, now() - interval '2 hours',
                   now() - interval '11 minutes')"""
    )
    async with api.http(a.key) as s:
        found = {w["id"]: w for w in (await s.execute(op(WORKERS)))["workers"]}
    assert {k: w["alive"] for k, w in found.items()} == {
        "fresh": True, "silent": False, "slow-beat": True,
    }  # fmt: skip
    assert (found["silent"]["hostname"], found["silent"]["running"]) == ("h2", 1)
    # Without a credential: nothing.
    async with httpx.AsyncClient() as anonymous:
        reply = await anonymous.post(api.http_url, json={"query": WORKERS})
    assert reply.json()["errors"][0]["extensions"]["code"] == "unauthenticated"
    # A worker that starts prunes what is listed no longer.
    async with quick_worker(api):
        pass
    left = await api.services.pool.fetch("SELECT id FROM workers ORDER BY id")
    assert [r["id"] for r in left] == ["fresh", "silent", "slow-beat"]


async def test_a_worker_works_on_when_the_workers_table_cannot_be_written(
    api: Api, caplog: Any
) -> None:
    a = await api.owner()
    await api.services.pool.execute("ALTER TABLE workers RENAME TO workers_away")
    wid = (await api.services.workflows.create(a.principal, "w", None, chain(2))).id
    eid = (
        await api.services.executions.start(a.principal, wid, {"n": 1, "sleep": 0.5})
    ).execution.id
    async with quick_worker(api):
        for _ in range(200):
            run = await api.services.executions.get(a.principal, eid)
            if run.status == "COMPLETED":
                break
            await asyncio.sleep(0.05)
    assert run.status == "COMPLETED" and run.output == {"n": 3}
    warnings = [r.getMessage() for r in caplog.records if "workers table" in r.getMessage()]
    assert any("(join)" in w for w in warnings) and any("(heartbeat)" in w for w in warnings)
