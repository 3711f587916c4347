"""`/api/observability/metrics` (the caller's JSON snapshot), `.../metrics/series` (the
same figures in time buckets), `/api/observability/audit`
(the caller's audit log) and `/metrics` (this process's metrics in the Prometheus text
format: the engine's, and HTTP requests per route template and status).

`/metrics` wants `Authorization: Bearer <FLOWSYNC_METRICS_TOKEN>`. With no token set it
answers 404 saying to set one, except under `metrics_open` (`flowsync dev` on a loopback
address): the metrics describe every tenant's traffic, so they are never open by
accident. It is not rate limited (scrapers call it often and it reads no database)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from flowsync import metrics as engine_metrics
from rest_compat import serialize
from rest_compat.http import (
    ApiRoute,
    authenticate,
    observability,
    paging,
    query_datetime,
    query_int,
    query_str,
    services,
)
from rest_compat.responses import json_response


async def metrics_snapshot(request: Request) -> Response:
    principal = await authenticate(request)
    snapshot = await observability(request).metrics(
        principal, window_seconds=query_int(request, "windowSeconds")
    )
    return json_response(serialize.metrics(snapshot))


async def metrics_series(request: Request) -> Response:
    principal = await authenticate(request)
    series = await observability(request).metrics_series(
        principal,
        window_seconds=query_int(request, "windowSeconds"),
        bucket_seconds=query_int(request, "bucketSeconds"),
    )
    return json_response(serialize.metrics_series(series))


async def audit_log(request: Request) -> Response:
    principal = await authenticate(request)
    found = await observability(request).audit_log(
        principal,
        action=query_str(request, "action"),
        entity_type=query_str(request, "entityType"),
        entity_id=query_str(request, "entityId"),
        actor=query_str(request, "actor"),
        since=query_datetime(request, "since"),
        until=query_datetime(request, "until"),
        **paging(request),
    )
    return json_response(serialize.page(found, serialize.audit))


async def prometheus(request: Request) -> Response:
    engine_metrics.check_scrape(services(request).settings, request.headers.get("authorization"))
    return Response(generate_latest(engine_metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[ApiRoute]:
    """The observability routes."""
    return [
        ApiRoute(
            "/api/observability/metrics", {"GET": metrics_snapshot}, name="observability_metrics"
        ),
        ApiRoute(
            "/api/observability/metrics/series",
            {"GET": metrics_series},
            name="observability_metrics_series",
        ),
        ApiRoute("/api/observability/audit", {"GET": audit_log}, name="observability_audit"),
        ApiRoute("/metrics", {"GET": prometheus}, name="prometheus", limit_ip=False),
    ]
