"""FlowSync's metrics, recorded with prometheus-client in one registry per process.

Engine metrics are recorded where the work happens (a worker records the steps it ran, an
API process the executions it started); each process exposes its own: an API process at
`/metrics`, a `flowsync worker` on a port of its own (`--metrics-port`, see
`MetricsEndpoint`), both under the same token rule (`check_scrape`).

Label values are bounded by FlowSync itself, never by what tenants create: statuses,
outcomes, node types (the registered handlers), HTTP methods, route templates and status
codes. No workflow, execution or owner id is a label: those grow without bound (one time
series each, kept for the life of the process) and tell whoever scrapes about every
tenant's workflows. `LABELS` lists the label names allowed; a test holds every metric to
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
from collections.abc import Iterator

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp

from flowsync.config import Settings
from flowsync.errors import (
    ConfigurationError,
    FlowSyncError,
    NotFound,
    Unauthenticated,
    http_status,
)
from flowsync.services.auth import bearer_token

log = logging.getLogger("flowsync.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)

# Every label name a FlowSync metric may carry; each has a small, fixed set of values.
LABELS = frozenset({"status", "node_type", "outcome", "method", "route"})

EXECUTIONS_STARTED = Counter(
    "flowsync_executions_started_total",
    "Executions started.",
    registry=REGISTRY,
)
EXECUTIONS_FINISHED = Counter(
    "flowsync_executions_finished_total",
    "Executions that ended, per final status (COMPLETED, FAILED, CANCELLED).",
    ["status"],
    registry=REGISTRY,
)
STEP_DURATION = Histogram(
    "flowsync_step_duration_seconds",
    "Time a step's handler ran, per node type.",
    ["node_type"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "flowsync_queue_depth",
    "Jobs due and waiting to be claimed, as last measured by this process.",
    registry=REGISTRY,
)
WORKER_BACKLOG = Gauge(
    "flowsync_worker_backlog_steps",
    "Steps kept by this process's worker, not started yet: the other branches of forks "
    "it took a branch of, leased to it (see FLOWSYNC_WORKER_BACKLOG).",
    registry=REGISTRY,
)
JOBS_CLAIMED = Counter(
    "flowsync_jobs_claimed_total", "Jobs claimed from the queue.", registry=REGISTRY
)
JOBS_COMPLETED = Counter(
    "flowsync_jobs_completed_total",
    "Jobs finished, per outcome (completed, waiting, retrying, failed, lease_lost).",
    ["outcome"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "flowsync_step_retries_total", "Failed attempts that will be retried.", registry=REGISTRY
)
DEAD_LETTERS = Counter(
    "flowsync_dead_letters_total", "Jobs moved to the dead-letter queue.", registry=REGISTRY
)
BACKPRESSURE_REFUSALS = Counter(
    "flowsync_backpressure_refusals_total",
    "Executions refused because the queue was deeper than its limit.",
    registry=REGISTRY,
)


def check_scrape(settings: Settings, authorization: str | None) -> None:
    """Raise unless a scrape with this `Authorization` header may read the metrics: with
    `FLOWSYNC_METRICS_TOKEN` set it must be `Bearer <that token>` (`Unauthenticated`);
    with none set the metrics are off (`NotFound` naming the setting) unless
    `metrics_open`. The metrics describe every tenant's traffic: never open by accident."""
    token = settings.metrics_token
    if token is None and not settings.metrics_open:
        raise NotFound(
            "/metrics is off: set FLOWSYNC_METRICS_TOKEN and scrape with "
            "`Authorization: Bearer <that token>`."
        )
    if token is not None:
        given = bearer_token(authorization)
        if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            raise Unauthenticated("The bearer token is not this server's metrics token.")


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process it serves in handles them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MetricsEndpoint:
    """This process's metrics on a port of its own (`flowsync worker --metrics-port`):
    `GET /metrics` in the Prometheus text format, under `check_scrape`'s rule. Get one
    from `MetricsEndpoint.start`; `stop()` closes it."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], url: str) -> None:
        self._server, self._task = server, task
        self.url = url

    @classmethod
    async def start(cls, settings: Settings, host: str, port: int) -> MetricsEndpoint:
        """Listen on host:port (0: a free port; `url` says which). Raises
        `ConfigurationError` when it cannot listen, or when no token is set (and the
        metrics are not `metrics_open`): an endpoint that refuses every scrape is a
        mistake to report at start."""
        if settings.metrics_token is None and not settings.metrics_open:
            raise ConfigurationError(
                "The worker's metrics port needs FLOWSYNC_METRICS_TOKEN (scrape with "
                "`Authorization: Bearer <that token>`)."
            )
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as exc:
            raise ConfigurationError(
                f"The metrics endpoint cannot listen on {host}:{port} ({exc}): set "
                "FLOWSYNC_WORKER_METRICS_HOST and FLOWSYNC_WORKER_METRICS_PORT (0: any "
                "free port)."
            ) from exc
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        config = uvicorn.Config(
            _scrape_app(settings),
            log_config=None,
            access_log=False,  # a scrape every few seconds would drown the worker's log
            lifespan="off",
            log_level=settings.log_level,
        )
        server = _QuietServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # listening once this returns
            if task.done():
                task.result()  # its exception, if any
                raise ConfigurationError(f"The metrics endpoint on {host}:{bound} did not start.")
            await asyncio.sleep(0.01)
        endpoint = cls(server, task, f"http://{shown}:{bound}/metrics")
        log.info("metrics at %s", endpoint.url, extra={"metricsUrl": endpoint.url})
        return endpoint

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _scrape_app(settings: Settings) -> ASGIApp:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def scrape(request: Request) -> Response:
        try:
            check_scrape(settings, request.headers.get("authorization"))
        except FlowSyncError as exc:
            body = {"error": {"code": exc.code, "message": exc.message, "details": []}}
            return JSONResponse(body, status_code=http_status(exc))
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])
