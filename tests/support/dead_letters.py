"""Executions that fail for good, leaving a dead letter each: an action whose URL the
default network policy refuses (loopback), with one attempt, run by a real worker."""

from __future__ import annotations

import asyncio
import uuid

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.rest.server import worker
from tests.support.target import action

REFUSED = action("http://127.0.0.1:9/refused", retry={"maxAttempts": 1})


async def failed_runs(services: Services, me: Principal, count: int) -> list[uuid.UUID]:
    """`count` executions of one workflow, each FAILED with one dead letter; oldest first."""
    wf = await services.workflows.create(me, "refused", None, REFUSED)
    ids = [(await services.executions.start(me, wf.id)).execution.id for _ in range(count)]
    async with worker(services):
        for _ in range(300):
            runs = await services.executions.get_many(me, ids)
            if all(r.status == "FAILED" for r in runs.values()):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the runs did not fail")
    return ids
