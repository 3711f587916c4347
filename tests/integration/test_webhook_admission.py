"""A signed webhook delivery is admitted by the rule every start follows (README,
Backpressure): refused by a count older than itself, it is counted again before it is
refused. (No worker runs: every job a start queues stays due until the test deletes it.)"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

import pytest

from flowsync.errors import Backpressure
from flowsync.services.executions import ExecutionService
from flowsync.services.webhooks import WebhookService
from tests.support.env import Env
from tests.support.target import action

LIMIT = 2


async def test_a_signed_delivery_refused_by_an_old_count_is_counted_again(env: Env) -> None:
    # Counts that stay fresh for a minute: only the count a refusal takes can see that
    # the queue drained since.
    executions = ExecutionService(
        env.services.sessions,
        env.services.pool,
        env.services.executions._orchestrator,
        max_queue_depth=LIMIT,
        depth_ttl=60.0,
    )
    webhooks = WebhookService(env.services.pool, executions, max_body_bytes=1 << 20)
    wf = await env.services.workflows.create(env.me, "hook", None, action("https://x.invalid/"))
    made = await env.services.triggers.create(env.me, wf.id, "WEBHOOK", {})
    secret = made.secret or ""
    stamps = iter(range(int(time.time()), 0, -1))

    async def deliver(key: str | None = None, created: bool = True) -> uuid.UUID:
        body, stamp = b"{}", next(stamps)
        digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        headers = {
            "content-type": "application/json",
            "x-flowsync-signature": f"t={stamp},v1={digest.hexdigest()}",
        }
        if key is not None:
            headers["idempotency-key"] = key
        result = await webhooks.receive(made.trigger.id, body, headers, "")
        assert (result.status, result.created) == (202, created), result
        return result.execution_id

    first = await deliver("order-1")  # counted once, before the first: none due
    for _ in range(LIMIT):
        await deliver()
    # As if workers took them all: by the count, which still holds, the LIMIT + 1 jobs
    # queued since it are due before the next delivery; a new count finds none.
    await env.services.pool.execute("DELETE FROM jobs")
    await deliver()
    assert await env.services.pool.fetchval("SELECT count(*) FROM executions") == LIMIT + 2
    # The limit holds all the same: once LIMIT + 1 are due again, a new count refuses.
    with pytest.raises(Backpressure):
        for _ in range(LIMIT + 1):
            await deliver()
    # A redelivery of the first, signed again, still returns its run.
    assert await deliver("order-1", created=False) == first
