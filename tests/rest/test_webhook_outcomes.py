"""What a synchronous webhook answers, over real HTTP with a worker, for each way its run
can go: a `webhook_response` reached (its reply), completed without one (200), failed
first (502 with the error), cancelled (409), still running at the bound (202 with the
status); and an asynchronous one (202 at once)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.rest.server import Owner, Server, eventually, finished, worker
from tests.support.graphs import chain

# Fails its `boom` step: the body has no `missing` key.
FAILING: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "boom", "type": "transform",
         "data": {"output": {"x": "{{ trigger.body.missing }}"}}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "boom"}, {"source": "boom", "target": "end"}],
}  # fmt: skip
# Completes, reading nothing of its start.
CONSTANT: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "t", "type": "transform", "data": {"output": {"done": True}}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "end"}],
}
# Answers 200 itself when the body says ok, else fails on its way to the end.
ANSWERS_OK_ONLY: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "check", "type": "condition", "data": {"expression": "trigger.body.ok"}},
        {"id": "reply", "type": "webhook_response", "data": {"status": 200, "body": {"ok": 1}}},
        {"id": "boom", "type": "transform",
         "data": {"output": {"x": "{{ trigger.body.missing }}"}}},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"source": "start", "target": "check"},
        {"source": "check", "target": "reply", "sourceHandle": "true"},
        {"source": "check", "target": "boom", "sourceHandle": "false"},
        {"source": "reply", "target": "end"},
        {"source": "boom", "target": "end"},
    ],
}  # fmt: skip


async def sync_hook(me: Owner, definition: Any, timeout: float = 10) -> str:
    wf = await me.http.post("/api/workflows", json={"name": "hook", "definition": definition})
    assert wf.status_code == 201, wf.text
    made = await me.http.post(
        "/api/triggers",
        json={
            "workflowId": wf.json()["id"], "type": "WEBHOOK",
            "config": {"requireSignature": False, "mode": "sync", "syncTimeoutSeconds": timeout},
        },
    )  # fmt: skip
    assert made.status_code == 201, made.text
    url: str = made.json()["webhookUrl"]
    return url


async def test_a_failed_run_answers_502_with_its_error(server: Server, me: Owner) -> None:
    url = await sync_hook(me, FAILING)
    async with worker(server.services):
        reply = await server.client().post(url, json={"order": 1})
    assert reply.status_code == 502, reply.text
    body = reply.json()
    run_id = reply.headers["x-flowsync-execution-id"]
    assert (body["executionId"], body["status"]) == (run_id, "FAILED")
    assert body["error"]["nodeId"] == "boom"
    assert "missing" in body["error"]["message"]
    assert set(body["error"]) <= {"nodeId", "message", "code"}
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert (await finished(me.http, run_id))["status"] == "FAILED"


async def test_a_run_answers_itself_when_it_reaches_its_response(server: Server, me: Owner) -> None:
    url = await sync_hook(me, ANSWERS_OK_ONLY)
    async with worker(server.services):
        ok = await server.client().post(url, json={"ok": True})
        failed = await server.client().post(url, json={"ok": False})
    assert (ok.status_code, ok.json()) == (200, {"ok": 1})
    assert failed.status_code == 502 and failed.json()["error"]["nodeId"] == "boom"


async def test_a_run_that_completes_without_a_response_answers_200(
    server: Server, me: Owner
) -> None:
    url = await sync_hook(me, CONSTANT)
    async with worker(server.services):
        reply = await server.client().post(url, json={"n": 1}, headers={"Idempotency-Key": "k"})
        again = await server.client().post(url, json={"n": 1}, headers={"Idempotency-Key": "k"})
    run_id = reply.headers["x-flowsync-execution-id"]
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"executionId": run_id, "status": "COMPLETED"}  # no output
    # A redelivery answers as the first did, from the same run.
    assert (again.status_code, again.json()) == (200, reply.json())
    assert again.headers["idempotent-replayed"] == "true"


async def test_a_cancelled_run_answers_409(server: Server, me: Owner) -> None:
    url = await sync_hook(me, chain(1, delay=60))
    async with worker(server.services):
        delivery = asyncio.create_task(server.client().post(url, json={"n": 1}))

        async def running() -> str | None:
            items = (await me.http.get("/api/executions")).json()["items"]
            return items[0]["id"] if items and items[0]["status"] == "RUNNING" else None

        run_id = await eventually(running, what="the run to start")
        assert (await me.http.post(f"/api/executions/{run_id}/cancel")).status_code == 200
        reply = await delivery
    assert reply.status_code == 409, reply.text
    body = reply.json()
    assert (body["executionId"], body["status"]) == (run_id, "CANCELLED")
    assert body["error"]["message"].startswith("cancelled by")


async def test_a_run_still_going_at_the_bound_answers_202_with_its_status(
    server: Server, me: Owner
) -> None:
    url = await sync_hook(me, chain(1, delay=60), timeout=0.4)
    async with worker(server.services):
        began = time.monotonic()
        reply = await server.client().post(url, json={"n": 1})
        elapsed = time.monotonic() - began
    assert reply.status_code == 202 and 0.4 <= elapsed < 2
    body = reply.json()
    assert body == {"executionId": reply.headers["x-flowsync-execution-id"], "status": "RUNNING"}


async def test_without_a_worker_a_sync_run_answers_202_pending_at_the_bound(
    server: Server, me: Owner
) -> None:
    url = await sync_hook(me, chain(1), timeout=0.3)
    reply = await server.client().post(url, json={"n": 1})
    assert reply.status_code == 202
    assert reply.json()["status"] in ("PENDING", "RUNNING")


async def test_an_async_trigger_answers_202_at_once_whatever_the_run_does(
    server: Server, me: Owner
) -> None:
    wf = await me.http.post("/api/workflows", json={"name": "a", "definition": FAILING})
    made = await me.http.post(
        "/api/triggers",
        json={"workflowId": wf.json()["id"], "type": "WEBHOOK",
              "config": {"requireSignature": False}},
    )  # fmt: skip
    reply = await server.client().post(made.json()["webhookUrl"], json={})
    assert reply.status_code == 202
    assert reply.json() == {"executionId": reply.headers["x-flowsync-execution-id"]}
