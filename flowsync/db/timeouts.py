"""The statement timeout of API requests.

An API process's connections (the SQLAlchemy engine's and the asyncpg pool's, both made
by `services.container.build_services`) carry PostgreSQL's `statement_timeout`
(`FLOWSYNC_STATEMENT_TIMEOUT_SECONDS`, 10 s by default): a request that asks for too much
is cut off by the database, its connection goes back to the pool at once, and no request
can hold the pool, or another tenant's requests, for longer. Workers' pools are made
elsewhere, with limits derived from their lease instead (`flowsync.worker.liveness`); the
LISTEN connections and the scheduler's connection have no statement limit (a listener
idles for good).

A statement cut off this way raises the driver's QueryCanceledError (SQLSTATE 57014),
bare from asyncpg or wrapped by SQLAlchemy; `as_timeout` turns either into the
`QueryTimeout` both faces answer with."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flowsync.errors import QueryTimeout

__all__ = ["as_timeout", "server_settings", "with_statement_timeout"]

_QUERY_CANCELED = "57014"


def _milliseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


def server_settings(seconds: float) -> dict[str, str]:
    """The connection settings that apply the timeout (for SQLAlchemy's connect_args)."""
    return {"statement_timeout": _milliseconds(seconds)}


def with_statement_timeout(url: str, seconds: float) -> str:
    """`url` with the timeout as a query parameter, which asyncpg passes on as a server
    setting of every connection it opens."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "statement_timeout"]
    query.append(("statement_timeout", _milliseconds(seconds)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def as_timeout(error: BaseException) -> QueryTimeout | None:
    """The QueryTimeout for an error a statement timeout caused (directly, or as the
    cause of what SQLAlchemy raised); None for any other error."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen or len(seen) > 16:
            continue
        seen.add(id(current))
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if state == _QUERY_CANCELED and "statement timeout" in str(current):
            return QueryTimeout(
                "The request ran past the database's statement timeout "
                "(FLOWSYNC_STATEMENT_TIMEOUT_SECONDS) and was cancelled: ask for less at "
                "once (smaller pages with `first`/`limit`, fewer nested lists, narrower "
                "filters)."
            )
        orig = getattr(current, "orig", None)
        pending += [
            orig if isinstance(orig, BaseException) else None,
            current.__cause__,
            current.__context__,
        ]
    return None
