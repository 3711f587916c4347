"""Connection pooler support: how FlowSync connects when `FLOWSYNC_DATABASE_URL` goes
through PgBouncer (or a pooler like it), and the startup check that the pooler is the
kind `FLOWSYNC_DATABASE_POOLER` says.

`FLOWSYNC_DATABASE_POOLER`:

* `none` (the default): the URL is PostgreSQL itself. Connections carry their session
  settings (timeouts, planner settings, keepalives) as startup parameters and cache
  prepared statements.
* `transaction`: a pooler in transaction mode, where each transaction may run on another
  server connection. Then no statement is prepared under a name (asyncpg's statement
  cache is off and SQLAlchemy's statements are unnamed, so Parse, Bind and Execute go out
  together), no startup parameter but `application_name` is sent (PgBouncer refuses
  others, and could not keep them per client anyway), and LISTEN goes to
  `FLOWSYNC_LISTEN_DATABASE_URL` (the server itself); without it, workers and API
  processes poll, and say so once. FlowSync holds no session state on pooled
  connections: its advisory locks are transaction-level.
* `session`: a pooler in session mode, accepted knowingly. Everything works as on a
  direct connection except that startup parameters are not sent; but every connection
  FlowSync opens holds a server connection for its whole life, so the pooler saves
  nothing and connections past its pool size wait without an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Literal

import asyncpg

from flowsync.config import Settings, to_asyncpg_dsn

Pooler = Literal["none", "session", "transaction"]

log = logging.getLogger("flowsync.db")

# The one startup parameter PgBouncer passes on (it tracks it per client).
_KEPT = ("application_name",)

FIX_TRANSACTION = (
    "set FLOWSYNC_DATABASE_POOLER=transaction, and FLOWSYNC_LISTEN_DATABASE_URL to the "
    "PostgreSQL server itself for LISTEN (see docs/deploy.md, PgBouncer)"
)


def startup_settings(pooler: Pooler, settings: Mapping[str, str]) -> dict[str, str]:
    """The server settings a connection may send at startup through `pooler`."""
    if pooler == "none":
        return dict(settings)
    return {k: v for k, v in settings.items() if k in _KEPT}


def asyncpg_options(pooler: Pooler, settings: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for asyncpg.connect / create_pool through `pooler`."""
    options: dict[str, Any] = {"server_settings": startup_settings(pooler, settings)}
    if pooler == "transaction":
        # No named statements: asyncpg then re-sends Parse with each Bind, so a
        # statement never meets a server connection that has not seen it.
        options["statement_cache_size"] = 0
    return options


def _unnamed() -> str:
    return ""


def sqlalchemy_adapter_args(pooler: Pooler) -> dict[str, Any]:
    """What SQLAlchemy's asyncpg adapter needs through `pooler` (besides the driver's
    own `asyncpg_options`)."""
    if pooler != "transaction":
        return {}
    # SQLAlchemy prepares each statement itself; unnamed, and not cached, it lives only
    # as long as its transaction (SQLAlchemy always runs one), which is pinned to one
    # server connection.
    return {"prepared_statement_cache_size": 0, "prepared_statement_name_func": _unnamed}


def listen_url(settings: Settings, url: str) -> str | None:
    """Where LISTEN connects: `FLOWSYNC_LISTEN_DATABASE_URL`, else `url` (the database
    URL) unless that goes through a transaction pooler (None: poll instead)."""
    if settings.listen_database_url:
        return settings.listen_database_url
    if settings.database_pooler == "transaction":
        return None
    return url


def listen_pooler(settings: Settings) -> Pooler:
    """What the LISTEN connection goes through: its own URL is PostgreSQL itself."""
    return "none" if settings.listen_database_url else settings.database_pooler


_warned = False


def warn_polling(what: str) -> None:
    """The one warning of a process that polls because it has no LISTEN connection."""
    global _warned
    if _warned:
        return
    _warned = True
    log.warning(
        "FLOWSYNC_DATABASE_POOLER=transaction and no FLOWSYNC_LISTEN_DATABASE_URL: %s "
        "polls instead of listening (new work and events wait up to the poll interval); "
        "set FLOWSYNC_LISTEN_DATABASE_URL to the PostgreSQL server itself to listen",
        what,
    )


# -- detection (the startup check) -------------------------------------------------------

_PID = "SELECT pg_backend_pid()"
_SESSION_PROBES = 4


async def _pid(conn: asyncpg.Connection) -> int:
    pid: int = await conn.fetchval(_PID)
    return pid


async def detect(url: str, timeout: float) -> Pooler:
    """What the connections to `url` go through, as far as they can tell: two sessions
    open at once that run on one server process prove a transaction pooler; sessions
    opened one after another that meet the same server process prove a pooler (session
    mode). PostgreSQL itself gives each session a process of its own. A pooler that
    happens to hand out other server connections reads as "none" (never the reverse)."""
    dsn = to_asyncpg_dsn(url)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn, timeout=timeout, statement_cache_size=0)

    first = await connect()
    try:
        second = await connect()
        try:
            seen = {await _pid(first)}
            # The first session is idle: a transaction pooler has its server connection
            # back and hands it to the next statement.
            if await _pid(second) in seen:
                return "transaction"
            seen.add(await _pid(second))
        finally:
            await second.close()
    finally:
        await first.close()
    for _ in range(_SESSION_PROBES):
        # A closed session's server connection is reset, then handed to the next one.
        await asyncio.sleep(0.02)
        conn = await connect()
        try:
            pid = await _pid(conn)
        finally:
            await conn.close()
        if pid in seen:
            return "session"
        seen.add(pid)
    return "none"
