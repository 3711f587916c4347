"""A multi-host URL whose first host accepts TCP connections and never answers (a primary
whose machine froze, or whose packets are dropped): asyncpg alone spends its whole
timeout on that host and never tries the next; FlowSync's connections (a plain one, an
asyncpg pool, a SQLAlchemy engine) give each host the URL's `connect_timeout` and reach
the server that answers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from urllib.parse import urlencode

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from flowsync.config import to_asyncpg_dsn, to_sqlalchemy_url
from flowsync.db.connect import connect
from flowsync.db.session import make_engine
from flowsync.events.listener import PgListener
from flowsync.worker.queue import create_pool


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel accepts (the backlog) and nobody reads."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def _silent_first(db_url: str, silent_port: int) -> str:
    """The test database's URL with the silent host before its own (SQLAlchemy's
    spelling, which also carries a socket folder as a host)."""
    url = make_url(to_sqlalchemy_url(db_url))
    real = f"{url.host or url.query['host']}:{url.port or 5432}"  # a host, or a socket folder
    query = [("host", f"127.0.0.1:{silent_port}"), ("host", real), ("connect_timeout", "1")]
    auth = f"{url.username}:{url.password or ''}@"
    return f"postgresql+asyncpg://{auth}/{url.database}?{urlencode(query)}"


async def test_a_silent_first_host_costs_its_connect_timeout_not_the_connection(
    db_url: str, silent_port: int
) -> None:
    url = _silent_first(db_url, silent_port)
    # asyncpg's own timeout covers every host: the silent one takes all of it.
    dsn = to_asyncpg_dsn(url).replace("&connect_timeout=1", "").replace("connect_timeout=1", "")
    with pytest.raises(TimeoutError):
        await asyncpg.connect(dsn, timeout=2)

    async with asyncio.timeout(15):
        conn = await connect(url, timeout=10)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            assert await pool.fetchval("SELECT 2") == 2
        finally:
            await pool.close()

        engine = make_engine(url, pool_size=1, max_overflow=0)
        try:
            async with engine.connect() as sa_conn:
                assert (await sa_conn.execute(text("SELECT 3"))).scalar() == 3
        finally:
            await engine.dispose()


async def test_the_listener_outlives_a_server_that_does_not_accept_writes(db_url: str) -> None:
    """Mid-failover every host may be a standby (asyncpg's TargetServerAttributeNotMatched,
    not an OSError): the listener logs it and tries again instead of ending for good. A
    primary asked for `read-only` refuses the same way."""
    url = make_url(to_sqlalchemy_url(db_url)).update_query_dict(
        {"target_session_attrs": "read-only"}
    )
    listener = PgListener(url.render_as_string(hide_password=False), {"nothing": lambda _: None})
    listener.start()
    try:
        for _ in range(200):  # 10 s at most; the retries start 0.1 s apart
            if listener.reconnects >= 3:
                break
            await asyncio.sleep(0.05)
        assert listener.reconnects >= 3, "the listener stopped trying"
        assert not listener.connected.is_set()
    finally:
        await listener.close()
