"""A client that stops reading but keeps its connection open, over each transport: a raw
socket with a small receive buffer that sends its subscription and then reads nothing
while a run emits far more than the socket buffers hold. The server's write to it
waits at most `FLOWSYNC_SEND_TIMEOUT_SECONDS`; then the connection ends and so does its
subscription, instead of holding it for as long as the client keeps the socket open."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any

import pytest
import websockets
from gql import gql
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from flowsync.services.executions import StartItem
from flowsync.serving import TOO_SLOW_CLOSE_CODE
from tests.graphql.conftest import LEGACY_WS, TRANSPORT_WS, Api, Owner, running_worker, serve
from tests.support.graphs import fan

SSE = "text/event-stream"
MULTIPART = "multipart/mixed;subscriptionSpec=1.0,application/json"
# Each event repeats the run's 64 KiB input ten times: a run of fan(8) sends about
# 16 MiB, far past what the kernel's buffers and uvicorn's hold for an unread socket.
BIG = (
    "subscription($id: ID!) { executionUpdated(id: $id) { sequence kind "
    + " ".join(f"a{i}: execution {{ input }}" for i in range(10))
    + " } }"
)
PAD = "x" * 65536


async def watching(api: Api, owner: Owner) -> int:
    """The owner's live watcher rows: 1 while this process has a subscription of its."""
    count = await api.services.pool.fetchval(
        "SELECT count(*) FROM event_watchers WHERE owner_id = $1 AND expires_at > now()",
        owner.principal.owner_id,
    )
    return int(count)


async def connect(api: Api) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", api.port))
    return sock


async def http_subscriber(api: Api, owner: Owner, accept: str, eid: str) -> socket.socket:
    body = json.dumps({"query": BIG, "variables": {"id": eid}}).encode()
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\n"
        f"Authorization: Bearer {owner.key}\r\nAccept: {accept}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock = await connect(api)
    await asyncio.get_running_loop().sock_sendall(sock, head.encode() + body)
    return sock


async def ws_subscriber(
    api: Api, owner: Owner, protocol: str, eid: str
) -> tuple[socket.socket, ClientProtocol]:
    """Handshake and acknowledged `connection_init` (read), then the subscription (sent)."""
    loop = asyncio.get_running_loop()
    client = ClientProtocol(parse_uri(api.ws_url), subprotocols=[Subprotocol(protocol)])
    sock = await connect(api)

    async def send(message: dict[str, Any] | None = None) -> None:
        if message is not None:
            client.send_text(json.dumps(message).encode())
        await loop.sock_sendall(sock, b"".join(client.data_to_send()))

    async def until(ack: bool) -> None:  # the handshake's response, or connection_ack
        while True:
            data = await loop.sock_recv(sock, 65536)
            assert data, "the server closed the connection"
            client.receive_data(data)
            for event in client.events_received():
                if isinstance(event, Response):
                    assert event.status_code == 101, event
                    if not ack:
                        return
                elif (
                    isinstance(event, Frame)
                    and event.opcode is Opcode.TEXT
                    and json.loads(event.data)["type"] == "connection_ack"
                ):
                    return

    client.send_request(client.connect())
    await send()
    async with asyncio.timeout(30):
        await until(ack=False)
        await send({"type": "connection_init", "payload": {"Authorization": f"Bearer {owner.key}"}})
        await until(ack=True)
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    await send({"id": "1", "type": kind, "payload": {"query": BIG, "variables": {"id": eid}}})
    return sock, client


async def read_to_end(sock: socket.socket, client: ClientProtocol | None) -> Close | None:
    """Everything the server still sends, until it closes (a websocket's close frame, when
    one is given: None for HTTP)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(60):
        while True:
            try:
                data = await loop.sock_recv(sock, 1 << 20)
            except ConnectionResetError:
                data = b""
            if client is not None:
                if data:
                    client.receive_data(data)
                else:
                    client.receive_eof()
                client.events_received()
                if client.close_rcvd is not None:
                    return client.close_rcvd
            if not data:
                return None


@pytest.mark.parametrize(
    "transport", ["sse", "multipart", TRANSPORT_WS, LEGACY_WS],
)  # fmt: skip
async def test_a_client_that_stops_reading_loses_its_subscription(
    db_url: str, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(db_url, send_timeout_seconds=1.0) as api:
        a = await api.owner()
        wid = (await api.services.workflows.create(a.principal, "fan", None, fan(8))).id
        started = await api.services.executions.start(a.principal, wid, {"pad": PAD})
        eid = str(started.execution.id)
        client: ClientProtocol | None = None
        if transport == "sse":
            sock = await http_subscriber(api, a, SSE, eid)
        elif transport == "multipart":
            sock = await http_subscriber(api, a, MULTIPART, eid)
        else:
            sock, client = await ws_subscriber(api, a, transport, eid)
        try:
            for _ in range(600):
                if await watching(api, a):
                    break
                await asyncio.sleep(0.05)
            assert await watching(api, a) == 1, "the subscription never started"
            # The run emits while the client reads nothing: the server's writes stall.
            async with running_worker(api):
                for _ in range(600):
                    if not await watching(api, a):
                        break
                    await asyncio.sleep(0.05)
                assert await watching(api, a) == 0, "a client that reads nothing held it"
                for _ in range(600):  # the run itself never waited for the client
                    run = await api.services.executions.get(a.principal, eid)
                    if run.status == "COMPLETED":
                        break
                    await asyncio.sleep(0.05)
                assert run.status == "COMPLETED"
            # Reading again, the client finds its connection ended by the server (over a
            # websocket, after what was buffered: code 1013, "try again later", and why).
            close = await read_to_end(sock, client)
            if client is not None:
                assert close is not None and close.code == TOO_SLOW_CLOSE_CODE, close
                assert "stopped reading" in close.reason
        finally:
            sock.close()
        async with api.http(a.key) as session:  # and the server still serves
            assert (await session.execute(gql("{ health { status } }")))["health"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.parametrize("transport", [TRANSPORT_WS, LEGACY_WS])
async def test_subscribers_gone_mid_stream_are_no_server_error(
    db_url: str, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Websocket clients whose connections drop (aborted) while their runs' events are
    sent to them are routine: their subscriptions end, the runs complete, and nothing is
    logged as an error (each was: an unretrieved task exception, a failed worker task)."""
    async with serve(db_url) as api:
        a = await api.owner()
        wid = (await api.services.workflows.create(a.principal, "fan", None, fan(6))).id
        batch = await api.services.executions.start_many(
            a.principal, wid, [StartItem({}) for _ in range(8)]
        )
        eids = [str(s.execution.id) for s in batch]
        kind = "subscribe" if transport == TRANSPORT_WS else "start"
        updated = "subscription($id: ID!) { executionUpdated(id: $id) { sequence kind } }"
        sockets = []
        for _ in range(6):
            ws = await websockets.connect(api.ws_url, subprotocols=[Subprotocol(transport)])
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {a.key}"}}
            await ws.send(json.dumps(init))
            await ws.recv()
            for n, eid in enumerate(eids):
                payload = {"query": updated, "variables": {"id": eid}}
                await ws.send(json.dumps({"id": f"e{n}", "type": kind, "payload": payload}))
            for oid, query in [
                ("all", "subscription { executionEvents { executionId sequence } }"),
                ("queue", "subscription { queueStatsUpdated { __typename } }"),
            ]:
                await ws.send(json.dumps({"id": oid, "type": kind, "payload": {"query": query}}))
            sockets.append(ws)
        async with running_worker(api):
            await asyncio.sleep(0.4)  # events flowing to every socket
            for ws in sockets:
                ws.transport.abort()
            for _ in range(600):
                runs = [await api.services.executions.get(a.principal, e) for e in eids]
                if all(r.status == "COMPLETED" for r in runs) and not await watching(api, a):
                    break
                await asyncio.sleep(0.05)
            assert [r.status for r in runs] == ["COMPLETED"] * 8
            assert await watching(api, a) == 0
            await asyncio.sleep(0.5)  # any task that failed has been collected and logged
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
