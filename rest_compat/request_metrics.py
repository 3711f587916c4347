"""HTTP request metrics for every route of the app (REST, GraphQL, /metrics): a count
and a latency histogram per method, route template and status, in FlowSync's registry.

The route template (`/api/workflows/{id}`, not the id itself) keeps the label set small;
a request no route matched is counted as `unmatched`. Websockets are not counted here.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowsync.metrics import REGISTRY

__all__ = ["HTTP_REQUESTS", "HTTP_REQUEST_DURATION", "RequestMetrics"]

HTTP_REQUESTS = Counter(
    "flowsync_http_requests_total",
    "HTTP requests answered, per method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "flowsync_http_request_duration_seconds",
    "Time to answer an HTTP request (until its reply started), per method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(scope: Scope) -> str:
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    return "unmatched"


class RequestMetrics:
    """ASGI middleware: times each HTTP request up to the start of its reply and counts
    it with its status (500 when the app failed before replying)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        elapsed: float | None = None

        async def sending(message: Message) -> None:
            nonlocal status, elapsed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                elapsed = time.perf_counter() - started
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = _route(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_DURATION.labels(method, route).observe(
                elapsed if elapsed is not None else time.perf_counter() - started
            )
