"""The REST compatibility face: the original FlowSync routes (api.md) over the same
service layer as GraphQL, the observability routes, `/metrics`, the OpenAPI document and
its docs page.

The app mounts it with `install(app, rate_limits=...)`: the routes, a JSON 404 for any
other path under /api, and the HTTP request metrics middleware. The routes read the
service layer from `app.state.services` and, when the app has them, the live events from
`app.state.live` (health's listener check). Routes only translate: authorisation, owner
scoping, validation and audit entries happen in the services.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from rest_compat import (
    api_keys,
    dead_letters,
    executions,
    members,
    node_types,
    observability,
    openapi,
    secrets,
    system,
    triggers,
    webhooks,
    workers,
    workflows,
)
from rest_compat.errors import route_not_found
from rest_compat.http import RateLimiter
from rest_compat.request_metrics import RequestMetrics

__all__ = ["RateLimiter", "RequestMetrics", "install", "routes"]


class _ApiNotFound(BaseRoute):
    """A JSON 404 for any path under /api that no route serves. It matches only
    partially, so that a route that has the path but not the method (405) wins."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == "/api" or path.startswith("/api/")):
            return Match.PARTIAL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await route_not_found(scope.get("path", ""))(scope, receive, send)


def routes() -> list[BaseRoute]:
    """Every REST route, then a JSON 404 for the rest of /api (so it must come after any
    other /api route of the app)."""
    return [
        *workflows.routes(),
        *executions.routes(),
        *triggers.routes(),
        *webhooks.routes(),
        *system.routes(),
        *api_keys.routes(),
        *members.routes(),
        *secrets.routes(),
        *dead_letters.routes(),
        *workers.routes(),
        *node_types.routes(),
        *observability.routes(),
        *openapi.routes(),
        _ApiNotFound(),
    ]


def install(app: Starlette, *, rate_limits: RateLimiter | None = None) -> None:
    """Add the REST face to `app`: its routes after the app's own, the rate limits the
    routes apply (per IP, and per principal once authenticated), and request metrics
    around the whole app. Call before the app serves its first request."""
    app.router.routes.extend(routes())
    if rate_limits is not None:
        app.state.rate_limits = rate_limits
    app.add_middleware(RequestMetrics)
