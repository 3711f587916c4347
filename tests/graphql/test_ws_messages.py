"""Websocket messages that are not what their protocol says, over both protocols: the
socket is closed with 4400 and a reason naming what is wrong (never a traceback or a
silent stall); one operation's document that does not parse is an error for that
operation alone; a legacy socket that never sends `connection_init` is closed in time."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import websockets
from websockets.typing import Subprotocol

from tests.graphql.conftest import LEGACY_WS, TRANSPORT_WS, Api, Owner, serve

QUERY = "subscription { queueStatsUpdated { __typename } }"


async def opened(api: Api, owner: Owner, protocol: str) -> Any:
    ws = await websockets.connect(api.ws_url, subprotocols=[Subprotocol(protocol)])
    init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {owner.key}"}}
    await ws.send(json.dumps(init))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    return ws


async def closed(ws: Any) -> tuple[int | None, str]:
    """The close code and reason, once the server has closed the socket."""
    async with asyncio.timeout(10):
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as gone:
            assert gone.rcvd is not None, "closed without a close frame"
            return gone.rcvd.code, gone.rcvd.reason


def bad(kind: str) -> list[tuple[object, str]]:
    """Malformed messages of a protocol whose operation message is `kind`, and what the
    close reason names."""
    ok = {"query": QUERY}
    return [
        ([1, 2], "JSON object"),
        (5, "JSON object"),
        (None, "JSON object"),
        ("s", "JSON object"),
        ({"id": "1"}, "`type`"),
        ({"type": kind, "payload": ok}, "`id`"),
        ({"type": kind, "id": {"a": 1}, "payload": ok}, "`id`"),
        ({"type": kind, "id": "1"}, "`payload`"),
        ({"type": kind, "id": "1", "payload": "x"}, "`payload`"),
        ({"type": kind, "id": "1", "payload": {}}, "`query`"),
        ({"type": kind, "id": "1", "payload": {"query": 5}}, "`payload.query`"),
        ({"type": kind, "id": "1", "payload": {**ok, "variables": "x"}}, "`payload.variables`"),
        ({"type": kind, "id": "1", "payload": {**ok, "variables": [1]}}, "`payload.variables`"),
        ({"type": kind, "id": "1", "payload": {**ok, "operationName": 5}}, "operationName"),
    ]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_malformed_message_closes_the_socket_naming_what_is_wrong(
    api: Api, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = await api.owner()
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    for message, named in bad(kind):
        ws = await opened(api, a, protocol)
        await ws.send(json.dumps(message))
        code, reason = await closed(ws)
        assert code == 4400 and named in reason, (message, code, reason)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_syntax_error_is_an_error_for_its_operation_alone(api: Api, protocol: str) -> None:
    a = await api.owner()
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    ws = await opened(api, a, protocol)
    await ws.send(json.dumps({"type": kind, "id": "s1", "payload": {"query": QUERY}}))
    await ws.send(json.dumps({"type": kind, "id": "s2", "payload": {"query": "subscription {"}}))
    seen: dict[str, str] = {}
    refusal: Any = None
    async with asyncio.timeout(20):
        while "s2" not in seen or "s1" not in seen:
            message = json.loads(await ws.recv())
            if message.get("id") in ("s1", "s2"):
                seen.setdefault(message["id"], message["type"])
                if message["id"] == "s2":
                    refusal = message["payload"]
    assert seen["s2"] == "error" and seen["s1"] in ("next", "data"), seen
    # graphql-transport-ws sends the errors, the legacy protocol one error (or a list).
    errors = refusal if isinstance(refusal, list) else refusal.get("errors", [refusal])
    assert [e["extensions"]["code"] for e in errors] == ["syntax_error"], refusal
    await ws.close()


async def test_a_legacy_socket_without_connection_init_is_closed_in_time(db_url: str) -> None:
    async with serve(db_url, ws_init_timeout_seconds=0.5) as api:
        ws = await websockets.connect(api.ws_url, subprotocols=[Subprotocol(LEGACY_WS)])
        code, reason = await closed(ws)
        assert code == 4408 and "initialisation" in reason
