"""`flowsync serve`: the HTTP API alone (GraphQL and its subscriptions, REST, webhook
ingress, /metrics), in one process or N on one port, with no worker, no scheduler and
no embedded database.

N processes are uvicorn's own supervisor (`uvicorn.supervisors.Multiprocess`): the
parent binds the port, starts N children that accept on it, restarts one that dies, and
on SIGTERM or SIGINT sends each child SIGTERM and waits for it. Each API process then
drains: it stops accepting, lets the requests in flight finish (up to
`FLOWSYNC_SHUTDOWN_GRACE_SECONDS`), closes its websockets with code 1012 (service
restart: reconnect), stops its live events and logs one line saying what it drained.

Every FlowSync server (`serve`, `dev`, the tests') speaks through the protocols here,
which also bound each write by `FLOWSYNC_SEND_TIMEOUT_SECONDS`: uvicorn waits for a
client whose buffers are full to read, forever when it stops reading but keeps its
connection open, and a subscription's stream would then hold its subscription for as long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.supervisors import Multiprocess
from websockets.exceptions import InvalidState

from flowsync import eventloop, tracing
from flowsync.config import Settings
from flowsync.logs import configure_logging, progress

log = logging.getLogger("flowsync")

# The websocket close code of a drain: RFC 6455's 1012, "service restart": the client
# should reconnect (to another process, or this one's replacement).
RECONNECT_CLOSE_CODE = 1012


@dataclass
class DrainCount:
    """What this process's shutdown found in flight: requests it let finish, and
    websockets it closed with RECONNECT_CLOSE_CODE."""

    requests: int = 0
    websockets: int = 0

    def line(self) -> str:
        """The one log line a drained API process writes."""
        return f"drained: {self.requests} requests, {self.websockets} websockets closed"


# The websocket close code of a client that stopped reading: RFC 6455's 1013, "try again
# later", which graphql-ws clients retry (a new connection subscribes again from a
# snapshot), unlike 1008.
TOO_SLOW_CLOSE_CODE = 1013
TOO_SLOW_REASON = "subscriber_too_slow: the client stopped reading"


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration with FlowSync's protocols and its bound on each write."""

    def __init__(self, app: Any, *, send_timeout_seconds: float, **kwargs: Any) -> None:
        super().__init__(app, http=DrainingHTTP, ws=DrainingWebSocket, **kwargs)
        self.send_timeout_seconds = send_timeout_seconds


def _send_timeout(config: uvicorn.Config) -> float:
    assert isinstance(config, ServerConfig), "FlowSync's protocols need a ServerConfig"
    return config.send_timeout_seconds


class _BoundedFlow(FlowControl):
    """uvicorn's HTTP flow control, whose wait for a paused client to read is bounded:
    past the bound the connection is aborted (its request hears `http.disconnect`, and
    a stream ends with it). Nothing more can be written to a client that does not read,
    not even an error event: it finds the connection reset, as on any network failure."""

    def __init__(self, transport: asyncio.Transport, timeout: float) -> None:
        super().__init__(transport)
        self._timeout = timeout

    async def drain(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await super().drain()
        except TimeoutError:
            log.info("a client read nothing for %s s; its connection is closed", self._timeout)
            self._transport.abort()
            await asyncio.sleep(0)  # connection_lost runs: the write is dropped


# One per process: uvicorn makes a protocol object per connection, and calls each one's
# shutdown() once when the drain starts.
DRAINED = DrainCount()


class DrainingHTTP(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol, counting the requests in flight when the drain starts,
    with each write bounded (`_BoundedFlow`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.flow = _BoundedFlow(cast(asyncio.Transport, transport), _send_timeout(self.config))

    def shutdown(self) -> None:
        cycle = getattr(self, "cycle", None)
        if cycle is not None and not cycle.response_complete:
            DRAINED.requests += 1
        super().shutdown()


class DrainingWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol (which closes an open websocket with 1012 on
    shutdown), counting the websockets it closes. A message that waits longer than the
    send timeout for the client to read ends the connection: the app hears it closed
    (its operations stop), the client gets close code 1013 with the reason after what it
    has not read yet, and the connection is aborted if it reads nothing for as long."""

    async def send(self, message: Any) -> None:
        if not self.writable.is_set() and not self.disconnected:
            timeout = _send_timeout(self.config)
            try:
                async with asyncio.timeout(timeout):
                    await self.writable.wait()
            except TimeoutError:
                self._give_up(timeout)
                raise ClientDisconnected() from None
        await super().send(message)

    def _give_up(self, timeout: float) -> None:
        log.info("a websocket client read nothing for %s s; its connection is closed", timeout)
        self.stop_keepalive()
        if not self.close_sent:
            with contextlib.suppress(InvalidState):
                self.conn.send_close(TOO_SLOW_CLOSE_CODE, TOO_SLOW_REASON)
                self.transport.write(b"".join(self.conn.data_to_send()))
            self.close_sent = True
        self.disconnected = True
        self.writable.set()  # every later send raises ClientDisconnected at once
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": TOO_SLOW_CLOSE_CODE, "reason": TOO_SLOW_REASON}
        )
        self.transport.close()  # once what is buffered is read; else aborted (the timer
        # is uvicorn's own for a close, cancelled when the connection is lost)
        self.close_timer = self.loop.call_later(timeout, self.transport.abort)

    def shutdown(self) -> None:
        if self.handshake_complete and self.initial_response is None and not self.close_sent:
            DRAINED.websockets += 1
        super().shutdown()


class ApiProcess:
    """The ASGI app of one API process. The services (database pools) and the app over
    them are built when the process starts (the lifespan's startup), so that each of N
    processes has its own; its shutdown stops the live events, closes the services and
    logs the drain line."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.app(scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        from flowsync.app import create_app
        from flowsync.logs import RequestIdMiddleware
        from flowsync.services.container import build_services

        await receive()  # lifespan.startup
        async with contextlib.AsyncExitStack() as stack:
            try:
                if tracing.start():
                    stack.callback(tracing.shutdown)
                services = await build_services(self.settings, self.settings.database_url or "")
                stack.push_async_callback(services.close)
                app = create_app(services)
                await stack.enter_async_context(app.router.lifespan_context(app))
            except Exception as exc:
                log.exception("the API process could not start")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            self.app = RequestIdMiddleware(app)
            eventloop.settle_heap()
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown: uvicorn has drained the connections
            log.info("%s", DRAINED.line())
        await send({"type": "lifespan.shutdown.complete"})


def api_process() -> ApiProcess:
    """The app factory each child of `flowsync serve --workers N` imports: settings and
    logging are set up again there, from the same environment."""
    settings = Settings()
    configure_logging(settings)
    return ApiProcess(settings)


def _config(settings: Settings, app: Any, workers: int) -> uvicorn.Config:
    return ServerConfig(
        app,
        send_timeout_seconds=settings.send_timeout_seconds,
        factory=workers > 1,
        host=settings.host,
        port=settings.port,
        workers=workers,
        loop="auto" if settings.event_loop == "uvloop" else "asyncio",
        log_level=settings.log_level,
        log_config=None,  # its records go through FlowSync's handlers (flowsync/logs.py)
        # Subscription messages are small; per-connection deflate state costs more than
        # it saves (see flowsync/server.py).
        ws_per_message_deflate=False,
        ws_max_size=settings.max_body_bytes,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_seconds)),
    )


def run_serve(settings: Settings, workers: int) -> int:
    """Serve the API until SIGTERM or SIGINT, in `workers` processes on one port; 0 once
    every process has drained. The database must be migrated (see db/preflight.py)."""
    from flowsync.db.preflight import check_database
    from flowsync.schema.safelist import allowed_documents
    from flowsync.server import _Server

    allowed_documents(settings)  # a bad safelist stops here, before any process starts
    check_database(settings, "serve")
    progress("Serving the API on http://%s:%s with %d process(es)", settings.host,
             settings.port, workers)  # fmt: skip
    if workers == 1:
        config = _config(settings, ApiProcess(settings), 1)
        server = _Server(config, lambda: None)
        eventloop.run(server.serve(), settings.event_loop)
        # Not started: the port was taken, or the app could not start (logged above).
        return 0 if server.started else 1
    config = _config(settings, "flowsync.serving:api_process", workers)
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    # A child that could not start stops the parent (uvicorn does not restart it): that is
    # a failure, unlike the children's ends on SIGTERM.
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        log.error("an API process could not start (its error is above); stopping")
        return 1
    progress("The API stopped")
    return 0
