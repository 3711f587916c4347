"""FlowSync behind PgBouncer in transaction mode: live events with LISTEN on the direct
URL, polling (and its one warning) without it, retention's lock, and the startup check
that refuses a pooler FlowSync was not told of."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from flowsync.config import Settings, to_asyncpg_dsn
from flowsync.db.preflight import check_pooler
from flowsync.db.session import make_engine
from flowsync.errors import ConfigurationError
from flowsync.events.backend import owner_channel
from flowsync.events.runtime import LiveEvents
from flowsync.retention.prune import QUERIES, Policy, Pruner, connect
from flowsync.services.container import Services, build_services
from flowsync.services.observability import ObservabilityService
from flowsync.services.principal import Principal
from flowsync.worker.queue import create_pool
from tests.pooler.conftest import Bouncer, pooled_settings
from tests.support.graphs import chain
from tests.support.processes import ROOT, Process, flowsync_env
from tests.support.workers import finished

pytestmark = pytest.mark.pooler

POLLING = "no FLOWSYNC_LISTEN_DATABASE_URL"


async def _run_and_follow(
    services: Services, me: Principal, live: LiveEvents
) -> tuple[uuid.UUID, int]:
    """Start a 3-step run once the subscription is in place; what the subscriber saw
    and the run's last event sequence."""
    wf = await services.workflows.create(me, "chain", None, chain(3))
    async with live.broadcast.wakeups(owner_channel(me.owner_id)) as wakeups:
        eid = (await services.executions.start(me, wf.id, {"n": 0})).execution.id
        execution = await finished(services, me, eid, 30)
        assert execution.status == "COMPLETED" and execution.output == {"n": 3}
        last = (await services.executions.events(me, eid))[-1].sequence
        seen = 0
        for _ in range(100):  # wake-ups up to the last event, within ~10 s
            batch = await wakeups.take(0.1)
            seen = max(seen, batch.latest.get(eid, (0, uuid.UUID(int=0)))[0])
            if seen >= last:
                break
    return eid, seen


async def test_listen_on_the_direct_url_wakes_workers_and_subscribers(
    pooled_url: str, db_url: str, me: Principal, workers: Callable[..., Process]
) -> None:
    # Little but LISTEN can deliver in time here: the worker polls once a minute and the
    # API process once an hour (after its one poll when its listener connects).
    settings = pooled_settings(pooled_url, db_url, subscription_poll_seconds=3600)
    services = await build_services(settings, pooled_url)
    live = await LiveEvents.start(services)
    try:
        worker = workers(poll_seconds=60)
        database = db_url.rsplit("/", 1)[-1].split("?")[0]
        direct = await asyncpg.connect(to_asyncpg_dsn(db_url))
        try:
            # Both listening, and the worker past its first claim (its presence row is
            # written before its loop starts): the run's first job then needs a NOTIFY.
            for _ in range(400):
                listeners = await direct.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                    "AND application_name IN ('flowsync-worker-listener', 'flowsync-events')",
                    database,
                )
                joined = await direct.fetchval("SELECT count(*) FROM workers")
                if listeners == 2 and joined == 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the listeners did not connect: {worker.output()}")
        finally:
            await direct.close()
        assert live.backend.listener_state is True
        eid, seen = await _run_and_follow(services, me, live)
        last = (await services.executions.events(me, eid))[-1].sequence
        assert seen == last, worker.output()
        assert POLLING not in worker.output()
    finally:
        await live.stop()
        await services.close()


async def test_without_a_listen_url_polling_delivers_and_says_so_once(
    pooled_url: str,
    me: Principal,
    workers: Callable[..., Process],
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = pooled_settings(pooled_url, None, subscription_poll_seconds=0.2)
    services = await build_services(settings, pooled_url)
    try:
        with caplog.at_level(logging.WARNING, logger="flowsync"):
            live = await LiveEvents.start(services)
        try:
            assert live.backend.listener_state is None  # nothing to connect: it polls
            # ...and is ready: there is no listener to wait for.
            report = await ObservabilityService.of(services).health(live.backend.listener_state)
            assert report.ready and report.listener == "disabled" and not report.unready
            worker = workers(listen=False)
            eid, seen = await _run_and_follow(services, me, live)
            last = (await services.executions.events(me, eid))[-1].sequence
            assert seen == last
        finally:
            await live.stop()
        assert sum(POLLING in r.getMessage() for r in caplog.records) == 1
        worker.terminate()
        assert worker.output().count(POLLING) == 1, worker.output()
    finally:
        await services.close()


async def test_retention_holds_its_lock_in_a_transaction_and_gives_it_back(
    pooled_url: str, db_url: str
) -> None:
    pruner = Pruner(Policy(executions=timedelta(days=30)))
    conn = await connect(pooled_url, "transaction")
    guard = await connect(pooled_url, "transaction")
    direct = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        assert await direct.fetchval(QUERIES["lock"])  # a process pruning on its own
        assert await pruner.prune(conn, guard=guard) is None
        await direct.fetchval(QUERIES["unlock"])
        assert await pruner.prune(conn, guard=guard) is not None
        # Nothing left behind on any server connection: the lock is free again.
        assert await direct.fetchval(QUERIES["lock"])
        await direct.fetchval(QUERIES["unlock"])
        # This database's: pg_locks lists the whole server's, where tests running beside
        # this one (other databases) may hold advisory locks of their own.
        held = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        assert await direct.fetchval(held) == 0
    finally:
        for each in (conn, guard, direct):
            await each.close()


def test_a_pooler_flowsync_was_not_told_of_is_one_line_naming_the_setting(
    pooled_url: str, db_url: str, pgbouncer: Bouncer, session_pgbouncer: Bouncer
) -> None:
    def refusal(**given: object) -> str:
        settings = Settings(_env_file=None, **given)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError) as caught:
            check_pooler(settings, str(given["database_url"]))
        message = str(caught.value)
        assert "\n" not in message
        return message

    # PostgreSQL itself, and each pooler as declared: accepted.
    check_pooler(Settings(_env_file=None, database_url=db_url), db_url)  # type: ignore[call-arg]
    check_pooler(pooled_settings(pooled_url, db_url), pooled_url)
    session_url = session_pgbouncer.url(db_url)
    declared = Settings(_env_file=None, database_url=session_url, database_pooler="session")  # type: ignore[call-arg]
    check_pooler(declared, session_url)

    message = refusal(database_url=pooled_url)
    assert "transaction mode" in message and "FLOWSYNC_DATABASE_POOLER=transaction" in message
    message = refusal(database_url=pooled_url, database_pooler="session")
    assert "transaction mode" in message and "FLOWSYNC_DATABASE_POOLER=transaction" in message
    message = refusal(database_url=session_url)
    assert "session mode" in message and "FLOWSYNC_DATABASE_POOLER" in message
    message = refusal(
        database_url=pooled_url, database_pooler="transaction", listen_database_url=pooled_url
    )
    assert message.startswith("FLOWSYNC_LISTEN_DATABASE_URL") and "server itself" in message


async def test_statements_that_cross_server_connections_still_run(pooled_url: str) -> None:
    # Eight clients of each kind, each running transactions of the same statements, so
    # that a client's next transaction lands on a server connection another one used:
    # a statement prepared under a name (the drivers' default) then fails with
    # "prepared statement ... does not exist" or "... already exists".
    engine = make_engine(pooled_url, pool_size=8, max_overflow=0, pooler="transaction")
    pool = await create_pool(pooled_url, min_size=8, max_size=8, pooler="transaction")

    async def orm_client(n: int) -> int:
        # A statement of each client's own: a name another client gave to its statement
        # on the same server connection must not run this one's.
        own = text(f"SELECT CAST(:a AS int) + CAST(:b AS int) + {n}")
        total = 0
        for i in range(15):
            async with engine.begin() as conn:
                total += (await conn.execute(own, {"a": n, "b": i})).scalar_one()
            # Uneven pauses shuffle which server connection each transaction gets.
            await asyncio.sleep(0.002 * ((n * 7 + i) % 5))
        return total

    async def raw_client(n: int) -> int:
        total = 0
        for i in range(15):
            total += await pool.fetchval("SELECT $1::int + $2::int", n, i)
            await asyncio.sleep(0)
        return total

    try:
        results = await asyncio.gather(
            *(orm_client(n) for n in range(8)), *(raw_client(n) for n in range(8))
        )
        expected = [15 * n + 105 for n in range(8)]
        assert results == [e + 15 * n for n, e in enumerate(expected)] + expected
    finally:
        await pool.close()
        await engine.dispose()


def test_a_worker_behind_an_undeclared_pooler_exits_1_with_one_line(
    pooled_url: str, tmp_path: Path
) -> None:
    env = flowsync_env(pooled_url, data_dir=tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-m", "flowsync", "worker"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if "FLOWSYNC_DATABASE_POOLER" in line]
    assert len(lines) == 1 and "transaction mode" in lines[0], done.stderr


def test_prune_through_the_declared_pooler_and_refused_through_an_undeclared_one(
    pooled_url: str, tmp_path: Path
) -> None:
    def prune(**settings: object) -> subprocess.CompletedProcess[str]:
        env = flowsync_env(pooled_url, data_dir=tmp_path / "data", **settings)
        return subprocess.run(
            [sys.executable, "-m", "flowsync", "prune"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    done = prune(database_pooler="transaction", retain_executions_days=30)
    assert done.returncode == 0 and "Deleted at" in done.stdout, done.stderr
    done = prune(retain_executions_days=30)
    assert done.returncode == 1 and "FLOWSYNC_DATABASE_POOLER" in done.stderr, done.stderr
