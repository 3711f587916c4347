"""FlowSync through PgBouncer: Debian's `pgbouncer` binary, started by the tests with an
ini of their own (never the system service) in front of the test server, in transaction
mode (`pgbouncer`) or session mode (`session_pgbouncer`).

- `pooled_url`: the test's database through the transaction-mode PgBouncer;
  `db_url` stays the direct URL (for LISTEN, and for the admin statements of fixtures).
- `settings`/`services`: overridden here, so that the service layer in this process (the
  API side of every test) goes through PgBouncer with FLOWSYNC_DATABASE_POOLER=transaction
  and LISTENs on the direct URL.
- `workers`: `flowsync worker` processes through PgBouncer; `listen=False` gives them no
  FLOWSYNC_LISTEN_DATABASE_URL, so that they poll.

The tests skip, saying why, where /usr/sbin/pgbouncer is missing, and fail instead under
CI (CI=true) or FLOWSYNC_REQUIRE_PGBOUNCER=1 (CI's .ci/run installs the package).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy.engine import make_url

from flowsync.config import Settings, to_asyncpg_dsn
from flowsync.services.container import Services, build_services
from tests.conftest import REQUIRE_PGBOUNCER
from tests.support.processes import Process, flowsync_env
from tests.support.workers import FAST

PGBOUNCER = Path("/usr/sbin/pgbouncer")


def missing(reason: str) -> NoReturn:
    """Skip where PgBouncer cannot be had; fail instead where it is required."""
    if REQUIRE_PGBOUNCER:
        pytest.fail(f"{reason} (CI or FLOWSYNC_REQUIRE_PGBOUNCER=1: the pooler tests must run)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Bouncer:
    """A running PgBouncer: its port, and the URL of a database through it."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def url(self, direct: str) -> str:
        """`direct` (a database URL of the test server) through this PgBouncer."""
        parts = make_url(to_asyncpg_dsn(direct))
        return f"postgresql://{parts.username or 'postgres'}@127.0.0.1:{self.port}/{parts.database}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _start(server_url: str, mode: str) -> Iterator[Bouncer]:
    if not PGBOUNCER.exists():
        missing(f"{PGBOUNCER} is missing (Debian: apt-get install pgbouncer)")
    server = make_url(to_asyncpg_dsn(server_url))
    host = server.host or str(server.query.get("host") or "/var/run/postgresql")
    port = server.port or int(str(server.query.get("port") or 5432))
    user = server.username or "postgres"
    folder = Path(tempfile.mkdtemp(prefix=f"flowsync-pgbouncer-{mode}-"))
    listen = _free_port()
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        # Any database name: each test's own database gets a pool of its own.
        f"* = host={host} port={port} user={user}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {listen}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        f"pool_mode = {mode}\ndefault_pool_size = 20\nmax_client_conn = 500\n"
        f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n"
        "server_check_delay = 0\n"
    )
    args = [str(PGBOUNCER)]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: it runs as the owner of the server's socket
        # folder (the embedded server's is private to its user), else as the package's.
        owner = os.stat(host).st_uid if host.startswith("/") else 0
        try:
            account = pwd.getpwuid(owner) if owner else pwd.getpwnam("postgres")
        except KeyError:
            missing("PgBouncer will not run as root and there is no 'postgres' user")
        for path in [folder, *folder.iterdir()]:
            os.chown(path, account.pw_uid, account.pw_gid)
        args += ["-u", account.pw_name]
    log = folder / "pgbouncer.log"
    with (folder / "stderr.txt").open("wb") as stderr:
        proc = subprocess.Popen(
            [*args, str(folder / "pgbouncer.ini")], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (folder / "stderr.txt").read_text(errors="replace")
                text += log.read_text(errors="replace") if log.exists() else ""
                pytest.fail(f"PgBouncer did not start: {text[-2000:]}")
            time.sleep(0.05)
        yield Bouncer(listen, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pgbouncer(server_url: str) -> Iterator[Bouncer]:
    """PgBouncer in transaction mode in front of the test server."""
    yield from _start(server_url, "transaction")


@pytest.fixture(scope="session")
def session_pgbouncer(server_url: str) -> Iterator[Bouncer]:
    """PgBouncer in session mode in front of the test server."""
    yield from _start(server_url, "session")


@pytest.fixture
def pooled_url(pgbouncer: Bouncer, db_url: str) -> str:
    """The test's database through the transaction-mode PgBouncer."""
    return pgbouncer.url(db_url)


def pooled_settings(pooled_url: str, listen_url: str | None, **more: Any) -> Settings:
    """Settings of a process behind the transaction pooler."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=pooled_url,
        database_pooler="transaction",
        listen_database_url=listen_url,
        **more,
    )


@pytest.fixture
def settings(pooled_url: str, db_url: str) -> Settings:
    return pooled_settings(pooled_url, db_url)


@pytest.fixture
async def services(settings: Settings, pooled_url: str) -> AsyncIterator[Services]:
    built = await build_services(settings, pooled_url)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture
def workers(pooled_url: str, db_url: str, tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """`flowsync worker` processes through PgBouncer (listening on the direct URL unless
    `listen=False`)."""
    started: list[Process] = []

    def start(concurrency: int = 8, *, listen: bool = True, **settings: Any) -> Process:
        env = flowsync_env(pooled_url, **{**FAST, "database_pooler": "transaction", **settings})
        if listen:
            env["FLOWSYNC_LISTEN_DATABASE_URL"] = db_url
        proc = Process(
            ["worker", "--concurrency", str(concurrency)],
            env,
            tmp_path / f"worker-{len(started)}.log",
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()
