"""The embedded PostgreSQL, with real servers: about a second per test."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from flowsync.db import embedded
from flowsync.db.embedded import Backend, start_embedded
from flowsync.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]


def _has_system_binaries() -> bool:
    try:
        embedded._system_bin_dir(None)
    except embedded._Unavailable:
        return False
    return True


BACKENDS = [
    pytest.param(
        "pgserver",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("pgserver") is None, reason="pgserver not installed"
        ),
    ),
    pytest.param(
        "system",
        marks=pytest.mark.skipif(not _has_system_binaries(), reason="no PostgreSQL binaries"),
    ),
]

# Child process for the two-process cases: start, print the URL, then on each stdin line
# run the SQL it holds and print the result; "stop" stops; EOF exits without stopping.
CHILD = """
import asyncio, sys
from pathlib import Path
import asyncpg
from flowsync.db.embedded import start_embedded
db = start_embedded(Path(sys.argv[1]), backend=sys.argv[2])
print(db.url, flush=True)
for line in sys.stdin:
    if line.strip() == "stop":
        db.stop()
        print("stopped", flush=True)
        continue
    async def run(sql):
        conn = await asyncpg.connect(db.url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()
    print(asyncio.new_event_loop().run_until_complete(run(line)), flush=True)
"""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not tmp_path: its base is root's 0700 folder; as root the server runs as another user
    # that must traverse the path, and pgserver would open permissions up to "/".
    base = Path(tempfile.mkdtemp(prefix="flowsync-embedded-", dir="/tmp"))
    base.chmod(0o755)
    yield base / "data"
    _kill_leftover(base / "data" / "pgdata")
    shutil.rmtree(base, ignore_errors=True)


def _kill_leftover(pgdata: Path) -> None:
    if (running := embedded._postmaster(pgdata)) is not None:
        os.kill(running[0], signal.SIGINT)  # fast shutdown
        for _ in range(100):
            if embedded._postmaster(pgdata) is None:
                return
            time.sleep(0.1)


def _running(data_dir: Path) -> bool:
    return embedded._postmaster(data_dir / "pgdata") is not None


def query(url: str, *sql: str) -> list[Any]:
    """Run each statement; return the rows of the last one."""

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            for statement in sql[:-1]:
                await conn.execute(statement)
            return [tuple(row) for row in await conn.fetch(sql[-1])]
        finally:
            await conn.close()

    # A private loop: asyncio.run would reset the current loop pytest-asyncio set up.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


def spawn(data_dir: Path, backend: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir), backend],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def ask(child: subprocess.Popen[str], line: str) -> str:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(line + "\n")
    child.stdin.flush()
    return child.stdout.readline().strip()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_data_survives_a_restart(
    data_dir: Path, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flowsync.db")
    db = start_embedded(data_dir, backend=backend)
    assert db.backend == backend
    assert db.url == f"postgresql://postgres:@/postgres?host={data_dir.resolve()}/pgdata"
    assert f"{data_dir.resolve()}/pgdata using {backend}" in caplog.text
    query(db.url, "CREATE TABLE kept (v text)", "INSERT INTO kept VALUES ('hello')", "SELECT 1")
    db.stop()
    assert not _running(data_dir)

    again = start_embedded(data_dir, backend=backend)
    assert query(again.url, "SELECT v FROM kept") == [("hello",)]
    again.stop()
    assert not _running(data_dir)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_stop_is_idempotent(data_dir: Path, backend: Backend) -> None:
    db = start_embedded(data_dir, backend=backend)
    db.stop()
    db.stop()
    assert not _running(data_dir)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_handles_in_one_process_share_the_server(data_dir: Path, backend: Backend) -> None:
    first = start_embedded(data_dir, backend=backend)
    second = start_embedded(data_dir, backend=backend)
    assert second.url == first.url
    first.stop()
    assert query(second.url, "SELECT 42") == [(42,)]
    second.stop()
    assert not _running(data_dir)
    first.stop()  # still a no-op


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_two_processes_share_the_server_until_the_last_stops(
    data_dir: Path, backend: Backend
) -> None:
    api = start_embedded(data_dir, backend=backend)
    worker, url = spawn(data_dir, backend)
    try:
        assert url == api.url
        api.stop()  # the process that started the server stops first
        assert _running(data_dir)
        assert ask(worker, "SELECT 7") == "7"
        assert ask(worker, "stop") == "stopped"
        assert not _running(data_dir)
    finally:
        worker.kill()
        worker.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_leaves_the_server_to_the_next_start(data_dir: Path, backend: Backend) -> None:
    owner, _ = spawn(data_dir, backend)
    os.killpg(owner.pid, signal.SIGTERM)  # the whole process group, as a terminal would
    owner.communicate()
    assert _running(data_dir)  # pg_ctl put the server in a session of its own

    db = start_embedded(data_dir, backend=backend)  # joins it, prunes the dead handle
    assert query(db.url, "SELECT 1") == [(1,)]
    db.stop()
    assert not _running(data_dir)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pgserver") is None, reason="pgserver missing")
def test_a_cluster_of_another_major_version_is_refused(data_dir: Path) -> None:
    start_embedded(data_dir, backend="pgserver").stop()
    bundled = (data_dir / "pgdata" / "PG_VERSION").read_text().strip()
    try:
        embedded._system_bin_dir(bundled)
        pytest.skip(f"this machine has PostgreSQL {bundled} binaries too")
    except embedded._Unavailable:
        pass
    with pytest.raises(ConfigurationError, match=f"no PostgreSQL {bundled} binaries"):
        start_embedded(data_dir, backend="system")


def test_without_any_postgres_the_error_says_how_to_configure_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pgserver", None)  # import fails, as on Python 3.13
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(embedded, "SYSTEM_BIN_GLOB", "/nonexistent/*/bin")
    with pytest.raises(ConfigurationError) as caught:
        start_embedded(tmp_path / "data")
    message = str(caught.value)
    assert "pgserver: not installed" in message
    assert "FLOWSYNC_DATABASE_URL=postgresql://" in message


def test_an_unusable_data_folder_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ConfigurationError, match="FLOWSYNC_DATA_DIR"):
        start_embedded(tmp_path / "file" / "data")
