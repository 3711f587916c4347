"""The migrations are the schema: head equals the models, and they round-trip."""

from __future__ import annotations

import asyncio

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, pool
from sqlalchemy.ext.asyncio import create_async_engine

from flowsync.config import to_asyncpg_dsn, to_sqlalchemy_url
from flowsync.db import migrate
from flowsync.db.compat import MARK, oldest_compatible
from flowsync.db.models import Base


async def _diff(url: str) -> list[object]:
    engine = create_async_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)

    def run(conn: Connection) -> list[object]:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(ctx, Base.metadata))

    try:
        async with engine.connect() as conn:
            return await conn.run_sync(run)
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(to_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_head_matches_the_models(db_url: str) -> None:
    assert await _diff(db_url) == []


async def test_downgrade_and_upgrade_round_trip(db_url: str) -> None:
    model_tables = set(Base.metadata.tables)
    assert model_tables <= await _tables(db_url)

    await asyncio.to_thread(migrate.downgrade, db_url, "base")
    assert await _tables(db_url) == {"alembic_version"}

    await migrate.upgrade_async(db_url)
    assert model_tables <= await _tables(db_url)
    assert await _diff(db_url) == []


async def test_database_reports_head_revision(db_url: str) -> None:
    from flowsync.db.session import make_engine

    engine = make_engine(db_url)
    try:
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


async def _mark(url: str) -> str | None:
    conn = await asyncpg.connect(to_asyncpg_dsn(url))
    try:
        found: str | None = await conn.fetchval(
            "SELECT obj_description('alembic_version'::regclass, 'pg_class')"
        )
        return found
    finally:
        await conn.close()


async def test_migrating_marks_the_oldest_release_that_can_run_on_the_schema(db_url: str) -> None:
    """What a rolling upgrade relies on (flowsync.db.compat): the mark follows the schema
    up and down, written in the migration's own transaction."""
    scripts = migrate.script_directory()
    head = scripts.get_current_head()
    assert head is not None
    assert await _mark(db_url) == MARK + oldest_compatible(scripts, head)
    previous = scripts.get_revision(head).down_revision  # type: ignore[union-attr]
    assert isinstance(previous, str)
    await asyncio.to_thread(migrate.downgrade, db_url, previous)
    assert await _mark(db_url) == MARK + oldest_compatible(scripts, previous)
    await migrate.upgrade_async(db_url)
    assert await _mark(db_url) == MARK + oldest_compatible(scripts, head)
