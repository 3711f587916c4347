"""What an operation costs and what its caller has left, as clients see them: every
result's `extensions.cost` and `extensions.rateLimit`, and the `rateLimit` query field,
over real HTTP and a real websocket. The limits are per day: the `limits` library's
windows are aligned to the clock, and one crossed mid-test would change the counts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.graphql.conftest import Api, running_worker, serve
from tests.support.graphs import chain

RATE_LIMIT = "{ rateLimit { limit remaining used resetAt cost maxCost } }"
PAGE = "query($n: Int) { executions(first: $n) { edges { node { id } } } }"


async def post(api: Api, key: str | None, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient() as client:
        return await client.post(api.http_url, json=body, headers=headers)


def reset_at(value: str) -> datetime:
    assert value.endswith("+00:00"), value
    return datetime.fromisoformat(value)


async def test_every_http_result_reports_its_cost_and_the_callers_budget(db_url: str) -> None:
    async with serve(db_url, rate_limit_per_principal="40/day", max_query_cost=5000) as api:
        a = await api.owner()
        first = await post(api, a.key, {"query": PAGE, "variables": {"n": 7}})
        assert first.status_code == 200 and "errors" not in first.json(), first.text
        extensions = first.json()["extensions"]
        # 7 executions, each an edge and a node.
        assert extensions["cost"] == {"requested": 14, "limit": 5000}
        budget = extensions["rateLimit"]
        assert (budget["limit"], budget["remaining"], budget["used"]) == (40, 39, 1)
        now = datetime.now(UTC)
        assert now - timedelta(seconds=5) <= reset_at(budget["resetAt"])
        assert reset_at(budget["resetAt"]) <= now + timedelta(days=1, seconds=5)

        second = (await post(api, a.key, {"query": PAGE})).json()["extensions"]
        assert second["cost"] == {"requested": 100, "limit": 5000}  # `first` left out: 50
        assert (second["rateLimit"]["remaining"], second["rateLimit"]["used"]) == (38, 2)

        # Another owner has a budget of its own.
        b = await api.owner()
        other = (await post(api, b.key, {"query": PAGE})).json()["extensions"]
        assert other["rateLimit"]["remaining"] == 39

        # An operation refused for its cost reports it too, and was counted.
        # A variable left out costs its default. An operation refused for its cost
        # reports it too, and was counted.
        costly = """query($n: Int = 200) { workflows(first: 200) { edges { node {
            executions(first: $n) { edges { node { id } } } } } } }"""
        refused = (await post(api, a.key, {"query": costly})).json()
        assert refused["errors"][0]["extensions"]["code"] == "query_too_costly"
        assert refused["extensions"]["cost"] == {"requested": 200 * (2 + 200 * 2), "limit": 5000}
        assert refused["extensions"]["rateLimit"]["remaining"] == 37

        # A GET query reports the same.
        async with httpx.AsyncClient() as client:
            got = await client.get(
                api.http_url, params={"query": "{ health { status } }"},
                headers={"Authorization": f"Bearer {a.key}"},
            )  # fmt: skip
        assert got.json()["extensions"]["cost"] == {"requested": 1, "limit": 5000}
        assert got.json()["extensions"]["rateLimit"]["remaining"] == 36


async def test_the_rate_limit_field_answers_what_the_extensions_report(db_url: str) -> None:
    async with serve(db_url, rate_limit_per_principal="3/day") as api:
        a = await api.owner()
        reply = (await post(api, a.key, {"query": RATE_LIMIT})).json()
        field = reply["data"]["rateLimit"]
        reported = reply["extensions"]["rateLimit"]
        assert field == {
            "limit": 3, "remaining": 2, "used": 1, "resetAt": reported["resetAt"],
            "cost": 1, "maxCost": 50_000,
        }  # fmt: skip
        assert reply["extensions"]["rateLimit"] == {
            k: field[k] for k in ("limit", "remaining", "used", "resetAt")
        }
        # Its cost is the whole operation's, fragments and variables included, as the
        # cost limit counts it.
        query = """query($n: Int) { ...R executions(first: $n) { edges { node { id } } } }
                   fragment R on Query { rateLimit { cost remaining } }"""
        reply = (await post(api, a.key, {"query": query, "variables": {"n": 3}})).json()
        assert reply["data"]["rateLimit"] == {"cost": 1 + 3 * 2, "remaining": 1}
        assert reply["extensions"]["cost"]["requested"] == 7
        # Asking counts as any request does: the budget runs out, then 429.
        assert (await post(api, a.key, {"query": RATE_LIMIT})).json()["data"]["rateLimit"][
            "remaining"
        ] == 0
        over = await post(api, a.key, {"query": RATE_LIMIT})
        assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
        assert over.json()["errors"][0]["extensions"]["code"] == "rate_limited"


async def recv(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] not in ("ka", "ping", "pong"):
                return message


async def test_websocket_results_report_cost_and_budget_on_their_first_result(
    db_url: str,
) -> None:
    async with serve(db_url, rate_limit_per_principal="100/day") as api:
        a = await api.owner()
        wid = (await api.services.workflows.create(a.principal, "c", None, chain(2))).id
        eid = (await api.services.executions.start(a.principal, wid, {"n": 1})).execution.id
        subprotocol = Subprotocol("graphql-transport-ws")
        async with connect(api.ws_url, subprotocols=[subprotocol]) as ws:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {a.key}"}}
            await ws.send(json.dumps(init))
            assert (await recv(ws))["type"] == "connection_ack"  # counted: 99 left
            await ws.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": RATE_LIMIT}})
            )
            result = await recv(ws)
            assert result["type"] == "next", result
            payload = result["payload"]
            assert payload["data"]["rateLimit"]["remaining"] == 98
            assert payload["extensions"]["rateLimit"]["remaining"] == 98
            assert payload["extensions"]["cost"] == {"requested": 1, "limit": 50_000}
            assert (await recv(ws))["type"] == "complete"

            # A subscription: its first result (the snapshot) reports them, the events
            # after it do not repeat them.
            updated = "subscription($id: ID!) { executionUpdated(id: $id) { sequence kind } }"
            await ws.send(json.dumps({
                "id": "2", "type": "subscribe",
                "payload": {"query": updated, "variables": {"id": str(eid)}},
            }))  # fmt: skip
            snapshot = await recv(ws)
            assert snapshot["payload"]["data"]["executionUpdated"]["kind"] == "snapshot"
            assert snapshot["payload"]["extensions"]["rateLimit"]["remaining"] == 97
            assert snapshot["payload"]["extensions"]["cost"]["requested"] == 1
            async with running_worker(api):
                events = []
                while (message := await recv(ws))["type"] == "next":
                    events.append(message["payload"])
            assert message["type"] == "complete"
            assert events and all("extensions" not in e for e in events)
            assert events[-1]["data"]["executionUpdated"]["kind"] == "execution.completed"
