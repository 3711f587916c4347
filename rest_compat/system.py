"""`/api/health`, `/api/ready`, `/api/queue` and `/api/scheduler/status`.

Health and ready need no credential and are never rate limited (probes call them often).
`/api/health` without a `probe` parameter, or with `probe=ready`, answers 200 when the
database answers and its schema is at head, else 503 (a listener that is down only
degrades it). `probe=live` is the liveness probe: 200 as long as the process answers,
without touching the database. `/api/ready` is the strict readiness probe a load
balancer wants: 200 only when the database answers, its schema is at head and the
live-event listener is connected (subscriptions are live), else 503 naming what is not.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from flowsync.errors import InvalidInput, Problem
from rest_compat import serialize
from rest_compat.http import ApiRoute, authenticate, observability, query_str, services
from rest_compat.responses import json_response


def _listener_connected(request: Request) -> bool | None:
    """The listener's state; None: this process runs none (no live events, or it polls)."""
    live = getattr(request.app.state, "live", None)
    if live is None:
        return None
    connected: bool | None = live.backend.listener_state
    return connected


async def health(request: Request) -> Response:
    probe = query_str(request, "probe")
    probe = "ready" if probe is None else probe
    if probe not in ("ready", "live"):
        raise InvalidInput(
            "The probe must be `ready` or `live`.", [Problem("probe", "must be ready or live")]
        )
    if probe == "live":
        return json_response({"status": "ok", "live": True})
    report = await observability(request).health(_listener_connected(request))
    return json_response(serialize.health(report), 200 if report.ready else 503)


async def ready(request: Request) -> Response:
    report = await observability(request).health(_listener_connected(request))
    return json_response(serialize.readiness(report), 503 if report.unready else 200)


async def queue(request: Request) -> Response:
    principal = await authenticate(request)
    return json_response(serialize.queue(await observability(request).queue(principal)))


async def scheduler_status(request: Request) -> Response:
    principal = await authenticate(request)
    status = await services(request).triggers.scheduler_status(principal)
    return json_response(serialize.scheduler(status))


def routes() -> list[ApiRoute]:
    """Health, readiness, queue and scheduler routes."""
    return [
        ApiRoute("/api/health", {"GET": health}, name="health", limit_ip=False),
        ApiRoute("/api/ready", {"GET": ready}, name="ready", limit_ip=False),
        ApiRoute("/api/queue", {"GET": queue}, name="queue"),
        ApiRoute("/api/scheduler/status", {"GET": scheduler_status}, name="scheduler_status"),
    ]
