"""No start waits on the pool for a second connection while it holds one: a burst of many
more starts (and retries, redrives, webhook deliveries, promotions) than the pool has
connections, of a workflow version no cache has compiled yet, all complete. Each holds a
connection of a pool of two for its transaction; a step that asked the same pool for
another one (to read the definition, to count the queue) would wait for a connection
that only such waiters hold, for good.

The bound is generous: these are deadlock tests, not speed tests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from flowsync.config import Settings
from flowsync.services.container import Services, build_services
from flowsync.services.principal import Principal
from flowsync.services.workflows import WorkflowUpdate
from tests.conftest import new_subject
from tests.support.dead_letters import failed_runs
from tests.support.target import action

POOL = 2
BURST = 40
BOUND = 30.0


@pytest.fixture
async def small(db_url: str) -> AsyncIterator[Services]:
    """Services of an API process whose pools hold two connections each."""
    settings = Settings(  # type: ignore[call-arg]
        database_url=db_url, pool_size=POOL, max_overflow=0, _env_file=None
    )
    built = await build_services(settings, db_url)
    try:
        yield built
    finally:
        await built.close()


async def fresh(small: Services) -> Services:
    """Services over the same database with empty caches (another API process, or this
    one restarted): every workflow version must be loaded again."""
    settings = small.settings
    return await build_services(settings, small.url)


async def owner(services: Services) -> Principal:
    return Principal(await services.api_keys.ensure_owner(new_subject()), "test")


async def burst(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the calls at once; all must finish within the bound."""
    return await asyncio.wait_for(asyncio.gather(*(call() for call in calls)), BOUND)


async def test_a_burst_of_starts_of_a_version_never_loaded_completes(small: Services) -> None:
    me = await owner(small)
    wf = await small.workflows.create(me, "cold", None, action("https://example.invalid/"))
    started = await burst(
        [lambda i=i: small.executions.start(me, wf.id, {"i": i}) for i in range(BURST)]
    )
    assert all(s.created for s in started)
    count = await small.pool.fetchval("SELECT count(*) FROM executions")
    assert count == BURST


async def test_a_burst_of_starts_under_exact_backpressure_completes(db_url: str) -> None:
    # The admission count takes a connection of its own, outside any start.
    settings = Settings(  # type: ignore[call-arg]
        database_url=db_url, pool_size=POOL, max_overflow=0, max_queue_depth=5, _env_file=None
    )
    services = await build_services(settings, db_url)
    try:
        me = await owner(services)
        wf = await services.workflows.create(me, "cold", None, action("https://example.invalid/"))

        async def one(i: int) -> bool:
            try:
                await services.executions.start(me, wf.id, {"i": i})
            except Exception as exc:  # Backpressure
                assert type(exc).__name__ == "Backpressure", exc
                return False
            return True

        admitted = sum(await burst([lambda i=i: one(i) for i in range(BURST)]))
        assert admitted == 6  # at most 5 due before each admitted start
    finally:
        await services.close()


async def test_a_burst_of_retries_of_a_version_never_loaded_completes(small: Services) -> None:
    me = await owner(small)
    wf = await small.workflows.create(me, "cold", None, action("https://example.invalid/"))
    ids = [(await small.executions.start(me, wf.id)).execution.id for _ in range(BURST)]
    for eid in ids:
        await small.executions.cancel(me, eid)
    cold = await fresh(small)
    try:
        retried = await burst([lambda eid=eid: cold.executions.retry(me, eid) for eid in ids])
    finally:
        await cold.close()
    assert len({r.execution.id for r in retried}) == BURST


async def test_a_burst_of_redrives_of_a_version_never_loaded_completes(small: Services) -> None:
    me = await owner(small)
    ids = await failed_runs(small, me, 12)
    letters = (await small.dead_letters.list(me, limit=100)).items
    assert len(letters) == len(ids)
    cold = await fresh(small)
    try:
        await burst([lambda d=d: cold.dead_letters.redrive(me, d.id) for d in letters])
        statuses = await cold.pool.fetch("SELECT status FROM executions")
    finally:
        await cold.close()
    assert {r["status"] for r in statuses} == {"RUNNING"}


async def test_ending_runs_promotes_waiting_ones_of_a_version_never_loaded(
    small: Services,
) -> None:
    # A cancel that ends a run starts the ones waiting behind the workflow's limit in the
    # same transaction, and a raised limit starts them too: both compile the version.
    me = await owner(small)
    definition = action("https://example.invalid/")
    wfs = [
        await small.workflows.create(me, f"w{i}", None, definition, max_concurrency=1)
        for i in range(BURST // 4)
    ]
    running = [(await small.executions.start(me, wf.id)).execution.id for wf in wfs]
    for wf in wfs:
        for _ in range(2):
            await small.executions.start(me, wf.id)
    cold = await fresh(small)
    try:
        await burst([lambda eid=eid: cold.executions.cancel(me, eid) for eid in running])
        await burst(
            [
                lambda wf=wf: cold.workflows.update(me, wf.id, WorkflowUpdate(max_concurrency=5))
                for wf in wfs
            ]
        )
        pending = await cold.pool.fetchval(
            "SELECT count(*) FROM executions WHERE status = 'PENDING'"
        )
    finally:
        await cold.close()
    assert pending == 0


def _signature(secret: str, body: bytes, stamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


@pytest.mark.parametrize("signed", [False, True])
async def test_a_burst_of_webhook_deliveries_completes(small: Services, signed: bool) -> None:
    me = await owner(small)
    wf = await small.workflows.create(me, "cold", None, action("https://example.invalid/"))
    made = await small.triggers.create(me, wf.id, "WEBHOOK", {"requireSignature": signed})
    trigger, secret = made.trigger, made.secret or ""
    now = int(time.time())

    async def deliver(i: int) -> Any:
        body = f'{{"i": {i}}}'.encode()
        headers = {"content-type": "application/json"}
        if signed:
            headers["x-flowsync-signature"] = _signature(secret, body, now - i)
        return await small.webhooks.receive(trigger.id, body, headers, "")

    await burst([lambda i=i: deliver(i) for i in range(BURST)])
    count = await small.pool.fetchval("SELECT count(*) FROM executions")
    assert count == BURST
