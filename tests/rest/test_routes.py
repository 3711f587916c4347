"""The REST routes over real sockets (uvicorn on 127.0.0.1): bodies, statuses, the error
envelope, owner isolation, pagination and idempotency."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from tests.rest.server import Owner, Server, finished, new_id, serve, worker
from tests.support.graphs import chain

DELAYED = chain(1, delay=60)  # a run that stays RUNNING (its timer holds no worker)


def error_of(reply: httpx.Response) -> dict[str, Any]:
    """The envelope's error, checking the envelope's shape on the way."""
    body = reply.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and error["message"]
    return error


async def create(me: Owner, definition: Any = None, name: str = "wf") -> dict[str, Any]:
    reply = await me.http.post(
        "/api/workflows", json={"name": name, "definition": definition or chain(1)}
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def test_workflow_crud_in_camel_case(me: Owner) -> None:
    created = await me.http.post(
        "/api/workflows",
        json={"name": "orders", "description": "sync", "definition": chain(1), "maxConcurrency": 3},
    )
    assert created.status_code == 201
    wf = created.json()
    assert created.headers["location"] == f"/api/workflows/{wf['id']}"
    assert set(wf) == {
        "id", "name", "description", "version", "definition", "maxConcurrency",
        "createdAt", "updatedAt",
    }  # fmt: skip
    assert (wf["name"], wf["description"], wf["version"], wf["maxConcurrency"]) == (
        "orders", "sync", 1, 3,
    )  # fmt: skip
    assert wf["definition"]["nodes"][0]["id"] == "start"
    assert (await me.http.get(f"/api/workflows/{wf['id']}")).json() == wf

    renamed = (await me.http.put(f"/api/workflows/{wf['id']}", json={"name": "orders2"})).json()
    assert (renamed["name"], renamed["version"], renamed["maxConcurrency"]) == ("orders2", 1, 3)
    bumped = await me.http.put(f"/api/workflows/{wf['id']}", json={"definition": chain(2)})
    assert bumped.json()["version"] == 2
    assert (
        bumped.json()["definition"]
        == (await me.http.get(f"/api/workflows/{wf['id']}")).json()["definition"]
    )
    unlimited = await me.http.put(f"/api/workflows/{wf['id']}", json={"maxConcurrency": None})
    assert unlimited.json()["maxConcurrency"] is None

    deleted = await me.http.delete(f"/api/workflows/{wf['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    gone = await me.http.get(f"/api/workflows/{wf['id']}")
    assert gone.status_code == 404 and error_of(gone)["code"] == "not_found"


async def test_lists_page_with_limit_and_cursor(me: Owner) -> None:
    ids = [(await create(me, name=f"w{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await me.http.get("/api/workflows", params=params)).json()
        assert set(body) == {"items", "nextCursor"}
        seen += [w["id"] for w in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == list(reversed(ids))
    for params, path in [({"limit": 0}, "limit"), ({"limit": "x"}, "limit"),
                         ({"cursor": "nope"}, "cursor")]:  # fmt: skip
        bad = await me.http.get("/api/workflows", params=params)
        assert bad.status_code == 400, params
        assert error_of(bad)["details"][0]["path"] == path


async def test_an_invalid_definition_is_422_naming_every_path(me: Owner) -> None:
    definition = {
        "nodes": [{"id": "start", "type": "start"}, {"id": "x", "type": "action", "data": {}}],
        "edges": [{"source": "start", "target": "x"}, {"source": "x", "target": "nowhere"}],
    }
    reply = await me.http.post("/api/workflows", json={"name": "bad", "definition": definition})
    assert reply.status_code == 422
    error = error_of(reply)
    assert error["code"] == "invalid_definition"
    paths = {d["path"] for d in error["details"]}
    assert any(p.startswith("$.definition.edges[1]") for p in paths), paths
    assert any(p.startswith("$.definition.nodes[1]") for p in paths), paths
    assert (await me.http.get("/api/workflows")).json()["items"] == []


@pytest.mark.parametrize(
    ("content", "path"),
    [
        (b"{not json", "$"),
        (b"", "$"),
        (b"[1, 2]", "$"),
        (b'{"name": 5, "definition": {}}', "$.name"),
        (b'{"definition": {}}', "$.name"),
        (b'{"name": "x", "definition": {}, "colour": "red"}', "$.colour"),
    ],
)
async def test_a_malformed_body_is_400_with_its_path(me: Owner, content: bytes, path: str) -> None:
    reply = await me.http.post(
        "/api/workflows", content=content, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    error = error_of(reply)
    assert error["code"] == "invalid_input"
    assert path in {d["path"] for d in error["details"]}


async def test_credentials_are_required_and_checked(server: Server, me: Owner) -> None:
    for token in (None, "fsk_not-a-key", "garbage"):
        reply = await server.client(token).get("/api/workflows")
        assert reply.status_code == 401
        assert reply.headers["www-authenticate"].startswith("Bearer")
        assert error_of(reply)["code"] == "unauthenticated"
    assert (await me.http.get("/api/workflows")).status_code == 200


async def test_another_owners_objects_answer_as_missing_ones(server: Server, me: Owner) -> None:
    other = await server.owner()
    wf = await create(me)
    started = (await me.http.post("/api/executions", json={"workflowId": wf["id"]})).json()
    missing = new_id()
    for path in (f"/api/workflows/{wf['id']}", f"/api/executions/{started['id']}",
                 f"/api/executions/{started['id']}/timeline"):  # fmt: skip
        theirs = await other.http.get(path)
        absent = await other.http.get(path.replace(path.split("/")[3], missing))
        assert theirs.status_code == absent.status_code == 404
        assert error_of(theirs)["code"] == error_of(absent)["code"] == "not_found"
    assert (await other.http.delete(f"/api/workflows/{wf['id']}")).status_code == 404
    assert (await other.http.post(f"/api/executions/{started['id']}/cancel")).status_code == 404
    assert (await other.http.get("/api/executions")).json()["items"] == []
    # A malformed id is no one's: 400 naming the path parameter (tests/rest/test_path_ids.py).
    assert (await other.http.get("/api/workflows/not-a-uuid")).status_code == 400


async def test_unknown_routes_and_methods_answer_the_envelope(me: Owner) -> None:
    missing = await me.http.get("/api/nothing/here")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong = await me.http.patch("/api/workflows")
    assert wrong.status_code == 405
    assert error_of(wrong)["code"] == "method_not_allowed"
    assert set(wrong.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


async def test_start_honours_idempotency_key_201_then_200(me: Owner) -> None:
    wf = await create(me, DELAYED)
    body = {"workflowId": wf["id"], "input": {"n": 1}}
    first = await me.http.post("/api/executions", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/api/executions/{first.json()['id']}"
    assert "idempotent-replayed" not in first.headers
    again = await me.http.post(
        "/api/executions", json={**body, "input": {"n": 2}}, headers={"Idempotency-Key": "k-1"}
    )
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] and again.json()["input"] == {"n": 1}
    in_body = await me.http.post("/api/executions", json={**body, "idempotencyKey": "k-1"})
    assert in_body.status_code == 200 and in_body.json()["id"] == first.json()["id"]
    clash = await me.http.post(
        "/api/executions",
        json={**body, "idempotencyKey": "k-2"},
        headers={"Idempotency-Key": "k-1"},
    )
    assert clash.status_code == 400
    assert error_of(clash)["details"][0]["path"] == "$.idempotencyKey"
    other = await me.http.post("/api/executions", json=body, headers={"Idempotency-Key": "k-3"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    listed = (await me.http.get("/api/executions", params={"workflowId": wf["id"]})).json()
    assert len(listed["items"]) == 2
    # A batch's keys are its items': a header would be silently ignored, so it is refused.
    batch = await me.http.post(
        f"/api/workflows/{wf['id']}/executions:batch",
        json={"inputs": [{"input": {"n": 3}}]},
        headers={"Idempotency-Key": "k-4"},
    )
    assert batch.status_code == 400, batch.text
    assert error_of(batch)["details"][0]["path"] == "headers.idempotency-key"
    listed = (await me.http.get("/api/executions", params={"workflowId": wf["id"]})).json()
    assert len(listed["items"]) == 2


async def test_an_execution_runs_and_reads_back_with_steps(server: Server, me: Owner) -> None:
    wf = await create(me, chain(2))
    started = await me.http.post(
        "/api/executions", json={"workflowId": wf["id"], "input": {"n": 1}}
    )
    assert started.status_code == 201
    execution = started.json()
    assert "steps" not in execution
    assert (execution["workflowId"], execution["workflowVersion"]) == (wf["id"], 1)
    async with worker(server.services):
        done = await finished(me.http, execution["id"])
    assert done["status"] == "COMPLETED" and done["output"] == {"n": 3}
    assert done["durationMs"] >= 0 and done["finishedAt"] >= done["startedAt"]
    assert [s["nodeId"] for s in done["steps"]] == ["start", "t1", "t2", "end"]
    step = done["steps"][1]
    assert set(step) == {
        "id", "nodeId", "nodeType", "status", "attempt", "input", "output", "error",
        "queuedAt", "startedAt", "finishedAt", "durationMs", "workerId", "workerHost",
    }  # fmt: skip
    assert (step["nodeType"], step["status"], step["attempt"]) == ("transform", "COMPLETED", 1)
    # The worker that ran it: its id (host:pid:suffix by default) and host.
    assert step["workerHost"] == socket.gethostname()
    assert step["workerId"].startswith(f"{socket.gethostname()}:")
    assert step["output"] == {"n": 2}
    by_status = await me.http.get("/api/executions", params={"status": "COMPLETED"})
    assert [e["id"] for e in by_status.json()["items"]] == [execution["id"]]
    assert (await me.http.get("/api/executions", params={"status": "RUNNING"})).json()[
        "items"
    ] == []
    bad = await me.http.get("/api/executions", params={"status": "DONE"})
    assert bad.status_code == 400 and error_of(bad)["details"][0]["path"] == "status"
    unknown = await me.http.get("/api/executions", params={"workflowId": "not-a-uuid"})
    assert unknown.status_code == 200 and unknown.json()["items"] == []


async def test_cancel_then_cancel_again_is_409(me: Owner) -> None:
    wf = await create(me, DELAYED)
    started = (await me.http.post("/api/executions", json={"workflowId": wf["id"]})).json()
    cancelled = await me.http.post(f"/api/executions/{started['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    again = await me.http.post(f"/api/executions/{started['id']}/cancel")
    assert again.status_code == 409 and error_of(again)["code"] == "conflict"
    missing = await me.http.post(f"/api/executions/{new_id()}/cancel")
    assert missing.status_code == 404
    no_workflow = await me.http.post("/api/executions", json={"workflowId": new_id()})
    assert no_workflow.status_code == 404


async def test_trigger_crud_and_secret_rotation(me: Owner) -> None:
    wf = await create(me)
    cron = await me.http.post(
        "/api/triggers",
        json={"workflowId": wf["id"], "type": "cron",
              "config": {"expression": "*/5 * * * *", "timezone": "Europe/Paris"}},
    )  # fmt: skip
    assert cron.status_code == 201, cron.text
    trigger = cron.json()
    assert (trigger["type"], trigger["enabled"], trigger["webhookUrl"]) == ("CRON", True, None)
    assert trigger["config"]["misfire"] == {"policy": "fire_once"}
    assert trigger["nextRunAt"] is not None and "secret" not in trigger

    hook = (
        await me.http.post("/api/triggers", json={"workflowId": wf["id"], "type": "WEBHOOK"})
    ).json()
    assert hook["secret"].startswith("whsec_")
    assert hook["webhookUrl"] == f"/api/webhooks/{hook['id']}"
    read = (await me.http.get(f"/api/triggers/{hook['id']}")).json()
    assert "secret" not in read and read["config"]["requireSignature"] is True
    rotated = await me.http.post(f"/api/triggers/{hook['id']}/rotate-secret")
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (None, hook["secret"])
    not_webhook = await me.http.post(f"/api/triggers/{trigger['id']}/rotate-secret")
    assert not_webhook.status_code == 409

    disabled = await me.http.put(f"/api/triggers/{trigger['id']}", json={"enabled": False})
    assert disabled.json()["enabled"] is False and disabled.json()["nextRunAt"] is None
    listed = (await me.http.get("/api/triggers", params={"type": "WEBHOOK"})).json()
    assert [t["id"] for t in listed["items"]] == [hook["id"]]
    assert (await me.http.delete(f"/api/triggers/{trigger['id']}")).status_code == 204
    assert (await me.http.get(f"/api/triggers/{trigger['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"expression": "every day"}, "$.config.expression"),
        ({"expression": "* * * * *", "timezone": "Mars/Olympus"}, "$.config.timezone"),
        # Files of the zone database that ZoneInfo loads but are no zone to name: the
        # host's own (another on each host) and tzdata's placeholder (found by QA).
        ({"expression": "* * * * *", "timezone": "localtime"}, "$.config.timezone"),
        ({"expression": "* * * * *", "timezone": "Factory"}, "$.config.timezone"),
        # croniter's random minute, drawn again at each reading (found by QA).
        ({"expression": "R * * * *"}, "$.config.expression"),
    ],
)
async def test_a_bad_cron_trigger_is_422_naming_the_field(
    me: Owner, config: dict[str, Any], path: str
) -> None:
    wf = await create(me)
    reply = await me.http.post(
        "/api/triggers", json={"workflowId": wf["id"], "type": "CRON", "config": config}
    )
    assert reply.status_code == 422
    error = error_of(reply)
    assert error["code"] == "invalid_trigger" and path in {d["path"] for d in error["details"]}
    assert (await me.http.get("/api/triggers")).json()["items"] == []


async def test_bodies_over_the_limit_are_413(db_url: str) -> None:
    async with serve(db_url, max_body_bytes=2048) as server:
        me = await server.owner()
        big = {"name": "x" * 4096, "definition": chain(1)}
        reply = await me.http.post("/api/workflows", json=big)
        assert reply.status_code == 413 and error_of(reply)["code"] == "payload_too_large"

        async def chunks() -> Any:  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b" " * 1024

        streamed = await me.http.post("/api/workflows", content=chunks())
        assert streamed.status_code == 413


async def test_rate_limits_answer_429_with_retry_after(db_url: str) -> None:
    async with serve(db_url, rate_limit_per_principal="3/minute") as server:
        me = await server.owner()
        statuses = [(await me.http.get("/api/workflows")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = await me.http.get("/api/workflows")
        assert error_of(limited)["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        # Health is for probes: never limited.
        assert (await server.client().get("/api/health")).status_code == 200


async def test_backpressure_answers_503_with_retry_after(db_url: str) -> None:
    async with serve(db_url, max_queue_depth=1) as server:
        me = await server.owner()
        wf = await create(me)
        body = {"workflowId": wf["id"]}
        for _ in range(2):  # no worker: each run leaves a due job behind
            assert (await me.http.post("/api/executions", json=body)).status_code == 201
        await asyncio.sleep(1.1)  # the depth is measured at most once a second
        refused = await me.http.post("/api/executions", json=body)
        assert refused.status_code == 503
        assert error_of(refused)["code"] == "backpressure"
        assert int(refused.headers["retry-after"]) >= 1


async def test_json_nested_too_deep_is_400_not_a_server_error(server: Server, me: Owner) -> None:
    wf = await create(me)
    deep = "[" * 300 + "]" * 300  # the engine re-encodes JSON with bounded recursion
    for path, body in [
        ("/api/executions", f'{{"workflowId": "{wf["id"]}", "input": {deep}}}'),
        ("/api/workflows", '{"name": "x", "definition": ' + "[" * 1000 + "]" * 1000 + "}"),
    ]:
        reply = await me.http.post(
            path, content=body.encode(), headers={"content-type": "application/json"}
        )
        assert reply.status_code == 400, path
        assert error_of(reply)["details"][0]["message"] == "nested more than 100 levels deep"
    nested = "[" * 99 + "]" * 99
    fine = f'{{"workflowId": "{wf["id"]}", "input": {nested}}}'
    assert (
        await me.http.post(
            "/api/executions", content=fine, headers={"content-type": "application/json"}
        )
    ).status_code == 201
    made = await me.http.post(
        "/api/triggers",
        json={"workflowId": wf["id"], "type": "WEBHOOK", "config": {"requireSignature": False}},
    )
    url = made.json()["webhookUrl"]
    hook = await server.client().post(
        url, content=deep.encode(), headers={"content-type": "application/json"}
    )
    assert hook.status_code == 400 and error_of(hook)["details"][0]["path"] == "body"
    as_text = await server.client().post(url, content=deep.encode())  # text: not parsed
    assert as_text.status_code == 202
