"""Bursts of starts over HTTP against an API process with a small pool: REST, GraphQL and
webhook deliveries of a workflow version never loaded all complete (no start waits on
the pool while holding a connection), and webhook deliveries, signed or not, are
admitted by the exact backpressure rule (README, Backpressure): with one job per start,
at most FLOWSYNC_MAX_QUEUE_DEPTH + 1 get in, the others answer 503 with Retry-After."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import httpx
import pytest

from tests.rest.server import Owner, Server, serve
from tests.support.target import action

BURST = 40
BOUND = 30.0  # a deadlock test: generous, never a speed bound
DEFINITION = action("https://example.invalid/")  # one job per start; no worker runs

START = """mutation($w: ID!, $input: JSON) { startExecution(workflowId: $w, input: $input) {
  __typename ... on StartExecutionPayload { created execution { id } } } }"""


async def workflow(me: Owner) -> str:
    made = await me.http.post("/api/workflows", json={"name": "cold", "definition": DEFINITION})
    assert made.status_code == 201, made.text
    wid: str = made.json()["id"]
    return wid


async def hook(me: Owner, signed: bool) -> tuple[str, str]:
    """A webhook trigger of a new workflow: (ingress path, secret)."""
    config = {"requireSignature": signed}
    body = {"workflowId": await workflow(me), "type": "WEBHOOK", "config": config}
    made = await me.http.post("/api/triggers", json=body)
    assert made.status_code == 201, made.text
    return made.json()["webhookUrl"], made.json()["secret"]


async def deliveries(server: Server, url: str, secret: str, signed: bool) -> list[httpx.Response]:
    """BURST deliveries at once, each with a signature of its own when `signed`."""
    client = server.client()
    now = int(time.time())

    async def one(i: int) -> httpx.Response:
        body = f'{{"i": {i}}}'.encode()
        headers = {"content-type": "application/json"}
        if signed:
            message = f"{now - i}.".encode() + body
            digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
            headers["x-flowsync-signature"] = f"t={now - i},v1={digest}"
        return await client.post(url, content=body, headers=headers)

    return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(BURST))), BOUND)


async def executions(server: Server) -> int:
    count: int = await server.services.pool.fetchval("SELECT count(*) FROM executions")
    return count


async def test_bursts_of_starts_over_rest_and_graphql_complete(db_url: str) -> None:
    async with serve(db_url, pool_size=2, max_overflow=0) as server:
        me = await server.owner()
        rest, graphql = await workflow(me), await workflow(me)

        async def over_rest(i: int) -> int:
            reply = await me.http.post("/api/executions", json={"workflowId": rest, "input": {}})
            return reply.status_code

        async def over_graphql(i: int) -> str:
            reply = await me.http.post(
                "/graphql", json={"query": START, "variables": {"w": graphql, "input": {}}}
            )
            typename: str = reply.json()["data"]["startExecution"]["__typename"]
            return typename

        replies = await asyncio.wait_for(
            asyncio.gather(
                *(over_rest(i) for i in range(BURST)), *(over_graphql(i) for i in range(BURST))
            ),
            BOUND,
        )
        assert replies == [201] * BURST + ["StartExecutionPayload"] * BURST
        assert await executions(server) == 2 * BURST


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
async def test_a_burst_of_webhook_deliveries_completes(db_url: str, signed: bool) -> None:
    async with serve(db_url, pool_size=2, max_overflow=0) as server:
        url, secret = await hook(await server.owner(), signed)
        replies = await deliveries(server, url, secret, signed)
        assert [r.status_code for r in replies] == [202] * BURST, [r.text for r in replies]
        assert await executions(server) == BURST


LIMIT = 2


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
async def test_webhook_deliveries_are_admitted_by_the_exact_limit(
    db_url: str, signed: bool
) -> None:
    async with serve(db_url, max_queue_depth=LIMIT) as server:
        url, secret = await hook(await server.owner(), signed)
        replies = await deliveries(server, url, secret, signed)
        admitted = [r for r in replies if r.status_code == 202]
        refused = [r for r in replies if r.status_code != 202]
        # Each admitted start found at most LIMIT jobs due before it: LIMIT + 1 got in.
        assert len(admitted) == LIMIT + 1, [r.status_code for r in replies]
        for reply in refused:
            assert reply.status_code == 503, reply.text
            assert int(reply.headers["retry-after"]) >= 1
        assert await executions(server) == LIMIT + 1
        due = "SELECT count(*) FROM jobs WHERE lease_token IS NULL AND run_at <= now()"
        assert await server.services.pool.fetchval(due) == LIMIT + 1
