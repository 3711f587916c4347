"""Shared fixtures: a real PostgreSQL for every test that needs one.

The server is `FLOWSYNC_TEST_DATABASE_URL` (or `FLOWSYNC_DATABASE_URL`) when set, else an
embedded PostgreSQL kept in a folder under the temp directory between runs. The schema is
migrated once into a template database; each test gets its own database cloned from it,
so tests never see each other's rows and real worker processes can share a test's data.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flowsync.config import Settings, to_asyncpg_dsn

# Read the server to test against, then clear every FLOWSYNC_* variable so that no test
# depends on the developer's environment.
_SERVER_URL = os.environ.get("FLOWSYNC_TEST_DATABASE_URL") or os.environ.get(
    "FLOWSYNC_DATABASE_URL"
)
for _name in [n for n in os.environ if n.startswith("FLOWSYNC_")]:
    del os.environ[_name]
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")

_counter = itertools.count()

# Shared fixtures that live in their own module.
pytest_plugins = ["tests.support.env", "tests.support.workers"]


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database `name`."""
    return make_url(to_asyncpg_dsn(url)).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """An admin URL of the PostgreSQL server the suite runs against."""
    if _SERVER_URL:
        yield _SERVER_URL
        return
    from flowsync.db.embedded import start_embedded

    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"flowsync-tests-{os.getuid()}" / "pg"
    server = start_embedded(folder)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def template_db(server_url: str) -> AsyncIterator[str]:
    """A database at the migrations' head, to clone per test."""
    from flowsync.db.migrate import upgrade_async

    name = f"fs_template_{os.getpid()}"
    admin = await asyncpg.connect(to_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        await upgrade_async(with_database(server_url, name))
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def db_url(server_url: str, template_db: str) -> AsyncIterator[str]:
    """A fresh database for this test, cloned from the migrated template."""
    name = f"fs_test_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(to_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield with_database(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Settings for a test, pointing at its own database."""
    return Settings(database_url=db_url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def services(settings: Settings, db_url: str) -> AsyncIterator[object]:
    """The service layer over the test's database."""
    from flowsync.services.container import build_services

    built = await build_services(settings, db_url)
    try:
        yield built
    finally:
        await built.close()


def new_subject() -> str:
    """A unique owner subject."""
    return f"test:{uuid.uuid4()}"
