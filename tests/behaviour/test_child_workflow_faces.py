"""Child workflows through both faces of one real server: the parent completes with its
child's output, parent and child link to each other (REST `parentExecutionId` and
`/children`, GraphQL `parentExecution` and `childExecutions`), cancelling the parent
cancels the child, and a save that calls another owner's workflow or closes a cycle is
refused with the node's path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.behaviour.faces import FACES, Face, FaceError, GraphQLFace
from tests.rest.server import Server, eventually, serve, worker


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    async with serve(db_url) as running:
        yield running


@pytest.fixture(params=sorted(FACES))
async def face(request: pytest.FixtureRequest, server: Server) -> Face:
    owner = await server.owner()
    return FACES[request.param](owner.http)


def calling(workflow_id: str, input: Any = None) -> dict[str, Any]:
    data: dict[str, Any] = {"workflowId": workflow_id}
    if input is not None:
        data["input"] = input
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "call", "type": "workflow", "data": data},
            {"id": "end", "type": "end", "data": {"output": "{{ steps.call.output }}"}},
        ],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "end"}],
    }


def leaf(delay: float | None = None) -> dict[str, Any]:
    middle: dict[str, Any] = (
        {"id": "m", "type": "delay", "data": {"seconds": delay}}
        if delay is not None
        else {"id": "m", "type": "transform", "data": {"output": {"sum": "{{ input.a + 1 }}"}}}
    )
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            middle,
            {"id": "end", "type": "end", "data": {"output": "{{ steps.m.output }}"}},
        ],
        "edges": [{"source": "start", "target": "m"}, {"source": "m", "target": "end"}],
    }


async def links(face: Face, execution_id: str) -> tuple[str | None, list[str]]:
    """(the parent's id, the children's ids) of an execution, as the face tells them."""
    if isinstance(face, GraphQLFace):
        reply = await face.http.post(
            "/graphql",
            json={
                "query": "query($id: ID!) { execution(id: $id) {"
                " parentExecution { id } childExecutions { id } } }",
                "variables": {"id": execution_id},
            },
        )
        found = reply.json()["data"]["execution"]
        parent = found["parentExecution"]
        return (parent["id"] if parent else None), [c["id"] for c in found["childExecutions"]]
    one = (await face.http.get(f"/api/executions/{execution_id}")).json()
    kids = await face.http.get(f"/api/executions/{execution_id}/children")
    assert kids.status_code == 200
    return one["parentExecutionId"], [c["id"] for c in kids.json()["items"]]


async def test_the_parent_completes_with_the_childs_output(face: Face, server: Server) -> None:
    child = await face.create_workflow("child", leaf())
    parent = await face.create_workflow("parent", calling(child["id"], {"a": "{{ input.a }}"}))
    run, _ = await face.start_execution(parent["id"], {"a": 41})
    async with worker(server.services):

        async def ended() -> dict[str, Any] | None:
            found = await face.get_execution(run["id"])
            return found if found and found["status"] not in ("PENDING", "RUNNING") else None

        done = await eventually(ended, what="the parent to end")
    assert (done["status"], done["output"]) == ("COMPLETED", {"sum": 42})
    parent_of, kids = await links(face, run["id"])
    assert parent_of is None and len(kids) == 1
    assert await links(face, kids[0]) == (run["id"], [])
    kid = await face.get_execution(kids[0])
    assert kid is not None and (kid["status"], kid["output"]) == ("COMPLETED", {"sum": 42})


async def test_cancelling_the_parent_cancels_the_child(face: Face, server: Server) -> None:
    child = await face.create_workflow("child", leaf(delay=600))
    parent = await face.create_workflow("parent", calling(child["id"]))
    run, _ = await face.start_execution(parent["id"], {})
    async with worker(server.services):

        async def started() -> list[str]:
            return (await links(face, run["id"]))[1]

        (kid,) = await eventually(started, what="the child to start")
    cancelled = await face.cancel_execution(run["id"])
    assert cancelled["status"] == "CANCELLED"
    found = await face.get_execution(kid)
    assert found is not None and found["status"] == "CANCELLED"


async def test_another_owners_workflow_and_a_cycle_are_refused(face: Face, server: Server) -> None:
    theirs = await FACES[face.name]((await server.owner()).http).create_workflow("x", leaf())
    with pytest.raises(FaceError) as caught:
        await face.create_workflow("parent", calling(theirs["id"]))
    assert caught.value.paths == {"$.definition.nodes[1].data.workflowId"}
    assert "no workflow with id" in caught.value.message
    a = await face.create_workflow("a", leaf())
    b = await face.create_workflow("b", calling(a["id"]))
    with pytest.raises(FaceError) as caught:
        await face.update_workflow(a["id"], definition=calling(b["id"]))
    assert caught.value.paths == {"$.definition.nodes[1].data.workflowId"}
    assert "cycle" in caught.value.message
    same = await face.get_workflow(a["id"])
    assert same is not None and same["version"] == 1
