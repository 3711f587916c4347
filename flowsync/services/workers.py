"""The worker processes and their heartbeats, as the `workers` table has them.

Workers belong to no tenant: any authenticated caller may list them. The list shows
what a process is (id, hostname, pid, concurrency, steps in flight, start and last
heartbeat), never what it runs for whom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from flowsync.services.principal import Principal, require
from flowsync.worker.presence import DEAD_LISTED_SECONDS

# A worker is alive while its last heartbeat is younger than this many of its intervals.
ALIVE_HEARTBEATS = 3
# The most rows one list returns (the table holds one per process of the last minutes).
MAX_WORKERS = 1000

_LIST = """
SELECT id, hostname, pid, concurrency, running, heartbeat_ms, started_at, last_heartbeat_at,
       last_heartbeat_at > now() - make_interval(secs => heartbeat_ms * $1 / 1000.0) AS alive
  FROM workers
 WHERE last_heartbeat_at > now() - make_interval(secs => $2)
    OR last_heartbeat_at > now() - make_interval(secs => heartbeat_ms * $1 / 1000.0)
 ORDER BY started_at DESC, id
 LIMIT $3
"""


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker process: `running` is its steps in flight at its last heartbeat;
    `alive` is False once it missed three heartbeats (it crashed or hangs)."""

    id: str
    hostname: str
    pid: int
    concurrency: int
    running: int
    heartbeat_seconds: float
    started_at: datetime
    last_heartbeat_at: datetime
    alive: bool


class WorkerService:
    """Reads the workers table."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(self, principal: Principal) -> list[WorkerInfo]:
        """Live workers and those dead for less than ten minutes, newest first. Any
        authenticated principal may call it (workers are shared by every tenant)."""
        require(principal, "WorkerService.list")
        rows = await self._pool.fetch(
            _LIST, float(ALIVE_HEARTBEATS), float(DEAD_LISTED_SECONDS), MAX_WORKERS
        )
        return [
            WorkerInfo(
                id=r["id"], hostname=r["hostname"], pid=r["pid"], concurrency=r["concurrency"],
                running=r["running"], heartbeat_seconds=r["heartbeat_ms"] / 1000,
                started_at=r["started_at"], last_heartbeat_at=r["last_heartbeat_at"],
                alive=r["alive"],
            )
            for r in rows
        ]  # fmt: skip
