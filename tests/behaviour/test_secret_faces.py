"""Secrets through both faces (Query.secrets, setSecret, deleteSecret; GET, PUT and
DELETE /api/secrets): the same results and errors, no reply ever holding a value, another
owner's secrets invisible, and a workflow save that names a missing secret, or uses one
outside an action's url, headers and body, refused naming where."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from flowsync.secrets_crypto import new_key_text
from tests.behaviour.faces import FACES, Face, FaceError, field_path
from tests.rest.server import Server, serve
from tests.support.target import action

VALUE = "s3cr3t-Value-7f1c"


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    async with serve(db_url, secret_key=new_key_text()) as running:
        yield running


async def face_of(server: Server, name: str) -> Face:
    owner = await server.owner()
    return FACES[name](owner.http)


@pytest.fixture(params=sorted(FACES))
async def face(request: pytest.FixtureRequest, server: Server) -> Face:
    return await face_of(server, request.param)


def calling(url: str, **data: object) -> dict[str, object]:
    return action(url, "POST", **data)


async def test_set_list_replace_delete_and_no_value_in_any_reply(face: Face) -> None:
    first = await face.set_secret("API_TOKEN", VALUE)
    assert first["name"] == "API_TOKEN" and first["setBy"].startswith("apikey:")
    await face.set_secret("other_1", "x" * 10)
    again = await face.set_secret("API_TOKEN", VALUE + "2")
    assert again["createdAt"] == first["createdAt"] and again["updatedAt"] >= first["updatedAt"]
    listed = await face.list_secrets()
    assert [s["name"] for s in listed] == ["API_TOKEN", "other_1"]
    assert VALUE not in json.dumps(listed)
    audit = await face.audit_log()
    secret_entries = [e for e in audit if e["entityType"] == "secret"]
    assert {e["action"] for e in secret_entries} == {"secret.set"}
    assert all(e["data"] == {"name": e["entityId"]} for e in secret_entries)
    assert VALUE not in json.dumps(audit)
    await face.delete_secret("API_TOKEN")
    assert [s["name"] for s in await face.list_secrets()] == ["other_1"]
    with pytest.raises(FaceError) as missing:
        await face.delete_secret("API_TOKEN")
    assert missing.value.code == "not_found"
    assert "secret.deleted" in {e["action"] for e in await face.audit_log()}


BAD = [
    ("1abc", "v", "name"),
    ("has-dash", "v", "name"),
    ("x" * 65, "v", "name"),
    ("GOOD", "", "value"),
    ("GOOD", "v" * (64 * 1024 + 1), "value"),
]


async def test_a_bad_name_or_value_is_refused_naming_it_and_changes_nothing(
    face: Face,
) -> None:
    for name, value, path in BAD:
        with pytest.raises(FaceError) as refused:
            await face.set_secret(name, value)
        assert refused.value.code == "invalid_input", name
        # The name is REST's path parameter (plain); the value is in its body.
        assert refused.value.paths == {path if path == "name" else field_path(face, path)}, name
    assert await face.list_secrets() == []


async def test_another_owners_secret_is_invisible(server: Server, face: Face) -> None:
    other = await face_of(server, face.name)
    await other.set_secret("THEIRS", VALUE)
    assert await face.list_secrets() == []
    with pytest.raises(FaceError) as missing:
        await face.delete_secret("THEIRS")
    assert missing.value.code == "not_found"
    # Nor can a workflow of this owner read it.
    with pytest.raises(FaceError) as refused:
        await face.create_workflow("w", calling("https://example.com/{{ secrets.THEIRS }}"))
    assert refused.value.code == "invalid_definition"
    assert [s["name"] for s in await other.list_secrets()] == ["THEIRS"]


async def test_a_save_refuses_missing_secrets_and_secrets_outside_a_request(
    face: Face,
) -> None:
    await face.set_secret("TOKEN", VALUE)
    ok = calling(
        "https://example.com/hook?k={{ secrets.TOKEN }}",
        headers={"Authorization": "Bearer {{ secrets.TOKEN }}"},
        body={"key": "{{ secrets.TOKEN }}"},
    )
    saved = await face.create_workflow("uses", ok)
    assert saved["version"] == 1
    missing = calling(
        "https://example.com/",
        headers={"X-A": "{{ secrets.NOPE }}"},
        body={"b": "{{ secrets.ALSO_NOPE }}"},
    )
    with pytest.raises(FaceError) as refused:
        await face.create_workflow("missing", missing)
    assert refused.value.code == "invalid_definition"
    assert refused.value.paths == {
        '$.definition.nodes[1].data.headers["X-A"]',
        "$.definition.nodes[1].data.body.b",
    }
    assert "ALSO_NOPE, NOPE" in refused.value.message
    elsewhere = calling("https://example.com/", query={"k": "{{ secrets.TOKEN }}"})
    with pytest.raises(FaceError) as refused:
        await face.update_workflow(saved["id"], definition=elsewhere)
    assert refused.value.code == "invalid_definition"
    assert refused.value.paths == {"$.definition.nodes[1].data.query.k"}
    assert "only in an action's url, headers and body" in refused.value.message
    computed = calling("https://example.com/", body={"b": "{{ secrets.TOKEN + 'x' }}"})
    with pytest.raises(FaceError) as refused:
        await face.update_workflow(saved["id"], definition=computed)
    assert refused.value.paths == {"$.definition.nodes[1].data.body.b"}
    assert (await face.get_workflow(saved["id"]) or {})["version"] == 1
