"""DataLoaders keep nested lists at a constant number of SQL statements, however long
the page: counted on the server's own engine during real HTTP requests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event

from flowsync.services.pagination import encode_cursor
from tests.graphql.conftest import Api
from tests.support.graphs import chain

NESTED = "{ executions(first: 50) { edges { node { steps { status } } } } }"
WIDER = """{ executions(first: 50) { edges { node { status steps { status }
  workflow { name definition } timeline { sequence } } } } }"""


@contextmanager
def counting(api: Api) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = api.services.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def run(api: Api, key: str, query: str) -> tuple[list[str], float, dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        with counting(api) as statements:
            began = time.perf_counter()
            reply = await client.post(
                api.http_url, json={"query": query}, headers={"Authorization": f"Bearer {key}"}
            )
            elapsed = time.perf_counter() - began
    body: dict[str, Any] = reply.json()
    assert "errors" not in body, body
    return statements, elapsed, body


async def test_executions_with_steps_cost_a_constant_number_of_statements(api: Api) -> None:
    a = await api.owner()
    workflows = [
        (await api.services.workflows.create(a.principal, f"w{i}", None, chain(3))).id
        for i in range(5)
    ]
    counts: dict[int, int] = {}
    for total in (2, 50):
        while len((await api.services.executions.list(a.principal, limit=200)).items) < total:
            wid = workflows[len(counts) % len(workflows)]
            await api.services.executions.start(a.principal, wid, {"n": 1})
        statements, elapsed, body = await run(api, a.key, NESTED)
        assert len(body["data"]["executions"]["edges"]) == total
        assert all(len(e["node"]["steps"]) == 5 for e in body["data"]["executions"]["edges"])
        # The API key's lookup, the page of executions, the steps of all of them.
        counts[total] = len(statements)
        assert len(statements) <= 4, statements
        assert elapsed < 2
    assert counts[2] == counts[50]
    wide, _, body = await run(api, a.key, WIDER)
    assert len(body["data"]["executions"]["edges"]) == 50
    # + workflows, their definitions and the timelines: one statement each.
    assert len(wide) <= counts[50] + 3, wide


async def test_triggers_with_their_workflows_cost_a_constant_number_of_statements(
    api: Api,
) -> None:
    a = await api.owner()
    query = "{ triggers(first: 50) { edges { node { id workflow { name triggers { id } } } } } }"
    counts: dict[int, int] = {}
    for total in (2, 12):
        while len((await api.services.triggers.list(a.principal, limit=200)).items) < total:
            wf = await api.services.workflows.create(a.principal, "w", None, chain(1))
            await api.services.triggers.create(a.principal, wf.id, "MANUAL", None)
        statements, _, body = await run(api, a.key, query)
        edges = body["data"]["triggers"]["edges"]
        assert len(edges) == total and all(e["node"]["workflow"]["name"] == "w" for e in edges)
        counts[total] = len(statements)
    # The key's lookup, the page, the workflows, their triggers.
    assert counts[2] == counts[12] <= 4, counts


async def test_nested_pages_after_a_cursor_cost_a_constant_number_of_statements(
    api: Api,
) -> None:
    a = await api.owner()
    # A cursor past every execution: each workflow's page after it is its newest two.
    cursor = encode_cursor(datetime.now(UTC) + timedelta(days=1), uuid.UUID(int=2**128 - 1))
    query = (
        "{ workflows(first: 50) { edges { node { name executions(first: 2, after: "
        f'"{cursor}") {{ edges {{ node {{ id workflow {{ name }} }} }} }} }} }} }} }}'
    )
    counts: dict[int, int] = {}
    for total in (2, 12):
        while len((await api.services.workflows.list(a.principal, limit=200)).items) < total:
            wf = await api.services.workflows.create(a.principal, "w", None, chain(1))
            for _ in range(3):
                await api.services.executions.start(a.principal, wf.id, {})
        statements, _, body = await run(api, a.key, query)
        edges = body["data"]["workflows"]["edges"]
        assert len(edges) == total
        assert all(len(e["node"]["executions"]["edges"]) == 2 for e in edges)
        counts[total] = len(statements)
    # The key's lookup, the workflows, their pages of executions, those executions'
    # workflows.
    assert counts[2] == counts[12] <= 4, counts
