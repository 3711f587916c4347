"""The database engine and session factory."""

from __future__ import annotations

import functools

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from flowsync import codec
from flowsync.config import to_sqlalchemy_url
from flowsync.db.connect import connect
from flowsync.db.timeouts import server_settings


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    statement_timeout_seconds: float | None = None,
) -> AsyncEngine:
    """An asyncpg engine that checks connections before use, so that a database restart
    costs one failed ping per pooled connection instead of errors in requests. With
    `statement_timeout_seconds`, the database cancels any statement that runs longer
    (see `flowsync.db.timeouts`)."""
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
        # Each host of a multi-host URL on its own (flowsync.db.connect), with these
        # settings (connect_args are not used with a creator).
        async_creator=functools.partial(connect, url, server_settings=settings),
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
