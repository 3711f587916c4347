"""A request cannot hold the database: every statement of an API request is cut off past
FLOWSYNC_STATEMENT_TIMEOUT_SECONDS, through both faces and both of the API's pools (the
ORM's sessions and the asyncpg pool), answered with a clear error, and the connection
is back in the pool at once. Workers' connections have no such limit.

The slow statement is real: another connection holds a lock on the tables the request
reads, so that its statements wait (a statement timeout counts the wait, as it counts
a scan of millions of rows)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import httpx

from flowsync.config import to_asyncpg_dsn
from flowsync.worker.liveness import LeaseTimes
from flowsync.worker.queue import create_pool
from tests.graphql.conftest import Api, serve


async def graphql(api: Api, key: str, query: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as client:
        reply = await client.post(
            api.http_url, json={"query": query}, headers={"Authorization": f"Bearer {key}"}
        )
    body: dict[str, Any] = reply.json()
    return body


async def test_a_slow_statement_is_cut_off_with_a_clear_error(db_url: str) -> None:
    async with serve(db_url, statement_timeout_seconds=0.5) as api:
        me = await api.owner()
        assert await api.services.pool.fetchval("SHOW statement_timeout") == "500ms"
        blocker = await asyncpg.connect(to_asyncpg_dsn(db_url))
        try:
            await blocker.execute("BEGIN; LOCK TABLE workflows, jobs IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            # An ORM read (sessions) and a raw read (the asyncpg pool), at once.
            replies = await asyncio.wait_for(
                asyncio.gather(
                    graphql(api, me.key, "{ workflows { edges { node { id } } } }"),
                    graphql(api, me.key, "{ queueStats { queued } }"),
                ),
                timeout=10,
            )
            assert time.monotonic() - started < 5
            for reply in replies:
                [error] = reply["errors"]
                assert error["extensions"] == {"code": "statement_timeout"}, error
                assert "FLOWSYNC_STATEMENT_TIMEOUT_SECONDS" in error["message"]
            async with httpx.AsyncClient(timeout=30) as client:
                rest = await client.get(
                    f"http://127.0.0.1:{api.port}/api/workflows",
                    headers={"Authorization": f"Bearer {me.key}"},
                )
            assert rest.status_code == 503
            assert rest.json()["error"]["code"] == "statement_timeout"
            # Nothing is held: the pool serves other requests while the lock lasts.
            health = await graphql(api, me.key, "{ health { database } }")
            assert "errors" not in health and health["data"] == {"health": {"database": "ok"}}
        finally:
            await blocker.close()
        after = await graphql(api, me.key, "{ workflows { edges { node { id } } } }")
        assert "errors" not in after and after["data"] == {"workflows": {"edges": []}}


async def test_workers_connections_are_limited_by_their_lease_not_the_api_timeout(
    db_url: str,
) -> None:
    pool = await create_pool(db_url, max_size=1, worker=LeaseTimes(40, 10))
    try:
        shown = {
            name: await pool.fetchval(f"SHOW {name}")
            for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
        }
        assert shown == {
            "statement_timeout": "40s",
            "lock_timeout": "20s",
            "idle_in_transaction_session_timeout": "20s",
        }
    finally:
        await pool.close()
