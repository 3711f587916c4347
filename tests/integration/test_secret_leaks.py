"""A secret's value reaches the target and nothing else: a workflow whose HTTP target
echoes back the whole request (URL, headers, body) runs once to success and once to
failure (a 500 that echoes it, retried, then dead-lettered), and then every table, every
log line, every API reply (REST and GraphQL: executions, steps, timelines, events, dead
letters, audit) and every subscription event is searched for the value."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from flowsync.logs import configure_logging
from flowsync.secrets_crypto import new_key_text
from flowsync.worker.netguard import NetworkPolicy
from flowsync.worker.registry import default_registry
from tests.rest.server import Owner, Server, finished, serve, worker
from tests.support.target import Target, running_target

VALUE = "tok-5b8e2f-LEAKCHECK-91d7c0"
MARK = "[secret:TOKEN]"
EVENTS = """subscription($wid: ID!) { executionEvents(workflowId: $wid) {
  executionId kind status nodeId data step { input output error } } }"""
RUN = """query($id: ID!) { execution(id: $id) { status input output error
  steps { nodeId status input output error } timeline { kind status data } } }"""


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """Logging as `flowsync worker` configures it, at debug level, into a file."""
    from flowsync.config import Settings

    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    path = tmp_path / "flowsync.log"
    configure_logging(Settings(_env_file=None, log_level="debug"), log_file=path)  # type: ignore[call-arg]
    try:
        yield path
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    async with serve(db_url, secret_key=new_key_text()) as running:
        yield running


def mirror_workflow(target: Target) -> dict[str, Any]:
    call = {
        "method": "POST",
        "url": f"{target.url}/mirror?fail={{{{ input.fail }}}}&k={{{{ secrets.TOKEN }}}}",
        "headers": {"Authorization": "Bearer {{ secrets.TOKEN }}", "X-Plain": "plain"},
        "body": {"token": "{{ secrets.TOKEN }}", "note": "plain"},
        "retry": {"maxAttempts": 2, "initialIntervalSeconds": 0.05, "maxIntervalSeconds": 0.05},
    }
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "call", "type": "action", "data": call},
            {"id": "end", "type": "end", "data": {"output": "{{ steps.call.output }}"}},
        ],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "end"}],
    }


async def watch(server: Server, owner: Owner, wid: str, ended: int) -> list[dict[str, Any]]:
    """The events an executionEvents subscription (GraphQL over SSE) delivers, until
    `ended` runs have ended."""
    events: list[dict[str, Any]] = []
    headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {owner.key}"}
    body = {"query": EVENTS, "variables": {"wid": wid}}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        client.stream("POST", "/graphql", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line.removeprefix("data:"))["data"]["executionEvents"]
            events.append(event)
            if event["kind"] in ("execution.completed", "execution.failed"):
                ended -= 1
                if ended == 0:
                    return events
    return events


def leaks(text: str) -> list[str]:
    """The forms of the value found in `text`: as it is, percent-encoded, or either half
    (a value cut in two by a truncation)."""
    half = len(VALUE) // 2
    forms = {VALUE, quote(VALUE, safe=""), VALUE[:half], VALUE[half:]}
    return sorted(f for f in forms if f in text)


async def test_a_secret_reaches_the_target_and_nowhere_else(server: Server, log_file: Path) -> None:
    owner = await server.owner()
    http = owner.http
    assert (await http.put("/api/secrets/TOKEN", json={"value": VALUE})).status_code == 200
    with running_target() as target:
        document = {"name": "mirror", "definition": mirror_workflow(target)}
        reply = await http.post("/api/workflows", json=document)
        assert reply.status_code == 201, reply.text
        wid = reply.json()["id"]
        watching = asyncio.create_task(watch(server, owner, wid, ended=2))
        await asyncio.sleep(0.3)  # the subscription is listening
        runs = []
        for fail in ("", "1"):
            start = {"workflowId": wid, "input": {"fail": fail}}
            started = await http.post("/api/executions", json=start)
            assert started.status_code == 201, started.text
            runs.append(started.json()["id"])
        registry = default_registry(NetworkPolicy(["127.0.0.1/32"]))
        async with worker(server.services, registry):
            ok, failed = [await finished(http, run) for run in runs]
        events = await asyncio.wait_for(watching, 30)

    # The target got the value in the URL, a header and the body, on every attempt.
    seen = target.requests_to("/mirror")
    assert len(seen) == 3  # the success, and the failure's two attempts
    for request in seen:
        assert request.query["k"] == VALUE
        assert request.headers["authorization"] == f"Bearer {VALUE}"
        assert json.loads(request.body) == {"token": VALUE, "note": "plain"}

    # What the runs kept names the secret instead.
    assert ok["status"] == "COMPLETED" and failed["status"] == "FAILED"
    echoed = ok["output"]["body"]
    assert echoed["headers"]["authorization"] == f"Bearer {MARK}"
    assert json.loads(echoed["body"]) == {"token": MARK, "note": "plain"}
    assert MARK in echoed["url"]
    assert MARK in json.dumps(failed["error"])

    # Every API reply.
    replies: list[str] = [json.dumps(events)]
    for run in runs:
        for path in (f"/api/executions/{run}", f"/api/executions/{run}/timeline"):
            got = await http.get(path)
            assert got.status_code == 200, path
            replies.append(got.text)
        graphql = await http.post("/graphql", json={"query": RUN, "variables": {"id": run}})
        assert "errors" not in graphql.json(), graphql.text
        replies.append(graphql.text)
    for path in ("/api/executions", "/api/dead-letters", "/api/observability/audit",
                 "/api/secrets", f"/api/workflows/{wid}"):  # fmt: skip
        got = await http.get(path)
        assert got.status_code == 200, path
        replies.append(got.text)
    letters = await http.post("/graphql", json={"query": "{ deadLetters { edges { node {"
                                                " error payload } } } auditLog { edges { node"
                                                " { action data } } } }"})  # fmt: skip
    assert "errors" not in letters.json(), letters.text
    replies.append(letters.text)
    assert "dead" in replies[-4] or "items" in replies[-4]
    assert any(e["kind"] == "step.failed" for e in events), events
    for text in replies:
        assert not leaks(text), text

    # Every row of every table.
    pool = server.services.pool
    tables = [r["tablename"] for r in await pool.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]  # fmt: skip
    assert {"step_executions", "execution_events", "dead_letters", "audit_log"} <= set(tables)
    for table in tables:
        rows = await pool.fetch(f'SELECT t::text AS row FROM "{table}" t')
        for row in rows:
            assert not leaks(row["row"]), (table, row["row"])
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 1

    # Every log line (the worker's, the server's, the HTTP client's).
    logged = await asyncio.to_thread(log_file.read_text)
    assert logged  # the run was logged
    assert not leaks(logged), [line for line in logged.splitlines() if leaks(line)]
