"""Alembic environment: runs migrations over asyncpg with FlowSync's metadata."""

from __future__ import annotations

import asyncio

from alembic import context
from alembic.script import ScriptDirectory
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from flowsync.config import to_sqlalchemy_url
from flowsync.db.compat import mark_for
from flowsync.db.models import Base
from flowsync.db.session import engine_creator

config = context.config
target_metadata = Base.metadata

# Migrations are serialised on this transaction-level advisory lock: of several
# `flowsync migrate` (or API processes starting) at once on a fresh database, one
# migrates and the others wait; each then reads the revision, under the lock, and finds
# the schema at head. Without it both create the same tables and one fails (a unique
# violation in pg_type). ("flowsync-migrations" as a 64-bit number.)
MIGRATION_LOCK = 0x666C6F7773796E63


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        # Before Alembic reads the current revision (in run_migrations, in this same
        # transaction, each statement with a fresh snapshot): released at commit.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
        _mark_compatibility(connection)


def _mark_compatibility(connection: Connection) -> None:
    """Record which releases' code may run on the schema left (see flowsync.db.compat),
    in the migration's own transaction."""
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if revision is None:
        return
    mark = mark_for(ScriptDirectory.from_config(config), revision).replace("'", "''")
    connection.execute(text(f"COMMENT ON TABLE alembic_version IS '{mark}'"))


async def _run_async(url: str) -> None:
    # Each host of a multi-host URL on its own (flowsync.db.connect), and pooler-safe
    # whatever FLOWSYNC_DATABASE_POOLER says (migrations may go through PgBouncer in
    # transaction mode): no named prepared statement is left behind on a server
    # connection. The whole upgrade is one transaction, pinned to one server connection,
    # so its transaction-level lock holds throughout.
    engine = create_async_engine(
        to_sqlalchemy_url(url),
        poolclass=pool.NullPool,
        creator=engine_creator(url, "transaction", {}),
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set")
    # An existing connection passed in by tests or by the caller wins.
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async(url))


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
