"""How long a lost worker can hold anything up: its sessions' limits, from its lease.

A worker host that vanishes (power, network) in the middle of a transaction leaves its
session `idle in transaction`, holding row locks, with its TCP connection open as far
as PostgreSQL knows. Claims and reclaims skip locked rows, so its jobs would not come
back until something ends that session. Every connection of a worker therefore carries
limits derived from its lease (`FLOWSYNC_LEASE_SECONDS`, L, and
`FLOWSYNC_HEARTBEAT_SECONDS`, H), set once per connection as server settings:

- `idle_in_transaction_session_timeout` = min(L/2, L - H), at least 1 s: a session that
  sits inside a transaction that long is ended by PostgreSQL and its locks released,
  before the lease of any job it held (last extended at most H before the host was
  lost) runs out. A worker's transactions wait only on the database, never on a step,
  the network or a timer, so a live worker never comes near it.
- `lock_timeout`, the same: a statement waiting that long for a row lock gives up (the
  worker retries it): the lock's holder is lost or stuck, and by then it is ended.
- `statement_timeout` = L: no worker statement runs as long as a lease.
- `tcp_keepalives_idle` = L/4, `tcp_keepalives_interval` = L/8 (each at least 1 s),
  `tcp_keepalives_count` = 3 and `tcp_user_timeout` to match: PostgreSQL notices a dead
  client (an idle session, a LISTEN connection) within about L/2 + L/4, not the two
  hours of the operating system's default keepalive. (Ignored over Unix sockets.)

So a worker lost mid-transaction delays its runs by at most L + `FLOWSYNC_RECLAIM_SECONDS`
(25 s by default), as a worker lost between transactions does.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from flowsync.config import to_asyncpg_dsn
from flowsync.db.connect import connect
from flowsync.db.pooler import Pooler, asyncpg_options

__all__ = ["ChoreConnection", "LeaseTimes"]

# Lost keepalive probes after which the server drops a connection.
KEEPALIVE_COUNT = 3


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


@dataclass(frozen=True, slots=True)
class LeaseTimes:
    """A worker's lease and heartbeat, and the session limits they imply."""

    lease_seconds: float = 20.0
    heartbeat_seconds: float = 5.0

    @property
    def idle_seconds(self) -> float:
        """The longest one of the worker's sessions may sit inside a transaction."""
        lease, beat = self.lease_seconds, self.heartbeat_seconds
        return max(1.0, min(lease / 2, lease - beat))

    @property
    def lock_seconds(self) -> float:
        """The longest one statement waits for a lock."""
        return self.idle_seconds

    @property
    def statement_seconds(self) -> float:
        """The longest one statement runs."""
        return max(1.0, self.lease_seconds)

    @property
    def keepalive_idle(self) -> int:
        """Seconds of silence before the server probes the client."""
        return max(1, math.floor(self.lease_seconds / 4))

    @property
    def keepalive_interval(self) -> int:
        """Seconds between unanswered probes."""
        return max(1, math.floor(self.lease_seconds / 8))

    @property
    def dead_client_seconds(self) -> int:
        """How soon the server drops the connection of a host gone from the network."""
        return self.keepalive_idle + KEEPALIVE_COUNT * self.keepalive_interval

    def keepalive_settings(self) -> dict[str, str]:
        """The server settings that detect a dead client (for any worker connection,
        the LISTEN one included)."""
        return {
            "tcp_keepalives_idle": str(self.keepalive_idle),
            "tcp_keepalives_interval": str(self.keepalive_interval),
            "tcp_keepalives_count": str(KEEPALIVE_COUNT),
            # Data sent and not acknowledged for this long (a reply to a host gone)
            # ends the connection too.
            "tcp_user_timeout": _ms(self.dead_client_seconds),
        }

    def chore_limits(self) -> dict[str, str]:
        """The limits of a worker process's connections that run no step (the cron
        scheduler's, retention's): a lost host's session ends within seconds, and with
        it any row lock it held inside a transaction (a due trigger's, which the other
        schedulers skip). No statement or lock limit: those chores may wait their turn."""
        return {
            "idle_in_transaction_session_timeout": _ms(self.idle_seconds),
            **self.keepalive_settings(),
        }

    def server_settings(self) -> dict[str, str]:
        """Every limit, as asyncpg `server_settings` of a worker's connections."""
        return {
            "idle_in_transaction_session_timeout": _ms(self.idle_seconds),
            "lock_timeout": _ms(self.lock_seconds),
            "statement_timeout": _ms(self.statement_seconds),
            **self.keepalive_settings(),
        }


class ChoreConnection:
    """The worker's own connection for its heartbeats and reclaims, apart from the pool
    its steps use: a heartbeat never waits for a pooled connection held by a step that
    waits for a lock. Opened on first use and again after it is lost; one chore uses it
    at a time."""

    def __init__(
        self, url: str, times: LeaseTimes, application_name: str, pooler: Pooler = "none"
    ) -> None:
        self._dsn = to_asyncpg_dsn(url)
        settings = {"application_name": application_name, **times.server_settings()}
        self._options = asyncpg_options(pooler, settings)
        self._timeout = times.statement_seconds
        self._lock = asyncio.Lock()
        self._conn: asyncpg.Connection | None = None

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[asyncpg.Connection]:
        """The connection, for one chore; closed when the chore fails on it, so that the
        next one starts on a fresh connection."""
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._conn = await connect(self._dsn, timeout=self._timeout, **self._options)
            conn = self._conn
            try:
                yield conn
            except BaseException:
                self._conn = None
                conn.terminate()
                raise

    async def close(self) -> None:
        """Close the connection, if open."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()
