"""Running FlowSync's processes: `flowsync dev` (database, migrations, API and a worker in
one process) and `flowsync worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator

import uvicorn

from flowsync.app import create_app
from flowsync.config import Settings
from flowsync.db.migrate import upgrade
from flowsync.runtime import database_url
from flowsync.services.container import build_services
from flowsync.worker.queue import create_pool
from flowsync.worker.registry import registry_from_settings
from flowsync.worker.runner import Worker

log = logging.getLogger("flowsync")


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the signal after a graceful shutdown (that
    would kill the process before the worker and the embedded database stop)."""

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
    )


async def _serve(settings: Settings, url: str, with_worker: bool) -> None:
    services = await build_services(settings, url)
    worker: Worker | None = None
    worker_task: asyncio.Task[None] | None = None
    try:
        if with_worker:
            worker_pool = await create_pool(
                url, max_size=8, application_name="flowsync-worker", worker=True
            )
            worker = make_worker(settings, url, worker_pool, settings.worker_concurrency)
            worker_task = asyncio.create_task(worker.run())
        app = create_app(services)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, log_level=settings.log_level
        )
        server = _Server(config)
        log.info("FlowSync is at http://%s:%s/api/health", settings.host, settings.port)
        await server.serve()
    finally:
        if worker is not None and worker_task is not None:
            worker.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await worker_task
            await worker.pool.close()
        await services.close()


def run_dev(settings: Settings) -> int:
    """Start (or reuse) the database, migrate it and serve the API with a worker until
    SIGINT or SIGTERM; the embedded database is stopped on the way out."""
    _exit_on_sigterm()
    with database_url(settings) as url:
        upgrade(url)
        asyncio.run(_serve(settings, url, with_worker=settings.dev_worker))
    return 0


async def _work(settings: Settings, url: str, concurrency: int) -> None:
    pool = await create_pool(
        url,
        min_size=2,
        max_size=max(4, min(concurrency + 2, 20)),
        application_name="flowsync-worker",
        worker=True,
    )
    worker = make_worker(settings, url, pool, concurrency)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    try:
        await worker.run()
    finally:
        await pool.close()


def run_worker(settings: Settings, concurrency: int) -> int:
    """A worker process: runs steps until SIGTERM or SIGINT, then finishes or gives back
    its jobs and exits 0."""
    # Workers do not migrate: `flowsync migrate` (or `dev`) owns the schema, so that many
    # workers starting at once never race to change it.
    _exit_on_sigterm()
    with database_url(settings) as url:
        asyncio.run(_work(settings, url, concurrency))
    return 0
