"""Shared fixtures: a real PostgreSQL for every test that needs one.

The server is `FLOWSYNC_TEST_DATABASE_URL` (or `FLOWSYNC_DATABASE_URL`) when set, else an
embedded PostgreSQL kept in a folder under the temp directory between runs. The schema is
migrated once into a template database; each test gets its own database cloned from it,
so tests never see each other's rows and real worker processes can share a test's data.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

# No test may read or write the user's own files. Before anything asks platformdirs (the
# default data folder of `flowsync dev`, where its API key is kept), every per-user
# folder points into a temporary home of this run; child processes inherit it. The real
# data folders are watched: a run that changed them fails (see pytest_sessionfinish).
_REAL_ENV = dict(os.environ)
_RUN_HOME = Path(tempfile.mkdtemp(prefix="flowsync-tests-home-"))
os.environ["HOME"] = str(_RUN_HOME)
for _var, _folder in (
    ("XDG_DATA_HOME", ".local/share"),
    ("XDG_CONFIG_HOME", ".config"),
    ("XDG_CACHE_HOME", ".cache"),
):
    os.environ[_var] = str(_RUN_HOME / _folder)
    (_RUN_HOME / _folder).mkdir(parents=True)

import asyncpg  # noqa: E402
import platformdirs  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from flowsync.config import Settings, to_asyncpg_dsn  # noqa: E402
from tests.support.spans import spans  # noqa: E402, F401  (a fixture: the trace tests' in-memory spans)


def _real_data_dirs() -> list[Path]:
    """Where `flowsync dev` keeps its data for the user who runs the tests."""
    run_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(_REAL_ENV)
    try:
        folders = [Path(platformdirs.user_data_dir("flowsync", appauthor=False))]
    finally:
        os.environ.clear()
        os.environ.update(run_env)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        folders.append(Path("/var/lib/flowsync"))
    return folders


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under `folder` with its mtime and size. Inside a PostgreSQL data folder
    only its existence counts: a server the user runs from there writes on its own."""
    found: dict[str, tuple[int, int]] = {}
    if not folder.exists():
        return found
    for current, dirs, files in os.walk(folder):
        base = Path(current)
        for name in dirs + files:
            path = base / name
            info = path.lstat()
            found[str(path)] = (0, 0) if name == "pgdata" else (info.st_mtime_ns, info.st_size)
        dirs[:] = [d for d in dirs if d != "pgdata"]
    info = folder.lstat()
    found[str(folder)] = (info.st_mtime_ns, 0)
    return found


_WATCHED = {folder: _snapshot(folder) for folder in _real_data_dirs()}
_TOUCHED: list[str] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for folder, before in _WATCHED.items():
        after = _snapshot(folder)
        changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        if changed:
            _TOUCHED.append(f"{folder}: {', '.join(changed[:10])}")
    if _TOUCHED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(_RUN_HOME, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TOUCHED:
        terminalreporter.section("the user's own data folder changed", sep="!", red=True)
        terminalreporter.write_line(
            "A test wrote outside its temporary folders (give every `flowsync dev` or "
            "`flowsync worker` a FLOWSYNC_DATA_DIR under tmp_path):"
        )
        for line in _TOUCHED:
            terminalreporter.write_line(f"  {line}")


# Read the server to test against, then clear every FLOWSYNC_* variable so that no test
# depends on the developer's environment.
_SERVER_URL = os.environ.get("FLOWSYNC_TEST_DATABASE_URL") or os.environ.get(
    "FLOWSYNC_DATABASE_URL"
)
# CI sets it: the browser and Vitest tests fail where they would skip for a missing tool.
REQUIRE_BROWSER = os.environ.get("FLOWSYNC_REQUIRE_BROWSER") == "1"
# CI sets it too: the cluster tests (tests/cluster) fail where they would skip because
# this machine cannot make network namespaces.
REQUIRE_CLUSTER = os.environ.get("FLOWSYNC_REQUIRE_CLUSTER") == "1"
# CI (or FLOWSYNC_REQUIRE_PGBOUNCER=1): the pooler tests fail where they would skip.
REQUIRE_PGBOUNCER = (
    os.environ.get("FLOWSYNC_REQUIRE_PGBOUNCER") == "1" or os.environ.get("CI") == "true"
)
# OTEL_*: a developer's OpenTelemetry settings must not turn tracing on in the tests'
# processes (the tracing tests set what they need).
for _name in [n for n in os.environ if n.startswith(("FLOWSYNC_", "OTEL_"))]:
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
