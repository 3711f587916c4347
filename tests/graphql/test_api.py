"""Every query and mutation over HTTP with a real client: results, typed failures,
pagination through whole lists, and error masking."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import asyncpg
import httpx
import pytest
from gql.transport.exceptions import TransportQueryError
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from flowsync.config import to_asyncpg_dsn
from tests.graphql.conftest import Api, new_id, op
from tests.support.graphs import chain, fan

WORKFLOW_FIELDS = "id name description version definition createdAt updatedAt"
CREATE = f"""mutation($name: String!, $d: JSON!, $desc: String) {{
  createWorkflow(input: {{name: $name, definition: $d, description: $desc}}) {{
    __typename
    ... on WorkflowPayload {{ workflow {{ {WORKFLOW_FIELDS} }} }}
    ... on ValidationError {{ code message problems {{ path message nodeId }} }}
  }} }}"""
UPDATE = """mutation($id: ID!, $input: UpdateWorkflowInput!) {
  updateWorkflow(id: $id, input: $input) {
  __typename
  ... on WorkflowPayload { workflow { id name description version definition } }
  ... on ValidationError { code message problems { path message nodeId } }
  ... on NotFoundError { code message } } }"""
DELETE = """mutation($id: ID!) { deleteWorkflow(id: $id) {
  __typename ... on DeletedPayload { id } ... on NotFoundError { code message } } }"""
START = """mutation($w: ID!, $input: JSON, $key: String) {
  startExecution(workflowId: $w, input: $input, idempotencyKey: $key) {
    __typename
    ... on StartExecutionPayload { created execution { id status workflowVersion input } }
    ... on ValidationError { code message problems { path message } }
    ... on NotFoundError { code message }
    ... on ConflictError { code message }
    ... on BackpressureError { code message retryAfter } } }"""
CANCEL = """mutation($id: ID!) { cancelExecution(id: $id) {
  __typename ... on ExecutionPayload { execution { id status } }
  ... on NotFoundError { code } ... on ConflictError { code message } } }"""


async def create(session: Any, definition: Any = None, name: str = "wf") -> str:
    result = await session.execute(op(CREATE, name=name, d=definition or chain(2)))
    assert result["createWorkflow"]["__typename"] == "WorkflowPayload", result
    wid: str = result["createWorkflow"]["workflow"]["id"]
    return wid


async def start(session: Any, wid: str, **kw: Any) -> dict[str, Any]:
    result = await session.execute(op(START, w=wid, input=kw.get("input", {"n": 1}),
                                      key=kw.get("key")))  # fmt: skip
    payload: dict[str, Any] = result["startExecution"]
    return payload


async def wait_done(api: Api, session: Any, eid: str) -> dict[str, Any]:
    for _ in range(300):
        got = await session.execute(op("query($id: ID!) { execution(id: $id) { status } }", id=eid))
        if got["execution"]["status"] not in ("PENDING", "RUNNING"):
            return got["execution"]  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("execution did not finish")


async def test_workflow_lifecycle_create_read_update_version_delete(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        created = await s.execute(op(CREATE, name="orders", d=chain(1), desc="first"))
        wf = created["createWorkflow"]["workflow"]
        assert (wf["name"], wf["description"], wf["version"]) == ("orders", "first", 1)
        assert wf["definition"]["nodes"][0] == {"id": "start", "type": "start"}
        wid = wf["id"]

        renamed = await s.execute(op(UPDATE, id=wid, input={"name": "orders-2"}))
        assert renamed["updateWorkflow"]["workflow"]["version"] == 1
        assert renamed["updateWorkflow"]["workflow"]["description"] == "first"
        redefined = await s.execute(op(UPDATE, id=wid, input={"definition": chain(3)}))
        assert redefined["updateWorkflow"]["workflow"]["version"] == 2
        same = await s.execute(op(UPDATE, id=wid, input={"definition": chain(3)}))
        assert same["updateWorkflow"]["workflow"]["version"] == 2

        one = await s.execute(
            op(f"query($id: ID!) {{ workflow(id: $id) {{ {WORKFLOW_FIELDS} }} }}", id=wid)
        )
        assert one["workflow"]["name"] == "orders-2" and one["workflow"]["version"] == 2
        versions = await s.execute(
            op(
                """query($id: ID!) { workflowVersions(workflowId: $id) {
                  edges { node { version definition } } pageInfo { hasNextPage } } }""",
                id=wid,
            )
        )
        assert [e["node"]["version"] for e in versions["workflowVersions"]["edges"]] == [2, 1]

        deleted = await s.execute(op(DELETE, id=wid))
        assert deleted["deleteWorkflow"] == {"__typename": "DeletedPayload", "id": wid}
        assert (await s.execute(op("query($id: ID!) { workflow(id: $id) { id } }", id=wid))) == {
            "workflow": None
        }
        again = await s.execute(op(DELETE, id=wid))
        assert again["deleteWorkflow"]["__typename"] == "NotFoundError"
        gone = await s.execute(
            op("query($id: ID!) { workflowVersions(workflowId: $id) { edges { cursor } } }", id=wid)
        )
        assert gone == {"workflowVersions": None}


async def test_an_invalid_definition_is_a_validation_error_with_paths_and_nodes(api: Api) -> None:
    a = await api.owner()
    broken = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "x", "type": "condition", "data": {"expression": "input. ++"}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "x"}, {"source": "x", "target": "nowhere"}],
    }
    async with api.http(a.key) as s:
        result = (await s.execute(op(CREATE, name="bad", d=broken)))["createWorkflow"]
        assert result["__typename"] == "ValidationError"
        assert result["code"] == "invalid_definition"
        paths = {p["path"] for p in result["problems"]}
        assert any(p.startswith("$.definition.edges[1]") for p in paths), paths
        assert any(p["nodeId"] == "x" for p in result["problems"]), result["problems"]
        # Nothing was stored.
        listed = await s.execute(op("{ workflows { edges { node { id } } } }"))
        assert listed["workflows"]["edges"] == []

        checked = await s.execute(
            op(
                "query($d: JSON!) { validateWorkflow(definition: $d) {"
                " valid problems { path nodeId message } } }",
                d=broken,
            )
        )
        assert checked["validateWorkflow"]["valid"] is False
        assert {p["path"] for p in checked["validateWorkflow"]["problems"]} == paths
        fine = await s.execute(
            op(
                "query($d: JSON!) { validateWorkflow(definition: $d) { valid problems { path } } }",
                d=chain(1),
            )
        )
        assert fine["validateWorkflow"] == {"valid": True, "problems": []}

        wid = await create(s)
        bad_update = await s.execute(op(UPDATE, id=wid, input={"definition": broken}))
        assert bad_update["updateWorkflow"]["__typename"] == "ValidationError"
        missing = await s.execute(op(UPDATE, id=new_id(), input={"name": "x"}))
        assert missing["updateWorkflow"]["__typename"] == "NotFoundError"
        malformed = await s.execute(op(UPDATE, id="not-a-uuid", input={"name": "x"}))
        assert malformed["updateWorkflow"]["__typename"] == "NotFoundError"


async def test_start_cancel_idempotency_and_execution_fields(api: Api, worker: object) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        wid = await create(s, chain(2))
        first = await start(s, wid, input={"n": 5}, key="order-1")
        assert first["__typename"] == "StartExecutionPayload" and first["created"] is True
        repeat = await start(s, wid, input={"n": 5}, key="order-1")
        assert repeat["created"] is False
        assert repeat["execution"]["id"] == first["execution"]["id"]
        eid = first["execution"]["id"]
        assert first["execution"]["workflowVersion"] == 1
        assert first["execution"]["input"] == {"n": 5}
        done = await wait_done(api, s, eid)
        assert done["status"] == "COMPLETED"

        full = await s.execute(
            op(
                """query($id: ID!) { execution(id: $id) {
            id status input output error createdAt startedAt finishedAt durationMs workflowVersion
            workflow { id name } steps { id nodeId nodeType status attempt input output error
              queuedAt startedAt finishedAt durationMs }
            timeline { sequence kind status nodeId at step { nodeId } } } }""",
                id=eid,
            )
        )
        execution = full["execution"]
        assert execution["output"] == {"n": 7} and execution["durationMs"] >= 0
        assert execution["workflow"] == {"id": wid, "name": "wf"}
        assert {st["nodeId"]: st["status"] for st in execution["steps"]} == dict.fromkeys(
            ["start", "t1", "t2", "end"], "COMPLETED"
        )
        sequences = [e["sequence"] for e in execution["timeline"]]
        assert sequences == list(range(1, len(sequences) + 1))
        assert execution["timeline"][-1]["kind"] == "execution.completed"

        ended = await s.execute(op(CANCEL, id=eid))
        assert ended["cancelExecution"]["__typename"] == "ConflictError"
        missing = await s.execute(op(CANCEL, id=new_id()))
        assert missing["cancelExecution"]["__typename"] == "NotFoundError"
        nowhere = await start(s, new_id())
        assert nowhere["__typename"] == "NotFoundError"
        long_key = await start(s, wid, key="k" * 300)
        assert long_key["__typename"] == "ValidationError"
        assert long_key["problems"][0]["path"] == "idempotencyKey"


async def test_cancel_a_running_execution(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        wid = await create(s, chain(1, delay=30))
        eid = (await start(s, wid))["execution"]["id"]  # no worker runs: it stays RUNNING
        cancelled = await s.execute(op(CANCEL, id=eid))
        assert cancelled["cancelExecution"] == {
            "__typename": "ExecutionPayload",
            "execution": {"id": eid, "status": "CANCELLED"},
        }


async def test_pagination_walks_whole_lists_with_filters(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        wids = [await create(s, chain(1), name=f"w{i}") for i in range(5)]
        seen: list[str] = []
        after = None
        while True:
            page = await s.execute(
                op(
                    """query($after: String) { workflows(first: 2, after: $after) {
                edges { cursor node { name } }
                pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }""",
                    after=after,
                )
            )
            conn = page["workflows"]
            seen += [e["node"]["name"] for e in conn["edges"]]
            assert conn["pageInfo"]["hasPreviousPage"] is (after is not None)
            assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        assert seen == ["w4", "w3", "w2", "w1", "w0"]

        # Executions: 3 of w0, 2 of w1, one cancelled; newest first, filters, pages of 2.
        started = [(await start(s, wids[0]))["execution"]["id"] for _ in range(3)]
        started += [(await start(s, wids[1]))["execution"]["id"] for _ in range(2)]
        await s.execute(op(CANCEL, id=started[0]))
        query = """query($w: ID, $st: ExecutionStatus, $after: String) {
            executions(workflowId: $w, status: $st, first: 2, after: $after) {
              edges { cursor node { id status } } pageInfo { hasNextPage endCursor } } }"""

        async def walk(**filters: Any) -> list[str]:
            ids: list[str] = []
            cursor = None
            while True:
                got = (await s.execute(op(query, after=cursor, **filters)))["executions"]
                ids += [e["node"]["id"] for e in got["edges"]]
                if not got["pageInfo"]["hasNextPage"]:
                    return ids
                cursor = got["pageInfo"]["endCursor"]

        assert await walk() == started[::-1]
        assert await walk(w=wids[0]) == started[:3][::-1]
        assert await walk(st="CANCELLED") == [started[0]]
        assert await walk(w=wids[0], st="RUNNING") == started[1:3][::-1]
        assert await walk(w=new_id()) == []
        assert await walk(w="not-a-uuid") == []

        nested = await s.execute(
            op("""{ workflows(first: 5) { edges { node { name
            executions(first: 1) { edges { node { id } }
              pageInfo { hasNextPage endCursor } } } } } }""")
        )
        by_name = {e["node"]["name"]: e["node"]["executions"] for e in nested["workflows"]["edges"]}
        assert [e["node"]["id"] for e in by_name["w0"]["edges"]] == [started[2]]
        assert by_name["w0"]["pageInfo"]["hasNextPage"] is True
        assert by_name["w4"]["edges"] == []
        rest = await s.execute(op("""query($w: ID!, $after: String) { workflow(id: $w) {
            executions(first: 5, after: $after) { edges { node { id } } } } }""",
            w=wids[0], after=by_name["w0"]["pageInfo"]["endCursor"]))  # fmt: skip
        assert [e["node"]["id"] for e in rest["workflow"]["executions"]["edges"]] == started[:2][
            ::-1
        ]

        for i in range(3):
            await s.execute(op(UPDATE, id=wids[2], input={"definition": chain(i + 2)}))
        versions: list[int] = []
        cursor = None
        while True:
            got = (
                await s.execute(
                    op(
                        """query($w: ID!, $after: String) {
                        workflowVersions(workflowId: $w, first: 3, after: $after) {
                edges { node { version } } pageInfo { hasNextPage endCursor } } }""",
                        w=wids[2],
                        after=cursor,
                    )
                )
            )["workflowVersions"]
            versions += [e["node"]["version"] for e in got["edges"]]
            if not got["pageInfo"]["hasNextPage"]:
                break
            cursor = got["pageInfo"]["endCursor"]
        assert versions == [4, 3, 2, 1]


async def test_bad_page_arguments_are_clear_errors_never_500(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        for args, path in (
            ("first: 0", "first"),
            ("first: 201", "first"),
            ('after: "zzz"', "after"),
        ):
            with pytest.raises(TransportQueryError) as caught:
                await s.execute(op(f"{{ executions({args}) {{ edges {{ cursor }} }} }}"))
            error = caught.value.errors[0]  # type: ignore[index]
            assert error["extensions"]["code"] == "invalid_input"
            assert error["extensions"]["problems"][0]["path"] == path
        with pytest.raises(TransportQueryError, match=r"not a cursor|not valid"):
            await s.execute(
                op('{ workflowVersions(workflowId: "x", after: "bad") { edges { cursor } } }')
            )
    async with httpx.AsyncClient() as client:
        headers = {"Authorization": f"Bearer {a.key}"}
        for body in (b"{", b"[]", b'{"query": 5}', b'{"query": "{ nope }"}', b"\xff\xfe",
                     b'{"query": "query($x: Int!) { workflows(first: $x) { edges { cursor } } }",'
                     b' "variables": {"x": "a"}}',
                     b'{"query": "{ workflows(first: 99999999999) { edges { cursor } } }"}',
                     ):  # fmt: skip
            reply = await client.post(
                api.http_url, content=body, headers={**headers, "Content-Type": "application/json"}
            )
            assert 400 <= reply.status_code < 500 or "errors" in reply.json(), (body, reply.text)
            assert reply.status_code < 500, (body, reply.text)


async def test_api_keys_are_created_shown_once_and_revoked(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        made = await s.execute(
            op("""mutation { createApiKey(name: "ci") { __typename
            ... on CreateApiKeyPayload {
              secret apiKey { id name prefix createdAt revokedAt } } } }""")
        )
        payload = made["createApiKey"]
        assert payload["secret"].startswith(payload["apiKey"]["prefix"])
        assert payload["apiKey"]["revokedAt"] is None
        blank = await s.execute(
            op("""mutation { createApiKey(name: "  ") { __typename
            ... on ValidationError { problems { path } } } }""")
        )
        assert blank["createApiKey"] == {
            "__typename": "ValidationError",
            "problems": [{"path": "name"}],
        }
    async with api.http(payload["secret"]) as s:
        revoked = await s.execute(
            op(
                """mutation($id: ID!) { revokeApiKey(id: $id) { __typename
            ... on ApiKeyPayload { apiKey { id revokedAt } } } }""",
                id=payload["apiKey"]["id"],
            )
        )
        assert revoked["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    async with httpx.AsyncClient() as client:
        reply = await client.post(api.http_url, json={"query": "{ health { status } }"},
                                  headers={"Authorization": f"Bearer {payload['secret']}"},
                                  )  # fmt: skip
        assert reply.status_code == 401
    async with api.http(a.key) as s:
        missing = await s.execute(op('mutation { revokeApiKey(id: "nope") { __typename } }'))
        assert missing["revokeApiKey"]["__typename"] == "NotFoundError"


async def test_health_reports_database_and_listener(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        health = await s.execute(op("{ health { status database eventsListener } }"))
    assert health["health"] == {"status": "ok", "database": "ok", "eventsListener": "ok"}


async def test_unexpected_errors_are_masked_and_logged(
    api: Api, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        await create(s)
    # Break the database under the running server: a real failure, not a mock.
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        await conn.execute("ALTER TABLE workflow_versions RENAME COLUMN definition TO gone")
    finally:
        await conn.close()
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            api.http_url,
            json={"query": "{ workflows { edges { node { name definition } } } }"},
            headers={"Authorization": f"Bearer {a.key}"},
        )
    assert reply.status_code == 200
    body = reply.json()
    assert body["errors"][0]["message"] == "Unexpected error."
    assert (
        "gone" not in reply.text
        and "SELECT" not in reply.text
        and "definition" not in body["errors"][0]["message"]
    )
    assert (
        body["data"]["workflows"]["edges"][0]["node"] == {"name": "wf", "definition": None}
        or body["data"] is None
    )
    assert any("unexpected error" in r.message for r in caplog.records)


async def test_fan_out_workflow_runs_through_the_api(api: Api, worker: object) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        wid = await create(s, fan(3))
        eid = (await start(s, wid))["execution"]["id"]
        assert (await wait_done(api, s, eid))["status"] == "COMPLETED"


async def test_unexpected_errors_in_subscriptions_are_masked_too(api: Api, db_url: str) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "wf", None, chain(1))).id
    eid = (await api.services.executions.start(a.principal, wid, {"n": 1})).execution.id
    conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
    try:
        await conn.execute("ALTER TABLE step_executions RENAME COLUMN node_type TO gone")
    finally:
        await conn.close()
    async with api.ws(a.key) as ws:
        with pytest.raises(TransportQueryError) as caught:
            async for _ in ws.subscribe(
                op("subscription($id: ID!) { executionUpdated(id: $id) { kind } }", id=str(eid))
            ):
                pass
    errors = caught.value.errors or []
    assert errors and all(e["message"] == "Unexpected error." for e in errors), errors
    assert "gone" not in str(caught.value)


async def test_malformed_requests_answer_4xx_never_500(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    a = await api.owner()
    auth = {"Authorization": f"Bearer {a.key}"}
    deep_json = b'{"query": "{ health { status } }", "variables": ' + b"[" * 50_000
    deep_json += b"]" * 50_000 + b"}"
    deep_query = b"[" * 5000 + b"]" * 5000
    cases: list[tuple[str, bytes]] = [
        ("application/json", deep_json),
        ("application/json", b'{"query": "{ workflows(first: ' + deep_query + b") { cursor } }\"}"),
        ("application/json", b'{"query": "subscription { executionEvents { kind } }"}'),
        ("application/json", b'{"query": "{ health { status } }", "operationName": 5}'),
        ("application/json", b'{"query": "query A { health { status } } query B { a: health }"}'),
        ("text/plain", b"{ health { status } }"),
        ("multipart/form-data; boundary=x", b"--x\r\n\r\n{}\r\n--x--"),
    ]  # fmt: skip
    async with httpx.AsyncClient() as client:
        for content_type, body in cases:
            reply = await client.post(
                api.http_url, content=body, headers={**auth, "Content-Type": content_type}
            )
            assert reply.status_code < 500, (body[:80], reply.text)
        reply = await client.get(
            api.http_url, params={"query": 'mutation { deleteWorkflow(id: "x") { __typename } }'},
            headers=auth,
        )  # fmt: skip
        assert reply.status_code == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_malformed_websocket_messages_close_the_socket_cleanly(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    a = await api.owner()
    init = json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {a.key}"}})
    for messages in (
        ["not json"],
        [
            json.dumps(
                {"type": "subscribe", "id": "1", "payload": {"query": "{ health { status } }"}}
            )
        ],
        [init, json.dumps({"type": "no such type"})],
        [
            init,
            json.dumps({"type": "subscribe", "id": "1", "payload": {"query": "subscription {"}}),
        ],
        [init, init],
    ):
        async with connect(api.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
            for message in messages:
                await ws.send(message)
            with contextlib.suppress(ConnectionClosed):
                while True:
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if reply["type"] in ("error", "next", "complete"):
                        break
            assert ws.close_code is None or 4000 <= ws.close_code < 5000, messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
