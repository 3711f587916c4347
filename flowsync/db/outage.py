"""A request that lost its database: the errors that mean no server accepting writes
could be reached (connection refused or reset, a server shutting down, crashed or still
in recovery, a multi-host URL whose servers are all standbys for now), as during a
restart or a failover, become the `DatabaseUnavailable` (503, Retry-After) both faces
answer with, instead of a bare 500.

The pools need nothing more to recover: SQLAlchemy's engine pings a connection before
use and discards a dead one, and asyncpg's pool replaces a connection that was closed
under it; the next connection tries every host of the URL again (see
`flowsync.config.to_asyncpg_dsn`)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError

from flowsync.errors import DatabaseUnavailable

__all__ = ["as_unavailable"]

_LOST = (
    ConnectionError,  # refused, reset, aborted, broken pipe
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or does not exist
    asyncpg.TargetServerAttributeNotMatched,  # every host is a standby (mid-failover)
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,  # 57P01: the server is shutting down
    asyncpg.exceptions.CrashShutdownError,  # 57P02: the server crashed
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up, or in recovery
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006: a standby took the session
    asyncpg.exceptions.TooManyConnectionsError,  # 53300: no connection to spare right now
)


def as_unavailable(error: BaseException) -> DatabaseUnavailable | None:
    """The DatabaseUnavailable for an error a lost database caused (directly, or as the
    cause of what SQLAlchemy raised); None for any other error."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or len(seen) > 16:
            continue
        seen.add(id(current))
        lost = isinstance(current, _LOST) or (
            isinstance(current, DBAPIError) and current.connection_invalidated
        )
        if lost or (
            isinstance(current, asyncpg.InterfaceError) and "connection is closed" in str(current)
        ):
            unavailable = DatabaseUnavailable(
                "The database cannot be reached now (it restarts, fails over to a "
                "standby, or has no connection to spare): nothing was started or changed "
                "unless a retry says so. Retry "
                "in a moment, with the same Idempotency-Key for a start."
            )
            unavailable.__cause__ = current
            return unavailable
        orig = getattr(current, "orig", None)
        pending += [
            orig if isinstance(orig, BaseException) else None,
            current.__cause__,
            current.__context__,
        ]
    return None
