"""A real HTTP server for action steps to call: uvicorn on 127.0.0.1 in a thread, with
endpoints that echo, fail, stall, redirect and grow, and a record of every request."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

# Replies a careless or hostile API sends, served at /canned/<name>: (body, content type).
CANNED: dict[str, tuple[bytes, str]] = {
    # JSON may escape a lone surrogate, which is not Unicode: no UTF-8 holds it.
    "lone-surrogate": (b'{"ok": true, "a": "\\ud800"}', "application/json"),
    # A charset that lies its way to one.
    "escaped-surrogate": (b"ab+2AA-", "text/plain; charset=utf-7"),
    # Valid JSON nested deeper than what is stored can be (orjson writes 254 levels).
    "deep-json": (b'{"a":' * 300 + b"1" + b"}" * 300, "application/json"),
    "nul-json": (b'{"error": "a\\u0000b"}', "application/json"),
    "nul-text": (b"a\x00b", "text/plain"),
    "deep-json-fits": (b"[" * 250 + b"1" + b"]" * 250, "application/json"),
}


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Target:
    """The server's state: requests seen, per-key failure counts, switches."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    failures_left: dict[str, int] = field(default_factory=dict)
    healthy: bool = False
    stall_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # /gate answers once this is set (or after 60 s): a step that runs until the test
    # lets it finish.
    gate: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests_to(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]


def _app(state: Target) -> Starlette:
    async def record(request: Request) -> Seen:
        seen = Seen(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            await request.body(),
            time.monotonic(),
        )
        with state.lock:
            state.seen.append(seen)
        return seen

    async def echo(request: Request) -> Response:
        seen = await record(request)
        return JSONResponse(
            {
                "method": seen.method,
                "query": seen.query,
                "headers": seen.headers,
                "body": seen.body.decode(),
            },
            headers={"x-target": "yes"},
        )

    async def mirror(request: Request) -> Response:
        """Everything the request carried, its whole URL included; with `?fail=1`, as
        the body of a 500 (so that an error quotes it)."""
        seen = await record(request)
        reply = {"url": str(request.url), "headers": seen.headers, "body": seen.body.decode()}
        return JSONResponse(reply, status_code=500 if seen.query.get("fail") else 200)

    async def text(request: Request) -> Response:
        await record(request)
        return PlainTextResponse("hello, plain text")

    async def flaky(request: Request) -> Response:
        """503 for the first N calls per key (N from ?fail=), then 200; each answer
        after ?delay= seconds."""
        await record(request)
        await asyncio.sleep(float(request.query_params.get("delay", 0)))
        key = request.path_params["key"]
        with state.lock:
            left = state.failures_left.setdefault(key, int(request.query_params.get("fail", 2)))
            state.failures_left[key] = left - 1
        if left > 0:
            return PlainTextResponse("busy", status_code=503)
        return JSONResponse({"ok": True, "key": key})

    async def until_healthy(request: Request) -> Response:
        """503 until the test flips `healthy`, then 200."""
        await record(request)
        if not state.healthy:
            return PlainTextResponse("down", status_code=int(request.query_params.get("code", 503)))
        return JSONResponse({"ok": True})

    async def status(request: Request) -> Response:
        await record(request)
        return PlainTextResponse("as asked", status_code=int(request.path_params["code"]))

    async def slow(request: Request) -> Response:
        await record(request)
        await asyncio.sleep(float(request.query_params.get("seconds", state.stall_seconds or 3)))
        return JSONResponse({"slow": True})

    async def gate(request: Request) -> Response:
        await record(request)
        for _ in range(600):  # at most 60 s
            if state.gate.is_set():
                return JSONResponse({"released": True})
            await asyncio.sleep(0.1)
        return PlainTextResponse("the gate was never released", status_code=503)

    async def big(request: Request) -> Response:
        await record(request)
        return PlainTextResponse("x" * int(request.query_params.get("bytes", 2_000_000)))

    async def canned(request: Request) -> Response:
        await record(request)
        body, media_type = CANNED[request.path_params["name"]]
        status = int(request.query_params.get("status", 200))
        return Response(body, status_code=status, media_type=media_type)

    async def redirect(request: Request) -> Response:
        await record(request)
        return RedirectResponse(request.query_params["to"], status_code=302)

    return Starlette(
        routes=[
            Route("/echo", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            Route("/text", text),
            Route("/mirror", mirror, methods=["GET", "POST", "PUT"]),
            Route("/flaky/{key}", flaky, methods=["GET", "POST"]),
            Route("/until-healthy", until_healthy, methods=["GET", "POST"]),
            Route("/status/{code:int}", status, methods=["GET", "POST"]),
            Route("/slow", slow, methods=["GET", "POST"]),
            Route("/gate", gate, methods=["GET", "POST"]),
            Route("/big", big),
            Route("/redirect", redirect),
            Route("/canned/{name}", canned),
        ]
    )


@contextmanager
def running_target() -> Iterator[Target]:
    """Serve a Target on a free port for the duration of the block."""
    state = Target()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state.port = sock.getsockname()[1]
    config = uvicorn.Config(_app(state), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def action(url: str, method: str = "GET", **data: Any) -> dict[str, Any]:
    """A start → call → end workflow around one action node."""
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "call", "type": "action", "data": {"method": method, "url": url, **data}},
            {"id": "end", "type": "end", "data": {"output": "{{ steps.call.output }}"}},
        ],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "end"}],
    }
