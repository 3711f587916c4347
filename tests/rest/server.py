"""A real FlowSync API server for REST tests: the app of `create_app` (GraphQL, the REST
face, /metrics) under uvicorn on a free 127.0.0.1 port, on the test's database, and httpx
clients for it; optionally an in-process worker."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from flowsync.app import create_app
from flowsync.config import Settings
from flowsync.services.container import Services, build_services
from flowsync.services.principal import Principal
from flowsync.worker.registry import HandlerRegistry, default_registry
from flowsync.worker.runner import Worker
from tests.conftest import new_subject


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Owner:
    """An owner with an API key, and a client that sends it."""

    principal: Principal
    key: str
    http: httpx.AsyncClient


@dataclass
class Server:
    """A running API server."""

    services: Services
    port: int
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, token: str | None = None, **headers: str) -> httpx.AsyncClient:
        """An HTTP client for the server, with `Authorization: Bearer <token>` if given."""
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        made = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)
        self.clients.append(made)
        return made

    async def owner(self) -> Owner:
        """A new owner with an API key."""
        owner_id = await self.services.api_keys.ensure_owner(new_subject())
        principal = Principal(owner_id, "test")
        issued = await self.services.api_keys.create(principal, "test")
        return Owner(principal, issued.secret, self.client(issued.secret))


def server_settings(db_url: str, **overrides: Any) -> Settings:
    """Test settings: rate limits out of the way unless a test lowers them."""
    values: dict[str, Any] = {
        "database_url": db_url,
        "rate_limit_per_ip": "100000/minute",
        "rate_limit_per_principal": "100000/minute",
        "subscription_poll_seconds": 0.5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def serve(db_url: str, **overrides: Any) -> AsyncIterator[Server]:
    """Serve the app with uvicorn on this event loop; stop everything afterwards."""
    settings = server_settings(db_url, **overrides)
    services = await build_services(settings, db_url)
    port = free_port()
    config = uvicorn.Config(
        create_app(services), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    running = Server(services, port)
    try:
        for _ in range(250):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield running
    finally:
        for client in running.clients:
            await client.aclose()
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await services.close()


@contextlib.asynccontextmanager
async def worker(
    services: Services, registry: HandlerRegistry | None = None
) -> AsyncIterator[Worker]:
    """An in-process worker on the server's database."""
    running = Worker(
        services.url, services.pool, registry or default_registry(),
        concurrency=8, poll_seconds=0.1, grace_seconds=2, keyring=services.secrets.keyring,
    )  # fmt: skip
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        running.stop()
        await task


async def eventually(
    check: Callable[[], Any], *, timeout: float = 15, what: str = "a condition"
) -> Any:
    """Poll `check` (async) until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def finished(http: httpx.AsyncClient, execution_id: str, timeout: float = 15) -> Any:
    """The execution (with steps) once it has ended, read through REST."""

    async def check() -> Any:
        body = (await http.get(f"/api/executions/{execution_id}")).json()
        return body if body["status"] not in ("PENDING", "RUNNING") else None

    return await eventually(check, timeout=timeout, what=f"execution {execution_id} to end")


def new_id() -> str:
    return str(uuid.uuid4())
