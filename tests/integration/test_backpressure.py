"""Backpressure is exact for starts: concurrent starts against a limit, from one process
or several, never let more in than the limit allows (no worker runs, so every job a
start queues stays due)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowsync.errors import Backpressure
from flowsync.services.executions import ExecutionService
from tests.support.env import Env
from tests.support.target import action

LIMIT = 2


def service(env: Env) -> ExecutionService:
    """An execution service as another API process has one: its own counts."""
    return ExecutionService(
        env.services.sessions,
        env.services.pool,
        env.services.executions._orchestrator,
        max_queue_depth=LIMIT,
        depth_ttl=1.0,
    )


async def burst(env: Env, services: list[ExecutionService], definition: dict[str, Any]) -> int:
    """40 concurrent starts spread over `services`; how many were admitted (each refusal
    is a Backpressure)."""
    wid = await env.create(definition)
    # Compiled before the burst: a start that must load it takes a second connection
    # from the pool while it holds one (see the report on WorkflowCache).
    version = await env.services.pool.fetchval(
        "SELECT id FROM workflow_versions WHERE workflow_id = $1", wid
    )
    await env.services.executions._orchestrator.workflows.get(version)

    async def one(i: int) -> bool:
        try:
            await services[i % len(services)].start(env.me, wid, {"i": i})
        except Backpressure:
            return False
        return True

    admitted = sum(await asyncio.gather(*(one(i) for i in range(40))))
    assert await env.services.pool.fetchval("SELECT count(*) FROM executions") == admitted
    return admitted


@pytest.mark.parametrize("processes", [1, 3])
async def test_concurrent_starts_never_pass_the_limit_together(env: Env, processes: int) -> None:
    # A start is admitted while at most LIMIT jobs are due before it: with one job each,
    # exactly LIMIT + 1 get in, however many arrive at once and wherever.
    admitted = await burst(env, [service(env) for _ in range(processes)], action("https://x/"))
    assert admitted == LIMIT + 1
    due = "SELECT count(*) FROM jobs WHERE lease_token IS NULL AND run_at <= now()"
    assert await env.services.pool.fetchval(due) == LIMIT + 1


async def test_a_refusal_is_counted_again_once_the_queue_drained(env: Env) -> None:
    # The counts are a second old at most; a start refused by an old count that no
    # longer holds is admitted after a fresh one.
    svc = service(env)
    wid = await env.create(action("https://example.invalid/"))
    for i in range(LIMIT + 1):
        await svc.start(env.me, wid, {"i": i})
    with pytest.raises(Backpressure):
        await svc.start(env.me, wid, {})
    await env.services.pool.execute("DELETE FROM jobs")  # as if workers took them all
    await asyncio.sleep(1.1)
    await svc.start(env.me, wid, {})
