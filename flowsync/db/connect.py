"""Opening a connection to a URL that names one server or several (a primary and its
standbys, `postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write`).

asyncpg tries the hosts of such a URL in order, but under one timeout for all of them: a
first host that silently drops packets (a primary whose machine is gone, or frozen) uses
the whole timeout, the next host is never tried, and every reconnection fails the same
way until the dead host answers again. Here each host is tried on its own, for at most
the URL's `connect_timeout` (libpq's per-host limit, in seconds; the caller's timeout
when absent), so a failover reaches the promoted standby however the old primary died.
`connect_timeout` is taken out of the URL either way (asyncpg would send it to the
server as a setting, which the server refuses).

Every connection FlowSync opens goes through `connect`: the asyncpg pools (as their
`connect`), the SQLAlchemy engines (as their `async_creator`), the listeners and the
workers' chore connections."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from flowsync.config import to_asyncpg_dsn

__all__ = ["connect", "per_host"]

# The reasons to go on to the next host: it is down, unreachable, silent, starting or
# in recovery, or not the one that accepts writes.
_NEXT_HOST = (
    OSError,
    TimeoutError,
    asyncpg.TargetServerAttributeNotMatched,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
)


def per_host(url: str) -> tuple[list[str], float | None]:
    """The URL as one asyncpg DSN per host (same user, database and parameters), and its
    `connect_timeout` in seconds (None when absent)."""
    parts = urlsplit(to_asyncpg_dsn(url))
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    limit = next((float(v) for k, v in pairs if k == "connect_timeout" and v), None)
    query = urlencode([(k, v) for k, v in pairs if k != "connect_timeout"])
    auth, at, hosts = parts.netloc.rpartition("@")
    names = hosts.split(",") if "," in hosts else [hosts]
    dsns = [urlunsplit(parts._replace(netloc=auth + at + h, query=query)) for h in names]
    return dsns, (limit if limit and limit > 0 else None)


async def connect(url: str, *, timeout: float = 60.0, **kwargs: Any) -> asyncpg.Connection:
    """asyncpg.connect, trying each host of `url` in turn for at most its
    `connect_timeout` (else `timeout`); the last host's error when none will do."""
    dsns, limit = per_host(url)
    each = min(limit, timeout) if limit is not None else timeout
    if len(dsns) == 1:
        conn: asyncpg.Connection = await asyncpg.connect(dsns[0], timeout=each, **kwargs)
        return conn
    # As asyncpg's own multi-host connect: the last host that failed to answer is the
    # error, rather than "no host accepts writes" from a standby after it; callers that
    # retry know both.
    error: BaseException | None = None
    mismatch: BaseException | None = None
    for dsn in dsns:
        try:
            conn = await asyncpg.connect(dsn, timeout=each, **kwargs)
        except asyncpg.TargetServerAttributeNotMatched as exc:
            mismatch = exc
        except _NEXT_HOST as exc:
            error = exc
        else:
            return conn
    raise error or mismatch or asyncpg.TargetServerAttributeNotMatched(dsns)
