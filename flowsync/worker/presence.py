"""A worker process's row in `workers`: written at start, refreshed by every lease
heartbeat (one statement, off the per-step path), deleted on a clean exit. A crashed
worker's row stays until its heartbeat is old enough to be pruned by the next worker
that starts (the API lists dead workers for `DEAD_LISTED_SECONDS` after their last
heartbeat)."""

from __future__ import annotations

import os
import socket

import asyncpg

from flowsync.worker.queue import Connection

# How long a dead worker's row stays listed, and when a starting worker prunes it.
DEAD_LISTED_SECONDS = 600

_BEAT = """
INSERT INTO workers AS w (id, hostname, pid, concurrency, running, heartbeat_ms)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (id) DO UPDATE
   SET running = excluded.running, last_heartbeat_at = now()
"""
_PRUNE = "DELETE FROM workers WHERE last_heartbeat_at < now() - make_interval(secs => $1)"
_LEAVE = "DELETE FROM workers WHERE id = $1"


class Presence:
    """What the workers table says about one worker process."""

    def __init__(
        self, pool: asyncpg.Pool, worker_id: str, *, concurrency: int, heartbeat_seconds: float
    ) -> None:
        self._pool = pool
        self.worker_id = worker_id
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.concurrency = concurrency
        self._heartbeat_ms = max(1, round(heartbeat_seconds * 1000))

    async def join(self) -> None:
        """Write this worker's row (and prune rows of workers dead for long)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_PRUNE, float(DEAD_LISTED_SECONDS))
            await self._beat(conn, 0)

    async def beat(self, running: int, conn: Connection | None = None) -> None:
        """Refresh the heartbeat with the steps in flight (the row is written again if it
        was lost); through `conn` when given (the worker's chore connection)."""
        if conn is not None:
            await self._beat(conn, running)
            return
        async with self._pool.acquire() as pooled:
            await self._beat(pooled, running)

    async def leave(self) -> None:
        """Delete this worker's row: it stopped cleanly."""
        await self._pool.execute(_LEAVE, self.worker_id)

    async def _beat(self, conn: Connection, running: int) -> None:
        await conn.execute(
            _BEAT, self.worker_id, self.hostname, self.pid, self.concurrency, running,
            self._heartbeat_ms,
        )  # fmt: skip
