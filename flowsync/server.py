"""Running FlowSync's processes: `flowsync dev` (database, migrations, API and a worker in
one process) and `flowsync worker`."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from flowsync import eventloop, tracing
from flowsync.app import create_app
from flowsync.config import Settings
from flowsync.db.migrate import upgrade
from flowsync.db.pooler import listen_url
from flowsync.db.preflight import check_schema, check_secret_key
from flowsync.errors import ConfigurationError, Unauthenticated
from flowsync.logs import RequestIdMiddleware, announce, progress
from flowsync.metrics import MetricsEndpoint
from flowsync.runtime import database, database_url
from flowsync.scheduler.scheduler import Scheduler
from flowsync.schema.safelist import allowed_documents
from flowsync.secrets_crypto import ensure_dev_secret_key, keyring_from_settings
from flowsync.services.container import Services, build_services
from flowsync.services.principal import Principal
from flowsync.serving import ServerConfig
from flowsync.worker.liveness import LeaseTimes
from flowsync.worker.queue import create_pool
from flowsync.worker.registry import registry_from_settings
from flowsync.worker.runner import Worker

if TYPE_CHECKING:
    from flowsync.db.embedded import EmbeddedPostgres

log = logging.getLogger("flowsync")


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the signal after a graceful shutdown (that
    would kill the process before the worker and the embedded database stop), calling
    `on_started` once it listens."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


def _exit_on_sigterm() -> None:
    """Until the event loop takes over, SIGTERM unwinds like Ctrl-C, so that `finally`
    blocks (stopping the embedded database) run."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)


def lease_times(settings: Settings) -> LeaseTimes:
    """The lease a worker's connections are limited by (flowsync.worker.liveness)."""
    return LeaseTimes(settings.lease_seconds, settings.heartbeat_seconds)


def make_worker(settings: Settings, url: str, pool: object, concurrency: int) -> Worker:
    """A worker configured from settings."""
    return Worker(
        url,
        pool,  # type: ignore[arg-type]
        registry_from_settings(settings),
        concurrency=concurrency,
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        poll_seconds=settings.poll_seconds,
        reclaim_seconds=settings.reclaim_seconds,
        grace_seconds=settings.shutdown_grace_seconds,
        start_seconds=settings.step_start_seconds,
        backlog=settings.worker_backlog,
        backlog_seconds=settings.worker_backlog_seconds,
        max_workflow_depth=settings.max_workflow_depth,
        keyring=keyring_from_settings(settings),
        pooler=settings.database_pooler,
        listen_url=settings.listen_database_url,
        poll_only=listen_url(settings, url) is None,
    )


# The embedded database is checked this often; a failed restart is tried again after
# twice as long each time (up to REVIVE_MAX_DELAY), REVIVE_ATTEMPTS times in a row.
REVIVE_CHECK_SECONDS = 1.0
REVIVE_MAX_DELAY = 30.0
REVIVE_ATTEMPTS = 8


async def watch_embedded(embedded: EmbeddedPostgres, give_up: Callable[[], None]) -> None:
    """Keep the embedded PostgreSQL running: when its postmaster died, start it again
    (logged), retrying with backoff; after REVIVE_ATTEMPTS failures in a row, log why and
    call `give_up` (dev then exits non-zero, so that a supervisor restarts it)."""
    failures = 0
    delay = REVIVE_CHECK_SECONDS
    while True:
        await asyncio.sleep(delay)
        try:
            revived = await asyncio.to_thread(embedded.revive)
        except ConfigurationError as exc:
            failures += 1
            if failures >= REVIVE_ATTEMPTS:
                log.error("the embedded PostgreSQL is down and %d restarts failed; exiting "
                          "with status 1 so that a supervisor can restart FlowSync: %s",
                          failures, exc)  # fmt: skip
                give_up()
                return
            delay = min(REVIVE_CHECK_SECONDS * 2**failures, REVIVE_MAX_DELAY)
            log.warning("the embedded PostgreSQL is down; restart %d of %d failed, next "
                        "in %.0f s: %s", failures, REVIVE_ATTEMPTS, delay, exc)  # fmt: skip
            continue
        if revived:
            log.warning("the embedded PostgreSQL had stopped (its postmaster died); "
                        "restarted it after %d failed attempt(s)", failures)  # fmt: skip
        failures, delay = 0, REVIVE_CHECK_SECONDS


def _banner(settings: Settings, key: str, log_file: Path | None) -> None:
    """The last thing `flowsync dev` prints, once it listens: where everything is."""
    base = f"http://{settings.host}:{settings.port}"
    graphiql = " (GraphiQL: open it in a browser)" if settings.graphiql else ""
    where_log = f"{log_file} (`flowsync dev --verbose` shows it here)" if log_file else "above"
    announce(
        settings,
        f"\nFlowSync is ready. Ctrl-C stops it."
        f"\nFlowSync GraphQL: {base}/graphql{graphiql}"
        f"\nREST: {base}/api (try it at {base}/api/docs)"
        f"\nAPI key (owner local:dev): {key}"
        f'\n  header: {{"Authorization": "Bearer {key}"}}'
        # In the fragment: a browser never sends it, so no request line or log has it.
        f"\nDashboard: {base}/ui/#key={key}"
        f"\nLog: {where_log}\n",
        "FlowSync is ready",
        graphql=f"{base}/graphql",
        rest=f"{base}/api",
        health=f"{base}/api/health",
        dashboard=f"{base}/ui/#key={key}",
        apiKey=key,
        owner="local:dev",
        logFile=str(log_file) if log_file else None,
    )


async def _serve(
    settings: Settings,
    url: str,
    with_worker: bool,
    embedded: EmbeddedPostgres | None = None,
    log_file: Path | None = None,
) -> int:
    """Serve until SIGINT or SIGTERM (0), or until the embedded database cannot be
    restarted (1): the exit status. The banner (with the dev API key) is printed once
    the server listens; `log_file` is where it says the log is."""
    tracing.start()
    services = await build_services(settings, url)
    worker: Worker | None = None
    worker_task: asyncio.Task[None] | None = None
    scheduler: Scheduler | None = None
    scheduler_task: asyncio.Task[None] | None = None
    watchdog: asyncio.Task[None] | None = None
    status = 0
    try:
        if settings.scheduler_enabled:
            scheduler = Scheduler.from_settings(settings, url, services.executions)
            scheduler_task = asyncio.create_task(scheduler.run())
        if with_worker:
            worker_pool = await create_pool(
                url, max_size=8, application_name="flowsync-worker", worker=lease_times(settings),
                pooler=settings.database_pooler,
            )  # fmt: skip
            worker = make_worker(settings, url, worker_pool, settings.worker_concurrency)
            worker_task = asyncio.create_task(worker.run())
        app = RequestIdMiddleware(create_app(services))
        config = ServerConfig(
            app,
            send_timeout_seconds=settings.send_timeout_seconds,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            log_config=None,  # its records go through FlowSync's handlers (flowsync/logs.py)
            # Subscription messages are small; per-connection deflate state costs far more
            # memory (hundreds of KiB per websocket) and CPU than it saves in bytes.
            ws_per_message_deflate=False,
            ws_max_size=settings.max_body_bytes,
        )
        key = await dev_api_key(services, settings.data_dir / DEV_KEY_FILE)
        server = _Server(config, lambda: _banner(settings, key, log_file))
        progress("Starting the API on http://%s:%s", settings.host, settings.port)
        if embedded is not None:

            def give_up() -> None:
                nonlocal status
                status = 1
                server.should_exit = True

            watchdog = asyncio.create_task(watch_embedded(embedded, give_up))
        eventloop.settle_heap()
        await server.serve()
    finally:
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        if scheduler is not None and scheduler_task is not None:
            scheduler.stop()
            await scheduler_task
        if worker is not None and worker_task is not None:
            worker.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
            await worker.pool.close()
        await services.close()
        tracing.shutdown()
    return status


DEV_KEY_FILE = "dev-api-key"


def _read_key(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _write_key(path: Path, secret: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(secret + "\n")
    except OSError as exc:
        log.warning("could not keep the dev API key in %s: %s", path, exc)


async def dev_api_key(services: Services, path: Path) -> str:
    """The API key `flowsync dev` prints: the one kept in `path` (mode 0600) while it
    still authenticates against this database, else a new key of the owner `local:dev`,
    written there. So the key in a browser tab survives restarts of `flowsync dev`."""
    kept = await asyncio.to_thread(_read_key, path)
    if kept:
        with contextlib.suppress(Unauthenticated):
            await services.api_keys.authenticate(kept)
            return kept
    owner = await services.api_keys.ensure_owner("local:dev", "dev")
    issued = await services.api_keys.create(Principal(owner, "cli"), "flowsync dev")
    await asyncio.to_thread(_write_key, path, issued.secret)
    return issued.secret


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


DEV_LOG_FILE = "logs/dev.log"  # a folder of its own: rotation adds dev.log.1 to .3


def run_dev(settings: Settings, log_file: Path | None = None) -> int:
    """Start (or reuse) the database, migrate it and serve the API with a worker until
    SIGINT or SIGTERM; the embedded database is stopped on the way out. GraphiQL and
    introspection are on unless configured otherwise. `log_file`: where the detail of
    the log goes (the banner names it)."""
    _exit_on_sigterm()
    allowed_documents(settings)  # a bad safelist stops here, before the database starts
    explorer = {
        k: True for k in ("graphiql", "introspection") if k not in settings.model_fields_set
    }
    # /metrics without a token only where no one else can reach it.
    if "metrics_open" not in settings.model_fields_set and _loopback(settings.host):
        explorer["metrics_open"] = True
    # No key configured: one kept in the data folder, so that secrets need no setup.
    settings = ensure_dev_secret_key(settings.model_copy(update=explorer))
    with database(settings, start=True) as (url, embedded):
        progress("Migrating the database schema")
        upgrade(url)
        check_secret_key(settings, url)
        serving = _serve(settings, url, settings.dev_worker, embedded, log_file)
        status: int = eventloop.run(serving, settings.event_loop)
    if status == 0:
        progress("FlowSync stopped")
    else:
        progress("FlowSync stopped (exit status %d)", status)
    return status


async def _work(settings: Settings, url: str, concurrency: int) -> None:
    tracing.start()  # an unknown OTEL_TRACES_EXPORTER stops the worker here
    pool = await create_pool(
        url,
        min_size=2,
        max_size=max(4, min(concurrency + 2, 20)),
        application_name="flowsync-worker",
        worker=lease_times(settings),
        pooler=settings.database_pooler,
    )
    worker = make_worker(settings, url, pool, concurrency)
    endpoint: MetricsEndpoint | None = None
    if settings.worker_metrics_port is not None:
        try:
            endpoint = await MetricsEndpoint.start(
                settings, settings.worker_metrics_host, settings.worker_metrics_port
            )
        except BaseException:
            await pool.close()
            raise
    # The cron scheduler runs beside the worker and stops when the worker has stopped.
    scheduler = Scheduler.standalone(settings, url, pool) if settings.scheduler_enabled else None
    scheduler_task = asyncio.create_task(scheduler.run()) if scheduler is not None else None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    eventloop.settle_heap()
    try:
        await worker.run()
    finally:
        if scheduler is not None and scheduler_task is not None:
            scheduler.stop()
            await scheduler_task
        if endpoint is not None:
            await endpoint.stop()
        await pool.close()
        tracing.shutdown()  # the spans still buffered are sent before the process ends


def run_worker(settings: Settings, concurrency: int) -> int:
    """A worker process: runs steps until SIGTERM or SIGINT, then finishes or gives back
    its jobs and exits 0."""
    # Workers do not migrate: `flowsync migrate` (or `dev`) owns the schema, so that many
    # workers starting at once never race to change it.
    _exit_on_sigterm()
    with database_url(settings) as url:
        check_schema(settings, url)
        eventloop.run(_work(settings, url, concurrency), settings.event_loop)
    return 0
