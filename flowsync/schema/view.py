"""Strawberry's ASGI view with FlowSync's context and websocket authentication."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import cast

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types.unset import UNSET, UnsetType

from flowsync.errors import Unauthenticated
from flowsync.events.runtime import LiveEvents
from flowsync.resolvers.context import Context
from flowsync.resolvers.shared import SharedEvents
from flowsync.schema.schema import Schema
from flowsync.services.auth import Credential
from flowsync.services.container import Services

CREDENTIAL = "flowsync.credential"
log = logging.getLogger("flowsync.graphql")


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """A client that goes away while its events are being sent is routine, not an error
    of the server: logged at debug level instead of with a traceback."""

    async def handle_task_exception(self, error: Exception) -> None:
        if isinstance(error, WebSocketDisconnected) or isinstance(
            error.__cause__, WebSocketDisconnected
        ):
            log.debug("a subscriber disconnected while being sent to")
            return
        await super().handle_task_exception(error)


class GraphQLView(GraphQL[Context, None]):
    """HTTP requests arrive authenticated (the app's guard put the credential in the
    request's state); websockets authenticate with the `connection_init` payload
    `{"Authorization": "Bearer …"}` and are refused without it."""

    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(self, schema: Schema, services: Services) -> None:
        settings = services.settings
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            keep_alive=True,
            keep_alive_interval=15,
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            allowed_origins=[
                o.strip() for o in settings.ws_allowed_origins.split(",") if o.strip()
            ],
        )
        self.services = services
        self.live: LiveEvents | None = None
        self.shared = SharedEvents()
        # Set by the app: refuses a websocket whose principal is over its rate limit.
        self.on_credential: Callable[[Credential], Awaitable[None]] | None = None

    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses nesting deeper than 1024 with a JSONDecodeError (a 400); the
        # standard library's parser would hit the recursion limit (a 500).
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        return orjson.dumps(data).decode()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        credential = request.scope.get("state", {}).get(CREDENTIAL)
        return Context(
            services=self.services,
            live=self.live,
            request=request,
            response=response,
            credential=credential if isinstance(credential, Credential) else None,
            shared=self.shared,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        header = params.get("Authorization", params.get("authorization"))
        try:
            credential = await self.services.authenticator.authenticate(
                header if isinstance(header, str) else None
            )
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": exc.message}) from exc
        if self.on_credential is not None:
            await self.on_credential(credential)
        context.credential = credential
        return cast(UnsetType, UNSET)
