"""The Starlette application: one process serves the API faces over the service layer."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import AsyncIterator

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket

import rest_compat
from flowsync.body_timeout import BodyReadTimeout
from flowsync.config import Settings
from flowsync.errors import (
    FlowSyncError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
)
from flowsync.eventloop import LargeBodies
from flowsync.events.runtime import LiveEvents
from flowsync.rate_limits import RateLimits
from flowsync.schema import graphiql
from flowsync.schema.safelist import allowed_documents
from flowsync.schema.schema import build_schema
from flowsync.schema.view import CREDENTIAL, RATE_BUDGET, GraphQLView, explorer_enabled
from flowsync.services.container import Services
from flowsync.tracing import TraceparentMiddleware
from flowsync.web import mount as mount_web
from flowsync.web.oidc import OidcSignIn

log = logging.getLogger("flowsync.app")


def _errors(
    message: str,
    code: str,
    status: int,
    headers: dict[str, str] | None = None,
    **more: object,
) -> JSONResponse:
    """A GraphQL-shaped error reply (`{"errors": [{message, extensions: {code}}]}`) for a
    request GraphQL did not run."""
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code, **more}}]},
        status_code=status,
        headers=headers,
    )


def _error_response(error: FlowSyncError) -> JSONResponse:
    """The reply for a request refused before GraphQL ran."""
    headers: dict[str, str] = {}
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="flowsync"'
    if isinstance(error, RateLimited):
        retry = math.ceil(error.retry_after)
        headers["Retry-After"] = str(retry)
        return _errors(error.message, error.code, error.status, headers, retryAfter=retry)
    return _errors(error.message, error.code, error.status, headers)


# What a request must be for GraphQL to run it over HTTP (GraphQL over HTTP): GET with
# `query` (and optionally `variables`, `operationName`) parameters, or POST of one JSON
# object `{query, variables, operationName}` as application/json.
_ALLOW = {"Allow": "GET, POST"}
_METHOD_NOT_ALLOWED = _errors(
    "/graphql takes GET (queries, with a `query` parameter) and POST (a JSON body).",
    "method_not_allowed",
    405,
    _ALLOW,
)
_NOT_JSON = _errors(
    "Send the operation as Content-Type: application/json, a JSON object "
    '{"query": "...", "variables": {...}, "operationName": "..."}.',
    "unsupported_media_type",
    415,
)
_NOT_AN_OBJECT = _errors(
    'The body must be one JSON object: {"query": "...", "variables": {...}, '
    '"operationName": "..."}.',
    "invalid_input",
    400,
)
# The view's own refusals (strawberry raises them as HTTP errors with a text reason):
# the code of each status, and clearer words for some reasons.
_CODES = {400: "invalid_input", 404: "not_found", 405: "method_not_allowed",
          413: "payload_too_large", 415: "unsupported_media_type"}  # fmt: skip
_REASONS = {
    "Unable to parse request body as JSON": "The body (or the `variables` parameter) is "
    "not valid JSON.",
    "No GraphQL query found in the request": "The request has no `query`: send the "
    "operation's document as `query`.",
    "Batching is not enabled": "Send one operation per request: a JSON array (a batch) is "
    "not accepted.",
    "Not Found": "GraphiQL is off on this server: send operations with POST (or GET with "
    "a `query` parameter).",
    "subscriptions are not allowed when using POST": "A subscription over HTTP needs "
    "`Accept: text/event-stream` (GraphQL over SSE) or `Accept: "
    "multipart/mixed;subscriptionSpec=1.0` (multipart subscriptions); or use the websocket.",
    "subscriptions are not allowed when using GET": "A subscription over HTTP is a POST "
    "with `Accept: text/event-stream` or `Accept: multipart/mixed;subscriptionSpec=1.0`; "
    "or use the websocket.",
}


def _refusal(error: HTTPException) -> JSONResponse:
    """A JSON error reply for a request the GraphQL view refused (never plain text)."""
    message = _REASONS.get(error.reason, error.reason)
    headers = _ALLOW if error.status_code == 405 else None
    return _errors(message, _CODES.get(error.status_code, "invalid_input"),
                   error.status_code, headers)  # fmt: skip


def _malformed(scope: Scope, headers: Headers, body: bytes) -> JSONResponse | None:
    """The reply for a POST GraphQL cannot read, without decoding it: not JSON by its
    media type, or JSON that cannot be one object (a batch is left to the view, which
    names it)."""
    if scope["method"] != "POST":
        return None
    media = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if media != "application/json":
        return _NOT_JSON
    start = body.lstrip(b" \t\r\n")[:1]
    if start not in (b"{", b"["):
        return _NOT_AN_OBJECT
    return None


def _opens_graphiql(scope: Scope) -> bool:
    """Whether a request can only be for GraphiQL's page: a GET without a `query`
    parameter, as the view reads its parameters (decoded, so `%71uery=` is `query=`);
    any other request runs an operation and needs a credential."""
    params = QueryParams(scope.get("query_string", b""))
    # A GET with `extensions` only is an automatic persisted query's hash.
    return scope["method"] == "GET" and "query" not in params and "extensions" not in params


class GraphQLEndpoint:
    """The guard in front of the GraphQL view: per-IP rate limit, method (GET and POST
    only), request body size, authentication and per-principal rate limit, then the
    body's media type and shape, in that order. GraphiQL's page (a GET without a query)
    needs no credential; every operation does. Every refusal, the view's included, is
    GraphQL-shaped JSON with `extensions.code`. A websocket counts
    against the per-IP limit when it connects; the view authenticates it and counts its
    connection and each of its operations against the per-principal limit."""

    def __init__(self, view: GraphQLView, limits: RateLimits, settings: Settings) -> None:
        self.view = view
        self.limits = limits
        self.max_body = settings.max_body_bytes
        # A websocket's connection and every operation sent over it count as requests.
        view.rate_limit = limits.principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        address = client[0] if client else "unknown"
        if scope["type"] == "websocket":
            try:
                await self.limits.ip(address)
            except RateLimited as exc:
                ws = WebSocket(scope, receive, send)
                if "websocket.http.response" in scope.get("extensions", {}):
                    await ws.send_denial_response(_error_response(exc))
                else:
                    await ws.close(code=1008, reason="rate limited")
                return
            await self.view(scope, receive, send)
            return
        try:
            await self.limits.ip(address)
            if scope["method"] not in ("GET", "POST"):
                await _METHOD_NOT_ALLOWED(scope, receive, send)
                return
            body = await self._body(scope, receive)
            headers = Headers(scope=scope)
            if not _opens_graphiql(scope):
                credential = await self.view.services.authenticator.authenticate(
                    headers.get("authorization")
                )
                budget = await self.limits.principal(credential)
                state = scope.setdefault("state", {})
                state[CREDENTIAL] = credential
                state[RATE_BUDGET] = budget
        except FlowSyncError as exc:
            await _error_response(exc)(scope, receive, send)
            return
        malformed = _malformed(scope, headers, body)
        if malformed is not None:
            await malformed(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        # As the view's own ASGI entry, but its refusals answer JSON, not text.
        try:
            response = await self.view.run(Request(scope, replay))
        except HTTPException as exc:
            response = _refusal(exc)
        await response(scope, replay, send)

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        too_large = PayloadTooLarge(f"The request body is over the limit of {self.max_body} bytes.")
        length = Headers(scope=scope).get("content-length") or ""
        if length.isascii() and length.isdigit() and int(length) > self.max_body:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


class SchemaDocument:
    """`GET /graphql/schema.graphql`: the schema's SDL, under introspection's rules. Each
    request counts against the per-IP limit, needs a credential (401) and counts against
    its owner's limit, as any operation does; while introspection is off
    (`FLOWSYNC_INTROSPECTION`) the schema is not served (404). The reply carries an ETag
    (a repeat with `If-None-Match` answers 304); the body is text/plain."""

    def __init__(self, sdl: str, limits: RateLimits, services: Services) -> None:
        self.body = sdl.encode()
        self.etag = f'"{hashlib.sha256(self.body).hexdigest()[:32]}"'
        self.limits = limits
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        headers = Headers(scope=scope)
        try:
            await self.limits.ip(client[0] if client else "unknown")
            if scope["method"] not in ("GET", "HEAD"):
                await _errors(
                    "/graphql/schema.graphql takes GET only.", "method_not_allowed", 405,
                    {"Allow": "GET, HEAD"},
                )(scope, receive, send)  # fmt: skip
                return
            credential = await self.services.authenticator.authenticate(
                headers.get("authorization")
            )
            await self.limits.principal(credential)
            if not self.services.settings.introspection:
                raise NotFound(
                    "Introspection is off on this server, and the schema document with it "
                    "(FLOWSYNC_INTROSPECTION)."
                )
        except FlowSyncError as exc:
            await _error_response(exc)(scope, receive, send)
            return
        cache = {"ETag": self.etag, "Cache-Control": "no-cache"}
        if self.etag in {t.strip() for t in headers.get("if-none-match", "").split(",")}:
            await Response(status_code=304, headers=cache)(scope, receive, send)
            return
        body = b"" if scope["method"] == "HEAD" else self.body
        response = Response(body, media_type="text/plain; charset=utf-8", headers=cache)
        if scope["method"] == "HEAD":
            response.headers["Content-Length"] = str(len(self.body))
        await response(scope, receive, send)


def create_app(services: Services, *, live_events: bool = True) -> Starlette:
    """The ASGI app over already-built services; the caller owns their lifetime. The live
    events (LISTEN connection, watcher rows) start and stop with the app's lifespan."""
    settings = services.settings
    schema = build_schema(settings)
    view = GraphQLView(schema, services, allowed_documents(settings))
    if settings.graphiql and not explorer_enabled(settings):
        log.warning(
            "GraphiQL is off: FLOWSYNC_GRAPHQL_SAFELIST is set, and only registered "
            "operations run (see README: Automatic persisted queries)"
        )
    endpoint = GraphQLEndpoint(view, RateLimits(services.settings), services.settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        live = await LiveEvents.start(services) if live_events else None
        view.live = live
        app.state.live = live
        try:
            yield
        finally:
            view.live = None
            if live is not None:
                await live.stop()

    routes: list[BaseRoute] = [
        # Every method reaches the guard, which answers 405 in JSON to all but GET, POST.
        Route("/graphql", endpoint),
        WebSocketRoute("/graphql", endpoint),
        Route(
            "/graphql/schema.graphql",
            SchemaDocument(schema.as_str() + "\n", endpoint.limits, services),
        ),
    ]
    if explorer_enabled(settings):  # the files of GraphiQL's page
        routes.append(graphiql.assets())
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
    )
    app.state.services = services
    # A body that does not arrive in time is a 408 (inside the request metrics, which
    # count it).
    app.add_middleware(BodyReadTimeout, seconds=settings.body_read_timeout_seconds)
    # The REST face (with /api/health), /metrics, the OpenAPI document and HTTP request
    # metrics around every route: see rest_compat.install.
    rest_compat.install(app, rate_limits=endpoint.limits)
    mount_web(app, oidc=OidcSignIn.from_settings(services.settings))
    # A caller's traceparent, for the runs its request starts (passes through when off).
    app.add_middleware(TraceparentMiddleware)
    # A large body's request (a batch start) is collected less often (outermost: its
    # reply is encoded inside).
    app.add_middleware(LargeBodies)
    return app
