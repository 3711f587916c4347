"""An engine test environment: services, an owner, and an in-process worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from flowsync.worker.registry import HandlerRegistry, default_registry
from flowsync.worker.runner import Worker
from tests.conftest import new_subject


@dataclass
class Env:
    services: Services
    me: Principal
    worker: Worker | None = None

    async def create(self, definition: dict[str, Any], name: str = "wf") -> uuid.UUID:
        wf = await self.services.workflows.create(self.me, name, None, definition)
        return wf.id

    async def start(self, workflow_id: uuid.UUID, input: Any = None, **kw: Any) -> uuid.UUID:
        return (
            await self.services.executions.start(self.me, workflow_id, input, **kw)
        ).execution.id

    async def wait(self, execution_id: uuid.UUID, timeout: float = 15) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            execution = await self.services.executions.get(self.me, execution_id)
            if execution.status not in ("PENDING", "RUNNING"):
                return execution
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"execution still {execution.status} after {timeout}s")
            await asyncio.sleep(0.05)

    async def steps(self, execution_id: uuid.UUID) -> dict[str, Any]:
        rows = (await self.services.executions.steps(self.me, [execution_id]))[execution_id]
        return {s.node_id: s for s in rows}

    async def events(self, execution_id: uuid.UUID) -> list[Any]:
        return await self.services.executions.events(self.me, execution_id)


@pytest.fixture
async def env(services: Services) -> AsyncIterator[Env]:
    owner = await services.api_keys.ensure_owner(new_subject())
    yield Env(services, Principal(owner, "test"))


async def run_worker(env: Env, registry: HandlerRegistry | None = None) -> asyncio.Task[None]:
    """Start an in-process worker for the env (stop it with `env.worker.stop()`)."""
    worker = Worker(
        env.services.url, env.services.pool, registry or default_registry(),
        concurrency=8, poll_seconds=0.2, grace_seconds=2,
    )  # fmt: skip
    env.worker = worker
    return asyncio.create_task(worker.run())


@pytest.fixture
async def running(env: Env) -> AsyncIterator[Env]:
    """The env with a worker running in this process."""
    task = await run_worker(env)
    try:
        yield env
    finally:
        assert env.worker is not None
        env.worker.stop()
        await asyncio.wait_for(task, 30)
