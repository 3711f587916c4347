"""A bound on the time a request's body takes to arrive.

uvicorn bounds a request's headers but not its body: a client that sends its headers and
then its body a byte at a time, or never, held its request (and a connection, and what
the handler had taken) forever. `BodyReadTimeout` wraps every HTTP request's `receive`:
from the first time the app asks for the body, the whole of it must arrive within the
timeout (FLOWSYNC_BODY_READ_TIMEOUT_SECONDS), or `receive` raises `RequestTimeout`.

Whoever reads the body turns that into its reply as any FlowSync error (the REST
envelope, a GraphQL error), 408; one that escapes is answered here in the envelope. Either
way the reply says `Connection: close`, so that the connection, with what the client
still meant to send on it, is closed.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowsync.errors import RequestTimeout

__all__ = ["BodyReadTimeout"]


class BodyReadTimeout:
    """ASGI middleware: an HTTP request's body arrives within `seconds` of the app's
    first `receive`, or the request is answered 408 and its connection closed. Waits
    for a disconnect after the body (a streamed reply's) are not bounded; websockets and
    the lifespan pass through untouched."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        body_done = False
        timed_out = False
        started = False

        async def bounded() -> Message:
            nonlocal deadline, body_done, timed_out
            if body_done:
                return await receive()
            if deadline is None:
                deadline = loop.time() + self.seconds
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise RequestTimeout(
                    f"The request body did not arrive within {self.seconds:g} s."
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def closing(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if timed_out:  # what the client still sends is not read: close
                    headers = [(k, v) for k, v in message.get("headers", [])
                               if k.lower() != b"connection"]  # fmt: skip
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, bounded, closing)
        except RequestTimeout as exc:
            if started:
                raise
            await _reply(exc, closing)


async def _reply(error: RequestTimeout, send: Send) -> None:
    """The error envelope, 408, for a timeout nobody answered."""
    body = orjson.dumps({"error": error.as_dict()})
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
