"""Strawberry's ASGI view with FlowSync's context and websocket authentication."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, cast

from cross_web import AsyncHTTPRequestAdapter
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from starlette.websockets import WebSocketDisconnected as SocketClosed
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message as TransportMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyConnectionInit,
)
from strawberry.subscriptions.protocols.graphql_ws.types import (
    OperationMessage,
    StartMessage,
)
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from flowsync import codec, eventloop
from flowsync.config import Settings
from flowsync.errors import FlowSyncError, RateLimited, TooManySubscriptions, Unauthenticated
from flowsync.events.runtime import LiveEvents
from flowsync.rate_limits import RateBudget
from flowsync.resolvers.context import Context
from flowsync.resolvers.errors import extensions
from flowsync.resolvers.shared import SharedEvents
from flowsync.schema import graphiql
from flowsync.schema.persisted import PersistedQueries, Refusal
from flowsync.schema.schema import Schema
from flowsync.services.auth import Credential, CredentialGuard, End
from flowsync.services.container import Services

CREDENTIAL = "flowsync.credential"
# The caller's rate budget after its request was counted (a RateBudget), beside CREDENTIAL.
RATE_BUDGET = "flowsync.rate_budget"
log = logging.getLogger("flowsync.graphql")
# A client gone while it is sent to: Strawberry's error when the send fails, Starlette's
# when the socket was already closed (a send after the close, RuntimeError's subclass).
GONE = (WebSocketDisconnected, SocketClosed)

# The close code of a socket whose credential stopped authenticating: 4401, as HTTP's 401
# for a bad credential. graphql-ws clients (GraphiQL's too) take 4401 as final, where
# they retry after a 4403, which the same credential could never pass.
CLOSE_UNAUTHENTICATED = 4401
# A second `connection_init` on one socket: graphql-transport-ws's code and reason, used
# for the legacy graphql-ws protocol too.
CLOSE_TOO_MANY_INITS = 4429
TOO_MANY_INITS = "Too many initialisation requests"

# A message that is not what its protocol says: the socket is closed with this code
# (graphql-transport-ws's for an invalid message; the legacy protocol has none) and a
# reason naming what is wrong, instead of failing inside Strawberry.
CLOSE_INVALID_MESSAGE = 4400
# A legacy graphql-ws socket that sends no `connection_init` in time: closed, with
# graphql-transport-ws's code (Strawberry only times out that protocol's).
CLOSE_INIT_TIMEOUT = 4408


def message_problem(message: object, operation_types: tuple[str, ...]) -> str | None:
    """What is wrong with a websocket message's shape, or None. `operation_types`: the
    protocol's message types that carry an operation's `id` and, the first of them, its
    `payload` (`subscribe`, `complete`; legacy: `start`, `stop`)."""
    if not isinstance(message, dict):
        return "A message must be a JSON object."
    kind = message.get("type")
    if not isinstance(kind, str):
        return "A message needs a `type`, a string."
    if kind not in operation_types:
        return None
    if not isinstance(message.get("id"), str) or not message["id"]:
        return f"A {kind} message needs an `id`, a non-empty string."
    if kind != operation_types[0]:
        return None
    payload = message.get("payload")
    if not isinstance(payload, dict):
        return f"A {kind} message needs a `payload`, an object."
    for field, allowed, what in (
        ("query", (str,), "a string"),
        ("variables", (dict,), "an object"),
        ("operationName", (str,), "a string"),
        ("extensions", (dict,), "an object"),
    ):
        value = payload.get(field)
        if value is not None and not isinstance(value, allowed):
            return f"A {kind} message's `payload.{field}` must be {what} or null."
    if payload.get("query") is None and payload.get("extensions") is None:
        return f"A {kind} message's payload needs a `query` (or a persisted query's hash)."
    return None


# Every mutation operation begins with the name token `mutation`, which no escape or
# other token can spell; a document without it holds no mutation. A document that only
# mentions the word (a field, a string, a comment) costs one extra key check, no more.
_MUTATION_TOKEN = re.compile(r"(?<![_0-9A-Za-z])mutation(?![_0-9A-Za-z])")


def explorer_enabled(settings: Settings) -> bool:
    """Whether GraphiQL is served: as configured, and never in safelist mode, where none
    of the documents it writes would run."""
    return settings.graphiql and settings.graphql_safelist is None


def may_write(query: object) -> bool:
    """Whether an operation's document may hold a mutation."""
    return not isinstance(query, str) or _MUTATION_TOKEN.search(query) is not None


def formatted(error: FlowSyncError) -> dict[str, object]:
    """A refused operation's error, as in a GraphQL response (with `extensions.code`)."""
    return dict(GraphQLError(error.message, extensions=extensions(error)).formatted)


def close_reason(error: FlowSyncError) -> str:
    """A websocket close reason: at most 123 bytes of UTF-8."""
    return error.message.encode()[:123].decode(errors="ignore")


def long_lived(context: Context, end: End) -> Callable[[], None]:
    """A websocket's or HTTP stream's life, from its first credential on: the process's
    credential watch (flowsync.services.auth.CredentialWatch) calls `end` once that
    credential no longer authenticates (re-checked every `credential_check_seconds` and
    at a JWT's expiry, also while nothing is sent), and its objects are kept out of the
    collector's full collections (flowsync.eventloop.LongLived). Returns what ends
    both, to be called once when the connection ends."""
    assert context.guard is not None
    unwatch = context.services.authenticator.watch(context.guard, end)
    eventloop.CONNECTIONS.opened()

    def ended() -> None:
        unwatch()
        eventloop.CONNECTIONS.closed()

    return ended


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws. Every `subscribe` is admitted by `GraphQLView.admit` first: a
    credential that no longer authenticates closes the socket, an owner over the rate
    limit gets an error for that operation only. The process's credential watch closes
    the socket when its credential stops authenticating while nothing is sent.

    A client that goes away while its events are being sent is routine, not an error
    of the server: logged at debug level instead of with a traceback."""

    _ends: Callable[[], None] | None = None
    _ended = False

    async def handle_task_exception(self, error: Exception) -> None:
        if isinstance(error, GONE) or isinstance(error.__cause__, GONE):
            log.debug("a subscriber disconnected while being sent to")
            return
        await super().handle_task_exception(error)

    async def handle_message(self, message: TransportMessage) -> None:
        problem = message_problem(message, ("subscribe", "complete"))
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        # One operation's document that does not parse (or names no operation in it)
        # is an `error` for that operation, as a validation error is: Strawberry closed
        # the socket, and every other subscription on it (a dashboard tab's) with it.
        return None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._ends is None:
            self._ends = long_lived(self.context, self.end)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message.get("payload")
        oid = message.get("id")
        if (
            self.connection_acknowledged
            and oid not in self.operations
            and isinstance(payload, dict)
        ):
            if (
                full := _full(self.max_subscriptions_per_connection, len(self.operations))
            ) is not None:
                await self.send_message(_error(oid, [formatted(full)]))
                return
            view = cast(GraphQLView, self.view)
            try:
                await view.admit(self.context, payload.get("query"))
            except Unauthenticated as exc:
                await self.send_message(_error(oid, [formatted(exc)]))
                await self.end(exc)
                return
            except RateLimited as exc:
                await self.send_message(_error(oid, [formatted(exc)]))
                return
            if (refused := view.resolve_payload(cast(dict[str, Any], payload))) is not None:
                await self.send_message(_error(oid, refused.errors))
                return
        await super().handle_subscribe(message)

    async def end(self, error: Unauthenticated) -> None:
        """Refuse every open operation with `error`, then close the socket."""
        if self._ended:
            return
        self._ended = True
        ids = list(self.operations)
        for oid in ids:  # stopped first: nothing of theirs follows the error
            await self.cleanup_operation(oid)
        with contextlib.suppress(WebSocketDisconnected, RuntimeError):
            for oid in ids:
                await self.send_message(_error(oid, [formatted(error)]))
            await self.websocket.close(code=CLOSE_UNAUTHENTICATED, reason=close_reason(error))

    async def shutdown(self) -> None:
        if self._ends is not None:
            self._ends()
            self._ends = None
        await super().shutdown()


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """The legacy graphql-ws protocol, with the same admission of every `start` and the
    same credential watch as `TransportWSHandler`."""

    _ends: Callable[[], None] | None = None
    _ended = False
    _closing: asyncio.Future[None] | None = None

    async def handle(self) -> None:
        # No `connection_init` in time: closed, as graphql-transport-ws sockets are
        # (Strawberry times out only that protocol; an idle legacy socket stayed open).
        view = cast(GraphQLView, self.view)
        timeout = view.connection_init_wait_timeout.total_seconds()
        timer = asyncio.get_running_loop().call_later(timeout, self._init_timed_out)
        try:
            await super().handle()
        finally:
            timer.cancel()

    def _init_timed_out(self) -> None:
        if not self.connection_acknowledged and not self._ended:
            self._ended = True
            self._closing = asyncio.ensure_future(
                self._close(CLOSE_INIT_TIMEOUT, "Connection initialisation timeout")
            )

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(*GONE, RuntimeError):
            await self.websocket.close(code=code, reason=reason)

    async def handle_message(self, message: OperationMessage) -> None:
        problem = message_problem(message, ("start", "stop"))
        if problem is not None:
            await self._close(CLOSE_INVALID_MESSAGE, problem)
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: LegacyConnectionInit) -> None:
        if self.connection_acknowledged:
            # The legacy protocol says nothing of a second `connection_init`; Strawberry
            # would take it, replacing the socket's credential while the operations
            # started under the first one run on. Refused as graphql-transport-ws does:
            # a socket has one credential for its whole life.
            await self.websocket.close(code=CLOSE_TOO_MANY_INITS, reason=TOO_MANY_INITS)
            return
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._ends is None:
            self._ends = long_lived(self.context, self.end)

    async def handle_start(self, message: StartMessage) -> None:
        payload = message.get("payload")
        oid = message.get("id")
        if self.connection_acknowledged and isinstance(payload, dict):
            if oid in self.tasks:  # a restart of the same id: Strawberry ends the old one
                await self.cleanup_operation(oid)
            if (full := _full(self.max_subscriptions_per_connection, len(self.tasks))) is not None:
                await self.send_message(_legacy_error(oid, formatted(full)))
                return
            view = cast(GraphQLView, self.view)
            try:
                await view.admit(self.context, payload.get("query"))
            except Unauthenticated as exc:
                await self.send_message(_legacy_error(oid, formatted(exc)))
                await self.end(exc)
                return
            except RateLimited as exc:
                await self.send_message(_legacy_error(oid, formatted(exc)))
                return
            if (refused := view.resolve_payload(cast(dict[str, Any], payload))) is not None:
                await self.send_message(_legacy_error(oid, refused.errors[0]))
                return
        await super().handle_start(message)

    async def send_data_message(self, execution_result: ExecutionResult, operation_id: str) -> None:
        try:
            await super().send_data_message(execution_result, operation_id)
        except GONE:
            # Gone while being sent to (also a client that stopped reading: see
            # flowsync.serving). Strawberry would forget the operation with its source
            # still open, holding the subscription until garbage collection: close it.
            source = self.subscriptions.get(operation_id)
            if source is not None:
                await source.aclose()
            raise

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        try:
            await super().handle_async_results(operation_id, query, operation_name, variables)
        except GONE:
            log.debug("a subscriber disconnected while being sent to")

    async def end(self, error: Unauthenticated) -> None:
        """Refuse every open operation with `error`, then close the socket (the
        operations are stopped when the handler cleans up after the close)."""
        if self._ended:
            return
        self._ended = True
        with contextlib.suppress(WebSocketDisconnected, RuntimeError):
            for oid in list(self.tasks):
                await self.send_message(_legacy_error(oid, formatted(error)))
            await self.websocket.close(code=CLOSE_UNAUTHENTICATED, reason=close_reason(error))

    async def cleanup(self) -> None:
        if self._ends is not None:
            self._ends()
            self._ends = None
        await super().cleanup()


def _full(most: int | None, running: int) -> TooManySubscriptions | None:
    """The refusal of one more operation on a socket running `running` of at most
    `most` (Strawberry's own refusal has no code)."""
    if most is None or running < most:
        return None
    return TooManySubscriptions(
        f"This websocket already runs {running} operations, the most allowed "
        "(FLOWSYNC_MAX_SUBSCRIPTIONS_PER_CONNECTION): complete one, or open another socket."
    )


def _error(oid: object, errors: list[dict[str, object]]) -> TransportMessage:
    return cast(TransportMessage, {"id": oid, "type": "error", "payload": errors})


def _legacy_error(oid: object, error: dict[str, object]) -> OperationMessage:
    return cast(OperationMessage, {"id": oid, "type": "error", "payload": error})


async def watched(
    context: Context, guard: CredentialGuard, results: AsyncGenerator[ExecutionResult, None]
) -> AsyncGenerator[ExecutionResult, None]:
    """An HTTP stream's results (GraphQL over SSE, multipart subscriptions), kept to a
    credential that still authenticates as a websocket's operations are: re-checked
    whenever due (`credential_check_seconds`, a JWT's expiry), also while no event
    comes. Once it fails, the stream stops and its last result is the
    `unauthenticated` error."""
    ended: asyncio.Future[Unauthenticated] = asyncio.get_running_loop().create_future()

    async def end(error: Unauthenticated) -> None:
        if not ended.done():
            ended.set_result(error)

    context.guard = guard
    ends = long_lived(context, end)
    step: asyncio.Future[ExecutionResult] | None = None
    try:
        async with contextlib.aclosing(results):
            try:
                while True:
                    step = asyncio.ensure_future(anext(results))
                    waiting: list[asyncio.Future[Any]] = [step, ended]
                    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    if ended.done():
                        await _drop(step)
                        step = None
                        error = ended.result()
                        yield ExecutionResult(
                            data=None,
                            errors=[GraphQLError(error.message, extensions=extensions(error))],
                        )
                        return
                    try:
                        result = step.result()
                    except StopAsyncIteration:
                        return
                    finally:
                        step = None
                    yield result
            finally:
                # The client went away while the next result was awaited: stop that
                # wait before the results are closed (closing a running generator fails).
                if step is not None:
                    await _drop(step)
    finally:
        ends()


async def _drop(step: asyncio.Future[Any]) -> None:
    """Cancel a pending step and wait until it stopped, its outcome ignored. The wait
    outlasts further cancellations of the caller, raised once the step stopped: a
    stream's task is cancelled again and again while it cleans up (Strawberry cancels
    it from a task that Starlette's cancel scope keeps cancelling), and closing the
    results while the step still runs would fail."""
    step.cancel()
    cancelled = False
    while not step.done():
        try:
            await asyncio.wait([step])
        except asyncio.CancelledError:
            cancelled = True
    if not step.cancelled():
        step.exception()  # retrieved: no "exception was never retrieved" warning
    if cancelled:
        raise asyncio.CancelledError


class GraphQLView(GraphQL[Context, None]):
    """HTTP requests arrive authenticated (the app's guard put the credential in the
    request's state); websockets authenticate with the `connection_init` payload
    `{"Authorization": "Bearer …"}` and are refused without it. Every operation on a
    socket, and every HTTP stream (GraphQL over SSE with `Accept: text/event-stream`,
    multipart subscriptions with `Accept: multipart/mixed;subscriptionSpec=1.0`), then
    runs under that credential only while it still authenticates (see `admit`,
    `watched` and `long_lived`)."""

    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self, schema: Schema, services: Services, known: Mapping[str, str] | None = None
    ) -> None:
        """`known`: the documents registered when the API starts, by hash (see
        `flowsync.schema.safelist.allowed_documents`); in safelist mode the only ones
        that run."""
        settings = services.settings
        super().__init__(
            schema,
            graphql_ide="graphiql" if explorer_enabled(settings) else None,
            keep_alive=True,
            keep_alive_interval=15,
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
            ),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            allowed_origins=[
                o.strip() for o in settings.ws_allowed_origins.split(",") if o.strip()
            ],
        )
        self.services = services
        self.live: LiveEvents | None = None
        self.shared = SharedEvents()
        # Set by the app: counts one request of the credential's owner (a websocket's
        # connection, and each operation sent over it); RateLimited when over the limit.
        self.rate_limit: Callable[[Credential], Awaitable[RateBudget]] | None = None
        self.persisted = PersistedQueries(
            settings.persisted_query_cache_size,
            known,
            safelist=settings.graphql_safelist is not None,
        )

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        for one in request_data if isinstance(request_data, list) else [request_data]:
            if (refused := self.persisted.resolve(one)) is not None:
                if refused.status is not None:
                    sub_response.status_code = refused.status
                return refused.result
        result = await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )
        if isinstance(result, AsyncGenerator) and context.credential is not None:
            guard = self.services.authenticator.guard(context.credential)
            return cast(SubscriptionExecutionResult, watched(context, guard, result))
        return result

    def resolve_payload(self, payload: dict[str, Any]) -> Refusal | None:
        """A websocket operation's payload (`subscribe`, or the legacy `start`) through
        the persisted documents and the safelist, as an HTTP request's: its `query`
        filled in from its hash, or the refusal to send for this operation instead."""
        query = payload.get("query")
        extensions = payload.get("extensions")
        data = GraphQLRequestData(
            # Something other than a string reaches the safelist's check as it is.
            query=None if query in (None, "") else cast(str, query),
            variables=None,
            operation_name=None,
            extensions=extensions if isinstance(extensions, dict) else None,
        )
        refused = self.persisted.resolve(data)
        if refused is None and data.query is not None:
            payload["query"] = data.query
        return refused

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET with `extensions` alone is an automatic persisted query's hash, whatever
        # it accepts (curl sends `*/*`), as the endpoint's guard takes it.
        has_extensions = request.query_params.get("extensions") is not None
        return not has_extensions and super().should_render_graphql_ide(request)

    async def render_graphql_ide(self, request: Request) -> Response:
        # FlowSync's own GraphiQL page (its files served by FlowSync, under a CSP), not
        # Strawberry's, which loads them from a CDN and keeps headers in localStorage.
        return graphiql.page(request.scope.get("root_path", ""))

    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses nesting deeper than 1024 with a JSONDecodeError (a 400); the
        # standard library's parser would hit the recursion limit (a 500). Numbers as
        # flowsync.codec reads them; NUL in variables is refused by InputBoundary.
        return codec.loads(data)

    def encode_json(self, data: object) -> str:
        return codec.dumps(data).decode()

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        # Strawberry's encodes to text, then Starlette back to bytes: three copies of
        # the body at once. The bytes as orjson writes them are the body.
        response = Response(
            codec.dumps(response_data),
            status_code=sub_response.status_code or 200,
            media_type="application/json",
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request.scope.get("state", {})
        credential = state.get(CREDENTIAL)
        budget = state.get(RATE_BUDGET)
        return Context(
            services=self.services,
            live=self.live,
            request=request,
            response=response,
            credential=credential if isinstance(credential, Credential) else None,
            shared=self.shared,
            rate_budget=budget if isinstance(budget, RateBudget) else None,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        header = params.get("Authorization", params.get("authorization"))
        try:
            credential = await self.services.authenticator.authenticate(
                header if isinstance(header, str) else None
            )
            if self.rate_limit is not None:
                context.rate_budget = await self.rate_limit(credential)
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"code": exc.code, "message": exc.message}) from exc
        except RateLimited as exc:
            raise ConnectionRejectionError(
                {"code": exc.code, "message": exc.message, "retryAfter": exc.retry_after}
            ) from exc
        context.credential = credential
        context.guard = self.services.authenticator.guard(credential)
        return cast(UnsetType, UNSET)

    async def admit(self, context: Context, query: object) -> None:
        """Let an operation sent over a websocket run, or refuse it: `Unauthenticated`
        when the socket's credential no longer authenticates (re-checked when due, and
        past every cache when the document may hold a mutation; the socket is then to
        be closed), `RateLimited` when its owner is over the limit (this operation
        only). The socket's context then holds the owner's budget as of this operation
        (what its results report in `extensions.rateLimit`)."""
        guard = context.guard
        if guard is None:  # not acknowledged: the protocol handlers refuse it first
            raise Unauthenticated("Send `connection_init` with your credential first.")
        await guard.check(write=may_write(query))
        if self.rate_limit is not None:
            context.rate_budget = await self.rate_limit(guard.credential)
