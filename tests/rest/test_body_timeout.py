"""A request body that arrives too slowly is a 408 and its connection is closed (found by
QA: uvicorn bounds headers, not bodies, so a client that sent its headers and then its
body a byte at a time held the request forever). Raw sockets, as such a client sends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from tests.rest.server import Owner, Server, serve

TIMEOUT = 0.5


async def trickle(port: int, path: str, key: str, *, seconds: float) -> tuple[bytes, float]:
    """Headers announcing 1000 bytes, then one byte every 0.05 s until the server answers
    (or `seconds` pass): what the server sent, and when the connection closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[".encode()
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    received = b""

    async def read() -> None:
        nonlocal received
        # A byte sent after the server closed makes its kernel answer with a reset, which
        # the next read reports instead of the end: the connection was closed either way.
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                received += chunk

    reading = asyncio.create_task(read())
    try:
        while not received and not reading.done() and loop.time() - began < seconds:
            if not writer.is_closing():
                writer.write(b" ")
                with contextlib.suppress(ConnectionError):  # closed by the server
                    await writer.drain()
            await asyncio.sleep(0.05)
        await asyncio.wait_for(reading, 2)  # closed by the server after its reply
    finally:
        writer.close()
    return received, loop.time() - began


@pytest.mark.parametrize("path", ["/api/workflows", "/graphql"])
async def test_a_body_trickled_past_the_timeout_is_408_and_closed(db_url: str, path: str) -> None:
    async with serve(db_url, body_read_timeout_seconds=TIMEOUT) as server:
        me = await server.owner()
        received, took = await trickle(server.port, path, me.key, seconds=10)
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), received[:300]
        assert b"connection: close" in head.lower()
        assert b"request_timeout" in body
        assert TIMEOUT <= took < TIMEOUT + 2.5  # answered at the bound, not at 10 s
        # The server is fine afterwards.
        assert (await me.http.get("/api/workflows")).status_code == 200


async def test_a_webhook_delivery_is_bounded_too(db_url: str) -> None:
    async with serve(db_url, body_read_timeout_seconds=TIMEOUT) as server:
        me = await server.owner()
        wf = await me.http.post(
            "/api/workflows",
            json={"name": "w", "definition": {
                "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
                "edges": [{"source": "start", "target": "end"}]}},
        )  # fmt: skip
        made = await me.http.post(
            "/api/triggers",
            json={"workflowId": wf.json()["id"], "type": "WEBHOOK",
                  "config": {"requireSignature": False}},
        )  # fmt: skip
        hook = "/api/webhooks/" + made.json()["id"]
        received, _ = await trickle(server.port, hook, me.key, seconds=10)
        assert received.startswith(b"HTTP/1.1 408 "), received[:300]
        assert (await me.http.get("/api/executions")).json()["items"] == []


async def test_a_body_that_arrives_in_time_is_read(server: Server, me: Owner) -> None:
    # The default bound (30 s) leaves ordinary requests alone, streamed ones included.
    async def chunks() -> AsyncIterator[bytes]:
        body = json.dumps({"name": "x", "definition": {"nodes": [], "edges": []}}).encode()
        for i in range(0, len(body), 8):
            yield body[i : i + 8]
            await asyncio.sleep(0.01)

    reply = await me.http.post(
        "/api/workflows", content=chunks(), headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422  # read whole, then checked (an empty graph)
