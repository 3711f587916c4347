"""What the visual editor asks of the server, through both faces alike: node types with
their data schema and connection rules, the expression check, versions with their
message and author, and a stale update's conflict naming the version to compare with."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flowsync.services.node_types import node_types
from tests.behaviour.faces import (
    FACES,
    NODE_TYPE_FIELDS,
    Face,
    FaceError,
    field_path,
    not_found_ids,
)
from tests.rest.server import Server, new_id, serve
from tests.support.graphs import chain


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    async with serve(db_url) as running:
        yield running


async def face_of(server: Server, name: str) -> Face:
    owner = await server.owner()
    return FACES[name](owner.http)


@pytest.fixture(params=sorted(FACES))
async def face(request: pytest.FixtureRequest, server: Server) -> Face:
    return await face_of(server, request.param)


async def _actor(face: Face) -> str:
    """The caller's actor as the audit log names it: its one API key."""
    keys = await face.list_api_keys()
    [key_id] = keys.ids
    return f"apikey:{key_id}"


async def test_both_faces_serve_the_node_types_the_validator_knows(server: Server) -> None:
    owner = await server.owner()
    served = [await FACES[name](owner.http).node_types() for name in sorted(FACES)]
    assert served[0] == served[1]
    expected = [{name: getattr(t, _snake(name)) for name in NODE_TYPE_FIELDS} for t in node_types()]
    for item in expected:
        item["sourceHandles"] = list(item["sourceHandles"])
        item["optionalHandles"] = list(item["optionalHandles"])
    assert served[0] == expected
    by_type = {t["type"]: t for t in served[0]}
    assert by_type["condition"]["sourceHandles"] == ["true", "false"]
    assert by_type["wait"]["sourceHandles"] == []
    assert by_type["wait"]["optionalHandles"] == ["timeout"]
    assert by_type["approval"]["optionalHandles"] == ["timeout"]
    assert by_type["start"]["dataSchema"] is None
    expression = by_type["condition"]["dataSchema"]["properties"]["expression"]
    assert expression["x-flowsync"] == "expression"
    assert by_type["action"]["dataSchema"]["properties"]["url"]["x-flowsync"] == "template"
    nobody = server.client()
    for name in sorted(FACES):
        with pytest.raises(FaceError) as caught:
            await FACES[name](nobody).node_types()
        assert caught.value.code == "unauthenticated"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


async def test_an_expression_is_checked_as_a_save_would(face: Face) -> None:
    assert await face.check_expression("input.total > 10", "EXPRESSION") == {
        "valid": True, "problems": [],
    }  # fmt: skip
    found = await face.check_expression("input.total >", "EXPRESSION")
    assert found["valid"] is False
    [problem] = found["problems"]
    assert problem["position"] == 13 and "line 1, column 14" in problem["message"]
    found = await face.check_expression("https://x/{{ input.id }}/{{ nope }}", "TEMPLATE")
    assert found["valid"] is False
    assert found["problems"][0]["position"] == 28
    assert "unknown variable 'nope'" in found["problems"][0]["message"]
    found = await face.check_expression("{{ input.ok }}", "EXPRESSION")
    assert found["problems"] == [
        {"message": "write the condition as plain CEL, without {{ }}", "position": None}
    ]
    with pytest.raises(FaceError) as caught:
        await face.check_expression("x" * 100_001, "TEMPLATE")
    assert caught.value.code == "invalid_input"
    assert caught.value.paths == {field_path(face, "expression")}


async def test_versions_keep_their_message_and_author(face: Face) -> None:
    author = await _actor(face)
    wf = await face.create_workflow("w", chain(1), versionMessage="  first draft  ")
    await face.update_workflow(wf["id"], definition=chain(2), versionMessage="two steps")
    # No new definition, no new version: a message without one is refused, with an
    # unchanged one it is dropped.
    with pytest.raises(FaceError) as caught:
        await face.update_workflow(wf["id"], name="w2", versionMessage="renamed")
    assert caught.value.code == "invalid_input" and caught.value.paths == {"$.versionMessage"}
    same = await face.update_workflow(wf["id"], definition=chain(2), versionMessage="again")
    assert same["version"] == 2
    with pytest.raises(FaceError) as long:
        await face.update_workflow(wf["id"], definition=chain(3), versionMessage="x" * 501)
    assert long.value.code == "invalid_input" and long.value.paths == {"$.versionMessage"}
    await face.update_workflow(wf["id"], definition=chain(3), versionMessage="x" * 500)
    await face.update_workflow(wf["id"], definition=chain(4))

    listed = await face.list_versions(wf["id"], limit=3)
    assert listed is not None
    items, cursor = listed
    assert [(v["version"], v["message"], v["author"]) for v in items] == [
        (4, None, author), (3, "x" * 500, author), (2, "two steps", author),
    ]  # fmt: skip
    rest = await face.list_versions(wf["id"], limit=3, cursor=cursor)
    assert rest is not None
    assert [(v["version"], v["message"]) for v in rest[0]] == [(1, "first draft")]
    assert rest[1] is None

    first = await face.get_version(wf["id"], 1)
    assert first is not None
    assert (first["definition"], first["message"], first["author"]) == (
        chain(1), "first draft", author,
    )  # fmt: skip
    assert {k: v for k, v in first.items() if k != "definition"} == rest[0][0]
    for missing in (5, 2**31 - 1):
        assert await face.get_version(wf["id"], missing) is None
    # Versions count from 1: REST refuses 0 in the path (400 naming it), as any malformed
    # parameter; GraphQL's query finds nothing.
    if face.name == "rest":
        with pytest.raises(FaceError) as zero:
            await face.get_version(wf["id"], 0)
        assert zero.value.code == "invalid_input" and zero.value.paths == {"version"}
    else:
        assert await face.get_version(wf["id"], 0) is None


async def test_a_stale_update_names_the_version_to_compare_with(face: Face) -> None:
    wf = await face.create_workflow("w", chain(1))
    theirs = await face.update_workflow(wf["id"], definition=chain(2), expectedVersion=1)
    await face.update_workflow(wf["id"], name="renamed", expectedVersion=2)
    with pytest.raises(FaceError) as caught:
        await face.update_workflow(wf["id"], definition=chain(3), expectedVersion=1)
    assert (caught.value.code, caught.value.current_version) == ("conflict", 2)
    current = await face.get_version(wf["id"], 2)
    assert current is not None and current["definition"] == theirs["definition"]
    # Other conflicts name no version.
    with pytest.raises(FaceError) as other:
        run, _ = await face.start_execution(wf["id"])
        await face.cancel_execution(run["id"])
        await face.cancel_execution(run["id"])
    assert other.value.code == "conflict" and other.value.current_version is None


async def test_another_owners_versions_answer_as_missing(server: Server, face: Face) -> None:
    other = await face_of(server, face.name)
    theirs = await other.create_workflow("theirs", chain(1), versionMessage="secret plan")
    for target in not_found_ids(face, theirs["id"], new_id()):
        assert await face.list_versions(target) is None
        assert await face.get_version(target, 1) is None
        with pytest.raises(FaceError) as caught:
            await face.update_workflow(target, definition=chain(2), versionMessage="mine")
        assert caught.value.code == "not_found"
    listed = await other.list_versions(theirs["id"])
    assert listed is not None and listed[0][0]["message"] == "secret plan"
