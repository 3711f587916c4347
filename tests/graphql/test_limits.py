"""Limits, each enforced with a clear error: query depth, aliases, tokens, request body
size, per-IP and per-principal rate limits (429 with Retry-After), introspection and
GraphiQL switches. Each refusal of a limit carries its `extensions.code`, over HTTP and
both websocket protocols (operations per socket included)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from gql.transport.exceptions import TransportError, TransportServerError
from websockets.typing import Subprotocol

from tests.graphql.conftest import (
    LEGACY_WS,
    TRANSPORT_WS,
    Api,
    close_code,
    handshake_status,
    op,
    serve,
)


async def post(api: Api, key: str | None, body: Any, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient() as client:
        if isinstance(body, bytes):
            return await client.post(api.http_url, content=body, headers={**headers, **kw})
        return await client.post(api.http_url, json=body, headers=headers)


async def test_depth_alias_and_token_limits(db_url: str) -> None:
    async with serve(db_url, max_query_depth=5, max_query_aliases=3, max_query_tokens=120) as api:
        a = await api.owner()
        ok = await post(
            api, a.key, {"query": "{ executions { edges { node { steps { status } } } } }"}
        )
        assert ok.status_code == 200 and "errors" not in ok.json()
        deep = (
            "{ executions { edges { node { workflow {"
            " executions { edges { node { id } } } } } } } }"
        )
        for _ in range(2):  # a refused document is refused again (nothing cached)
            reply = await post(api, a.key, {"query": deep})
            assert "exceeds maximum operation depth of 5" in reply.json()["errors"][0]["message"]
        ok = await post(
            api, a.key, {"query": "{ executions { edges { node { steps { status } } } } }"}
        )
        assert ok.status_code == 200 and "errors" not in ok.json()  # validated once, kept
        aliases = "{ " + " ".join(f"h{i}: health {{ status }}" for i in range(4)) + " }"
        reply = await post(api, a.key, {"query": aliases})
        assert "4 aliases found. Allowed: 3" in reply.json()["errors"][0]["message"]
        tokens = "{ health { " + " ".join(["status"] * 150) + " } }"
        reply = await post(api, a.key, {"query": tokens})
        assert "tokens" in reply.json()["errors"][0]["message"]
        assert all(r.status_code < 500 for r in (reply,))


async def test_query_cost_limit_counts_pages_nested_lists_and_variables(db_url: str) -> None:
    async with serve(db_url, max_query_cost=5000) as api:
        a = await api.owner()
        fine = "{ executions(first: 50) { edges { node { steps { status } } } } }"
        assert "errors" not in (await post(api, a.key, {"query": fine})).json()
        nested = """query($n: Int) { workflows(first: 200) { edges { node {
            executions(first: $n) { edges { node { id } } } } } } }"""
        reply = await post(api, a.key, {"query": nested, "variables": {"n": 50}})
        error = reply.json()["errors"][0]
        assert error["extensions"] == {"code": "query_too_costly", "cost": 200 * (2 + 50 * 2)}
        assert "the limit is 5000" in error["message"] and "first" in error["message"]
        small = await post(
            api, a.key, {"query": nested.replace("200", "10"), "variables": {"n": 5}}
        )
        assert "errors" not in small.json(), small.text
        # The same document, validated once and remembered as valid, is still refused
        # when its variables make it too costly: the cost is checked on every request.
        again = await post(
            api, a.key, {"query": nested.replace("200", "10"), "variables": {"n": 1000}}
        )
        assert again.json()["errors"][0]["extensions"]["code"] == "query_too_costly"
        # Fragments count as if written out.
        spread = """query { executions(first: 200) { edges { node { ...f } } } }
                    fragment f on Execution { timeline { sequence } steps { status } }"""
        reply = await post(api, a.key, {"query": spread})
        assert reply.json()["errors"][0]["extensions"]["code"] == "query_too_costly"


async def test_request_bodies_over_the_limit_answer_413(db_url: str) -> None:
    async with serve(db_url, max_body_bytes=2000) as api:
        a = await api.owner()
        big = {"query": "{ health { status } }", "variables": {"pad": "x" * 3000}}
        reply = await post(api, a.key, big)
        assert reply.status_code == 413
        assert reply.json()["errors"][0]["extensions"]["code"] == "payload_too_large"
        assert "2000 bytes" in reply.json()["errors"][0]["message"]

        async def chunks() -> Any:  # no Content-Length: counted while reading
            for _ in range(10):
                yield b" " * 500

        async with httpx.AsyncClient() as client:
            reply = await client.post(
                api.http_url, content=chunks(), headers={"Authorization": f"Bearer {a.key}"}
            )
        assert reply.status_code == 413
        small = await post(api, a.key, {"query": "{ health { status } }"})
        assert small.status_code == 200


async def test_per_ip_rate_limit_answers_429_with_retry_after(db_url: str) -> None:
    async with serve(db_url, rate_limit_per_ip="5/minute") as api:
        a = await api.owner()
        replies = [await post(api, a.key, {"query": "{ health { status } }"}) for _ in range(6)]
        assert [r.status_code for r in replies] == [200] * 5 + [429]
        refused = replies[-1]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        error = refused.json()["errors"][0]
        assert error["extensions"]["code"] == "rate_limited"
        assert "Too many requests" in error["message"]
        # Unauthenticated requests count too, and websockets are refused at the handshake.
        assert (await post(api, None, {"query": "{ health { status } }"})).status_code == 429
        with pytest.raises(TransportError) as caught:
            async with api.ws(a.key, TRANSPORT_WS) as session:
                await session.execute(op("{ health { status } }"))
        refused = handshake_status(caught.value)
        assert refused is not None and refused[0] == 429
        assert refused[1]["retry-after"].isdigit()


async def test_per_principal_rate_limit_is_per_owner(db_url: str) -> None:
    async with serve(db_url, rate_limit_per_principal="3/minute") as api:
        a, b = await api.owner(), await api.owner()
        codes = [
            (await post(api, a.key, {"query": "{ health { status } }"})).status_code
            for _ in range(4)
        ]
        assert codes == [200, 200, 200, 429]
        assert (await post(api, b.key, {"query": "{ health { status } }"})).status_code == 200
        refused = await post(api, a.key, {"query": "{ health { status } }"})
        assert refused.headers["retry-after"].isdigit()
        # A websocket of an owner over its limit is refused at connection_init.
        with pytest.raises(TransportError) as caught:
            async with api.ws(a.key, TRANSPORT_WS) as session:
                await session.execute(op("{ health { status } }"))
        assert close_code(caught.value) == 4403
        with pytest.raises(TransportServerError, match=r"rate_limited.*retryAfter"):
            async with api.ws(a.key, LEGACY_WS) as session:
                await session.execute(op("subscription { executionEvents { kind } }"))


async def test_introspection_and_graphiql_are_switchable(db_url: str) -> None:
    async with serve(db_url) as api:  # the test default: both on, as in `flowsync dev`
        a = await api.owner()
        reply = await post(api, a.key, {"query": "{ __schema { queryType { name } } }"})
        assert reply.json()["data"]["__schema"]["queryType"]["name"] == "Query"
        async with httpx.AsyncClient() as client:
            page = await client.get(api.http_url, headers={"Accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
    async with serve(db_url, introspection=False, graphiql=False) as api:
        a = await api.owner()
        reply = await post(api, a.key, {"query": "{ __schema { queryType { name } } }"})
        assert "introspection has been disabled" in reply.json()["errors"][0]["message"].lower()
        async with httpx.AsyncClient() as client:
            page = await client.get(api.http_url, headers={"Accept": "text/html"})
        assert page.status_code == 404


DEEP = "{ executions { edges { node { workflow { executions { edges { node { id } } } } } } } }"
ALIASED = "{ " + " ".join(f"h{i}: health {{ status }}" for i in range(4)) + " }"
LIVE = "subscription { queueStatsUpdated { __typename } }"
# As subscriptions, which both websocket protocols carry.
LIVE_DEEP = """subscription { executionEvents { execution { workflow {
    executions { edges { node { workflow { id } } } } } } } }"""
LIVE_ALIASED = (
    "subscription { queueStatsUpdated { a: __typename b: __typename c: __typename d: __typename } }"
)


async def test_depth_and_alias_refusals_carry_a_code_over_http(db_url: str) -> None:
    async with serve(db_url, max_query_depth=5, max_query_aliases=3) as api:
        a = await api.owner()
        for query, code in ((DEEP, "query_too_deep"), (ALIASED, "too_many_aliases")):
            [error] = (await post(api, a.key, {"query": query})).json()["errors"]
            assert error["extensions"] == {"code": code}, error


async def errors_of(ws: Any, ids: set[str]) -> dict[str, Any]:
    """The first error of each operation in `ids`, by id."""
    errors: dict[str, Any] = {}
    async with asyncio.timeout(10):
        while not ids <= errors.keys():
            message = json.loads(await ws.recv())
            if message["type"] == "error":
                payload = message["payload"]
                errors[message["id"]] = payload[0] if isinstance(payload, list) else payload
    return errors


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_limit_refusals_carry_a_code_over_websockets(db_url: str, protocol: str) -> None:
    async with serve(
        db_url, max_query_depth=5, max_query_aliases=3, max_subscriptions_per_connection=2
    ) as api:
        a = await api.owner()
        kind = "subscribe" if protocol == TRANSPORT_WS else "start"

        async def send(oid: str, query: str) -> None:
            await ws.send(json.dumps({"type": kind, "id": oid, "payload": {"query": query}}))

        async with websockets.connect(api.ws_url, subprotocols=[Subprotocol(protocol)]) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {a.key}"}}
            await ws.send(json.dumps(init))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            await send("deep", LIVE_DEEP)
            await send("aliased", LIVE_ALIASED)
            errors = await errors_of(ws, {"deep", "aliased"})
            assert errors["deep"]["extensions"] == {"code": "query_too_deep"}, errors
            assert errors["aliased"]["extensions"] == {"code": "too_many_aliases"}, errors
            await send("s1", LIVE)
            await send("s2", LIVE)
            await asyncio.sleep(0.5)  # both running
            await send("s3", LIVE)
            [error] = (await errors_of(ws, {"s3"})).values()
        assert error["extensions"] == {"code": "too_many_subscriptions"}, error
        assert "FLOWSYNC_MAX_SUBSCRIPTIONS_PER_CONNECTION" in error["message"]
