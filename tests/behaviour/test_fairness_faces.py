"""Priorities and concurrency keys through both faces of one real server: a start's
`priority` (single and batch) is stored and shown with the run's `concurrencyKey`; a
trigger's `priority` is set, changed and cleared, and the runs it starts take it; a run
whose key is full waits PENDING and starts when one of its key ends; a priority out of
range is refused naming `priority` and the range, and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.behaviour.faces import FACES, Face, FaceError, GraphQLFace, field_path
from tests.rest.server import Server, serve

_RUN = "id status priority concurrencyKey"


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    async with serve(db_url) as running:
        yield running


@pytest.fixture(params=sorted(FACES))
async def face(request: pytest.FixtureRequest, server: Server) -> Face:
    owner = await server.owner()
    return FACES[request.param](owner.http)


def napping(**top: Any) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "nap", "type": "delay", "data": {"seconds": 600}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "nap"}, {"source": "nap", "target": "end"}],
        **top,
    }


class Refused(Exception):
    """A face refused the call: its error code and the paths it named."""

    def __init__(self, code: str, paths: set[str], message: str):
        super().__init__(message)
        self.code, self.paths, self.message = code, paths, message


def _gql_result(result: dict[str, Any], payload: str) -> Any:
    if "code" in result:
        raise Refused(result["code"], {p["path"] for p in result.get("problems", [])},
                      result["message"])  # fmt: skip
    return result[payload]


async def _gql(face: Face, document: str, **variables: Any) -> dict[str, Any]:
    body = (
        await face.http.post("/graphql", json={"query": document, "variables": variables})
    ).json()
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


def _rest(reply: Any, *ok: int) -> Any:
    if reply.status_code in ok:
        return reply.json()
    error = reply.json()["error"]
    raise Refused(error["code"], {d["path"] for d in error["details"]}, error["message"])


_ERR = "... on UserError { code message } ... on ValidationError { problems { path } }"


async def start(face: Face, wf: str, input: Any, priority: Any = None) -> dict[str, Any]:
    if isinstance(face, GraphQLFace):
        data = await _gql(
            face,
            "mutation($w: ID!, $i: JSON, $p: Int) { startExecution(workflowId: $w, input: $i,"
            f" priority: $p) {{ ... on StartExecutionPayload {{ execution {{ {_RUN} }} }} {_ERR}"
            " } }",
            w=wf, i=input, p=priority,
        )  # fmt: skip
        return dict(_gql_result(data["startExecution"], "execution"))
    body = {"workflowId": wf, "input": input, **({"priority": priority} if priority else {})}
    found = _rest(await face.http.post("/api/executions", json=body), 201)
    return {k: found[k] for k in _RUN.split()}


async def start_batch(
    face: Face, wf: str, inputs: list[Any], priority: Any
) -> list[dict[str, Any]]:
    if isinstance(face, GraphQLFace):
        data = await _gql(
            face,
            "mutation($w: ID!, $i: [StartExecutionItem!]!, $p: Int) { startExecutions("
            "workflowId: $w, inputs: $i, priority: $p) { ... on StartExecutionsPayload {"
            f" results {{ execution {{ {_RUN} }} }} }} {_ERR} }} }}",
            w=wf, i=[{"input": x} for x in inputs], p=priority,
        )  # fmt: skip
        results = _gql_result(data["startExecutions"], "results")
        return [dict(r["execution"]) for r in results]
    body = {"inputs": [{"input": x} for x in inputs], "priority": priority}
    found = _rest(await face.http.post(f"/api/workflows/{wf}/executions:batch", json=body), 201)
    return [{k: r["execution"][k] for k in _RUN.split()} for r in found["results"]]


async def run(face: Face, eid: str) -> dict[str, Any]:
    if isinstance(face, GraphQLFace):
        data = await _gql(face, f"query($id: ID!) {{ execution(id: $id) {{ {_RUN} }} }}", id=eid)
        return dict(data["execution"])
    found = _rest(await face.http.get(f"/api/executions/{eid}"), 200)
    return {k: found[k] for k in _RUN.split()}


async def make_trigger(face: Face, wf: str, priority: Any) -> dict[str, Any]:
    if isinstance(face, GraphQLFace):
        data = await _gql(
            face,
            "mutation($w: ID!, $p: Int) { createTrigger(workflowId: $w, type: WEBHOOK,"
            " config: {requireSignature: false}, priority: $p) {"
            f" ... on CreateTriggerPayload {{ trigger {{ id priority }} }} {_ERR} }} }}",
            w=wf, p=priority,
        )  # fmt: skip
        return dict(_gql_result(data["createTrigger"], "trigger"))
    body = {"workflowId": wf, "type": "WEBHOOK", "priority": priority,
            "config": {"requireSignature": False}}  # fmt: skip
    found = _rest(await face.http.post("/api/triggers", json=body), 201)
    return {"id": found["id"], "priority": found["priority"]}


async def set_trigger_priority(face: Face, tid: str, priority: Any) -> dict[str, Any]:
    if isinstance(face, GraphQLFace):
        data = await _gql(
            face,
            "mutation($id: ID!, $p: Int) { updateTrigger(id: $id, priority: $p) {"
            f" ... on TriggerPayload {{ trigger {{ id priority }} }} {_ERR} }} }}",
            id=tid, p=priority,
        )  # fmt: skip
        return dict(_gql_result(data["updateTrigger"], "trigger"))
    found = _rest(await face.http.put(f"/api/triggers/{tid}", json={"priority": priority}), 200)
    return {"id": found["id"], "priority": found["priority"]}


async def test_a_starts_priority_is_stored_and_shown(face: Face) -> None:
    wf = (await face.create_workflow("wf", napping(priority=5)))["id"]
    default = await start(face, wf, {})
    high = await start(face, wf, {}, priority=80)
    assert (default["priority"], high["priority"]) == (5, 80)
    assert (await run(face, high["id"]))["priority"] == 80
    batch = await start_batch(face, wf, [{}, {}], -20)
    assert [r["priority"] for r in batch] == [-20, -20]
    assert all(r["concurrencyKey"] is None for r in [default, high, *batch])


async def test_a_full_key_waits_and_starts_when_one_of_its_key_ends(face: Face) -> None:
    keyed = napping(concurrencyKey="{{ input.customerId }}", concurrencyKeyLimit=1)
    wf = (await face.create_workflow("wf", keyed))["id"]
    first = await start(face, wf, {"customerId": "c1"})
    second = await start(face, wf, {"customerId": "c1"})
    other = await start(face, wf, {"customerId": 7})
    assert [(r["status"], r["concurrencyKey"]) for r in (first, second, other)] == [
        ("RUNNING", "c1"), ("PENDING", "c1"), ("RUNNING", "7"),
    ]  # fmt: skip
    await face.cancel_execution(first["id"])
    assert (await run(face, second["id"]))["status"] == "RUNNING"
    batch = await start_batch(face, wf, [{"customerId": "c2"}, {"customerId": "c2"}], None)
    assert [r["status"] for r in batch] == ["RUNNING", "PENDING"]


async def test_a_triggers_priority_is_set_changed_and_taken_by_its_runs(
    face: Face, server: Server
) -> None:
    wf = (await face.create_workflow("wf", napping(priority=3)))["id"]
    trigger = await make_trigger(face, wf, 40)
    assert trigger["priority"] == 40
    delivered = await face.http.post(f"/api/webhooks/{trigger['id']}", json={"x": 1})
    assert delivered.status_code in (200, 201, 202), delivered.text
    rows = await server.services.pool.fetch(
        "SELECT priority FROM executions WHERE trigger_id = $1", uuid.UUID(trigger["id"])
    )
    assert [r["priority"] for r in rows] == [40]
    assert (await set_trigger_priority(face, trigger["id"], -7))["priority"] == -7
    assert (await set_trigger_priority(face, trigger["id"], None))["priority"] is None
    with pytest.raises(Refused) as caught:
        await set_trigger_priority(face, trigger["id"], 300)
    assert caught.value.paths == {"$.priority"}
    with pytest.raises(Refused):
        await make_trigger(face, wf, -101)


async def test_a_priority_out_of_range_is_refused_and_changes_nothing(face: Face) -> None:
    wf = (await face.create_workflow("wf", napping()))["id"]
    for bad in (101, -500):
        with pytest.raises(Refused) as caught:
            await start(face, wf, {}, priority=bad)
        assert caught.value.paths == {field_path(face, "priority")}
        assert "-100 to 100" in caught.value.message
        with pytest.raises(Refused) as caught:
            await start_batch(face, wf, [{}], bad)
        assert caught.value.paths == {field_path(face, "priority")}
    listed = await face.list_executions(workflow_id=wf)
    assert listed.ids == []


async def test_the_definitions_fields_are_checked_with_their_paths(face: Face) -> None:
    with pytest.raises(FaceError) as caught:
        await face.create_workflow("wf", napping(priority=200, concurrencyKeyLimit=2))
    assert caught.value.paths == {"$.definition.priority", "$.definition.concurrencyKeyLimit"}
