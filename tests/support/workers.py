"""Real worker processes for acceptance tests, and waiting on what they do."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.conftest import new_subject
from tests.support.processes import Process, flowsync_env

# Short leases so that a dead worker's jobs come back within seconds.
FAST = {
    "lease_seconds": 2,
    "heartbeat_seconds": 0.5,
    "reclaim_seconds": 0.5,
    "poll_seconds": 0.5,
    "extra_handlers": "transform=tests.support.handlers:SlowTransform",
}


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(concurrency: int = 8, **settings: Any) -> Process:
        env = flowsync_env(db_url, **{**FAST, **settings})
        proc = Process(
            ["worker", "--concurrency", str(concurrency)],
            env,
            tmp_path / f"worker-{len(started)}.log",
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()


@pytest.fixture
async def me(services: Services) -> AsyncIterator[Principal]:
    yield Principal(await services.api_keys.ensure_owner(new_subject()), "test")


async def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def finished(services: Services, me: Principal, eid: uuid.UUID, timeout: float) -> Any:
    async def check() -> Any:
        execution = await services.executions.get(me, eid)
        return execution if execution.status not in ("PENDING", "RUNNING") else None

    try:
        return await wait_until(check, timeout, f"execution {eid} to finish")
    except AssertionError as exc:
        # Say where it stands: the jobs and the unfinished steps.
        jobs = await services.pool.fetch(
            "SELECT j.id, s.node_id, j.attempts, j.lease_token IS NOT NULL AS leased, "
            "j.lease_expires_at - now() AS lease_left, j.run_at - now() AS due_in, j.worker_id "
            "FROM jobs j JOIN step_executions s ON s.id = j.step_id WHERE j.execution_id = $1",
            eid,
        )
        steps = await services.pool.fetch(
            "SELECT node_id, status, attempt FROM step_executions "
            "WHERE execution_id = $1 AND status NOT IN ('COMPLETED', 'SKIPPED')",
            eid,
        )
        raise AssertionError(
            f"{exc}; jobs: {[dict(j) for j in jobs]}; open steps: {[dict(s) for s in steps]}"
        ) from None
