"""The database engine and session factory."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from flowsync import codec
from flowsync.config import to_sqlalchemy_url
from flowsync.db.connect import connect
from flowsync.db.pooler import Pooler, asyncpg_options, sqlalchemy_adapter_args
from flowsync.db.timeouts import server_settings


def engine_creator(url: str, pooler: Pooler, settings: Mapping[str, str]) -> Callable[[], Any]:
    """The `creator` of a SQLAlchemy asyncpg engine for `url`: each host of a multi-host
    URL tried on its own (flowsync.db.connect), with the server `settings` and options
    `pooler` allows. SQLAlchemy's adapter takes its own options (unnamed statements behind
    a pooler) only through a creator: connect_args are not used with one, and
    create_async_engine's async_creator passes none."""
    driver = asyncpg_options(pooler, settings)
    adapter = sqlalchemy_adapter_args(pooler)
    dbapi = PGDialect_asyncpg.import_dbapi()  # type: ignore[no-untyped-call]

    def creator() -> Any:
        return dbapi.connect(async_creator_fn=functools.partial(connect, url, **driver), **adapter)

    return creator


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    statement_timeout_seconds: float | None = None,
    pooler: Pooler = "none",
) -> AsyncEngine:
    """An asyncpg engine that checks connections before use, so that a database restart
    costs one failed ping per pooled connection instead of errors in requests. With
    `statement_timeout_seconds`, the database cancels any statement that runs longer
    (see `flowsync.db.timeouts`). Through a `pooler`, see `flowsync.db.pooler`: there the
    timeout is not sent, and is the pooler's or the database role's to set."""
    # JIT only slows the short statements FlowSync runs.
    settings = {"jit": "off", "application_name": "flowsync"}
    if statement_timeout_seconds is not None:
        settings |= server_settings(statement_timeout_seconds)
    return create_async_engine(
        to_sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        # The one JSON codec (flowsync.codec), as on the asyncpg pools: a number PostgreSQL
        # returns as a 21-digit integer reads as the double it was, so it encodes again.
        json_serializer=codec.stored_text,
        json_deserializer=codec.from_stored,
        creator=engine_creator(url, pooler, settings),
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
