"""A real FlowSync API server (uvicorn on a free 127.0.0.1 port, with its lifespan) over
the test's database, and real GraphQL clients (gql) over HTTP and both websocket
protocols."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from starlette.applications import Starlette

from flowsync.app import create_app
from flowsync.config import Settings
from flowsync.events.runtime import LiveEvents
from flowsync.services.container import Services, build_services
from flowsync.services.principal import Principal
from flowsync.serving import ServerConfig
from flowsync.worker.registry import HandlerRegistry, default_registry
from flowsync.worker.runner import Worker
from tests.conftest import new_subject

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


def op(query: str, **variables: Any) -> GraphQLRequest:
    """A GraphQL request with variables."""
    return GraphQLRequest(query, variable_values=variables or None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Owner:
    """An owner with an API key."""

    principal: Principal
    key: str


@dataclass
class Api:
    """A running API server and ways to call it."""

    services: Services
    port: int
    server: uvicorn.Server
    app: Starlette
    owners: list[Owner] = field(default_factory=list)

    @property
    def live(self) -> LiveEvents:
        live: LiveEvents | None = self.app.state.live
        assert live is not None
        return live

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    async def owner(self) -> Owner:
        owner_id = await self.services.api_keys.ensure_owner(new_subject())
        principal = Principal(owner_id, "test")
        issued = await self.services.api_keys.create(principal, "test")
        made = Owner(principal, issued.secret)
        self.owners.append(made)
        return made

    def http(self, token: str | None) -> Client:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return Client(transport=HTTPXAsyncTransport(url=self.http_url, headers=headers))

    def ws(self, token: str | None, protocol: str = TRANSPORT_WS) -> Client:
        payload = {"Authorization": f"Bearer {token}"} if token is not None else {}
        transport = WebsocketsTransport(
            url=self.ws_url, init_payload=payload, subprotocols=[protocol], ack_timeout=5
        )
        return Client(transport=transport)


def api_settings(db_url: str, **overrides: Any) -> Settings:
    """Settings for a test server: fast polls, limits high unless a test lowers them."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "introspection": True,
        "graphiql": True,
        "subscription_poll_seconds": 0.5,
        "credential_check_seconds": 0.5,
        "rate_limit_per_ip": "100000/minute",
        "rate_limit_per_principal": "100000/minute",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def serve(db_url: str, **overrides: Any) -> AsyncIterator[Api]:
    """Build services, serve them with uvicorn on this loop, stop everything after."""
    settings = api_settings(db_url, **overrides)
    services = await build_services(settings, db_url)
    port = free_port()
    app = create_app(services)
    config = ServerConfig(  # FlowSync's protocols, as `serve` and `dev` use
        app,
        send_timeout_seconds=settings.send_timeout_seconds,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ws_per_message_deflate=False,  # as `flowsync dev` serves
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield Api(services, port, server, app)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await services.close()


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    async with serve(db_url) as running:
        yield running


@contextlib.asynccontextmanager
async def running_worker(
    api: Api, registry: HandlerRegistry | None = None
) -> AsyncIterator[Worker]:
    """A worker running in this process on the API's database."""
    running = Worker(
        api.services.url, api.services.pool, registry or default_registry(),
        concurrency=8, poll_seconds=0.2, grace_seconds=2,
    )  # fmt: skip
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        running.stop()
        await task


@pytest.fixture
async def worker(api: Api) -> AsyncIterator[Worker]:
    async with running_worker(api) as running:
        yield running


async def collect(
    subscription: AsyncIterator[dict[str, Any]],
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 15,
) -> list[dict[str, Any]]:
    """Messages of a subscription until `until(messages)` holds."""
    out: list[dict[str, Any]] = []

    async def run() -> None:
        async for message in subscription:
            out.append(message)
            if until(out):
                return

    await asyncio.wait_for(run(), timeout)
    return out


def close_code(error: BaseException) -> int | None:
    """The websocket close code somewhere in an exception's chain."""
    seen: BaseException | None = error
    while seen is not None:
        received = getattr(seen, "rcvd", None)
        if received is not None:
            return int(received.code)
        seen = seen.__cause__ or seen.__context__
    return None


def handshake_status(error: BaseException) -> tuple[int, dict[str, str]] | None:
    """The HTTP status and headers of a refused websocket handshake in an exception's chain."""
    seen: BaseException | None = error
    while seen is not None:
        response = getattr(seen, "response", None)
        if response is not None and hasattr(response, "status_code"):
            return int(response.status_code), {
                k.lower(): v for k, v in response.headers.raw_items()
            }
        seen = seen.__cause__ or seen.__context__
    return None


def new_id() -> str:
    return str(uuid.uuid4())
