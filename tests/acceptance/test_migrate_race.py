"""Several `flowsync migrate` (or API processes) starting at once on a fresh database:
one migrates, the others wait for it and then find the schema at head."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from flowsync.config import to_asyncpg_dsn
from flowsync.db.migrate import head_revision
from tests.conftest import with_database
from tests.support.processes import ROOT, flowsync_env

pytestmark = pytest.mark.slow


@pytest.fixture
async def fresh_db(server_url: str) -> AsyncIterator[str]:
    """An empty database: no schema, no alembic_version."""
    name = f"fs_fresh_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(to_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrates_started_at_once_on_a_fresh_database_all_succeed(fresh_db: str) -> None:
    env = flowsync_env(fresh_db)
    # Started together, so that their migrations overlap (each starts by reading the
    # revision, finds none, and would create the same tables).
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "flowsync",
            "migrate",
            env=env,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 120)
    assert [p.returncode for p in procs] == [0, 0, 0], b"\n---\n".join(o for o, _ in outputs)
    conn = await asyncpg.connect(to_asyncpg_dsn(fresh_db))
    try:
        revisions = await conn.fetch("SELECT version_num FROM alembic_version")
    finally:
        await conn.close()
    assert [r["version_num"] for r in revisions] == [head_revision()]
