"""Global object identification (Relay): `node`/`nodes` answer every kind of the
caller's objects by the id both GraphQL and REST use, and null, alike, for another
owner's, an unknown or a garbled id."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.graphql.conftest import Api, Owner, op
from tests.support.dead_letters import failed_runs

IDS = """query($e: ID!, $w: ID!) {
  workflowVersions(workflowId: $w) { edges { node { id } } }
  execution(id: $e) { steps { id } }
  deadLetters { edges { node { id } } }
  triggers { edges { node { id } } }
  auditLog { edges { node { id action } } }
  apiKeys { edges { node { id } } }
}"""

NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Workflow { name }
  ... on Execution { status }
  ... on StepExecution { nodeId }
  ... on WorkflowVersion { version }
  ... on Trigger { type }
  ... on DeadLetter { executionId }
  ... on AuditEntry { action }
  ... on ApiKey { name }
} }"""

NODES = """query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"""


async def objects(api: Api, me: Owner) -> dict[str, str]:
    """One id of every kind, owned by `me`: {typename: id}."""
    (eid,) = await failed_runs(api.services, me.principal, 1)
    execution = await api.services.executions.get(me.principal, eid)
    await api.services.triggers.create(me.principal, execution.workflow_id, "MANUAL")
    async with api.http(me.key) as s:
        got = await s.execute(op(IDS, e=str(eid), w=str(execution.workflow_id)))
    return {
        "Workflow": str(execution.workflow_id),
        "Execution": str(eid),
        "WorkflowVersion": got["workflowVersions"]["edges"][0]["node"]["id"],
        "StepExecution": got["execution"]["steps"][0]["id"],
        "DeadLetter": got["deadLetters"]["edges"][0]["node"]["id"],
        "Trigger": got["triggers"]["edges"][0]["node"]["id"],
        "AuditEntry": got["auditLog"]["edges"][0]["node"]["id"],
        "ApiKey": got["apiKeys"]["edges"][0]["node"]["id"],
    }


async def post(api: Api, key: str, query: str, **variables: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            api.http_url, json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )  # fmt: skip


async def test_node_answers_every_kind_by_its_id_with_fragments(api: Api) -> None:
    me = await api.owner()
    mine = await objects(api, me)
    for typename, id in mine.items():
        reply = await post(api, me.key, NODE, id=id)
        assert reply.status_code == 200, reply.text
        found = reply.json()["data"]["node"]
        assert found["__typename"] == typename and found["id"] == id
        assert len(found) == 3, found  # the fragment of its own type, and no other
    workflow = (await post(api, me.key, NODE, id=mine["Workflow"])).json()["data"]["node"]
    assert workflow["name"] == "refused"
    # The same id is REST's.
    async with httpx.AsyncClient() as client:
        rest = await client.get(
            f"http://127.0.0.1:{api.port}/api/executions/{mine['Execution']}",
            headers={"Authorization": f"Bearer {me.key}"},
        )
    assert rest.status_code == 200 and rest.json()["id"] == mine["Execution"]


async def test_another_owners_unknown_and_garbled_ids_are_null_alike(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    theirs = await objects(api, a)
    garbled = ["", "not-an-id", "Workflow:1", "0", "-5", "99999999999999999999999", "١٢٣",
               str(uuid.uuid4()), "999999999"]  # fmt: skip
    for id in [*theirs.values(), *garbled]:
        reply = await post(api, b.key, NODE, id=id)
        assert reply.status_code == 200, (id, reply.text)
        assert reply.json() == {"data": {"node": None}, "extensions": reply.json()["extensions"]}
    listed = await post(api, b.key, NODES, ids=[*theirs.values(), *garbled])
    assert listed.json()["data"] == {"nodes": [None] * (len(theirs) + len(garbled))}
    assert "refused" not in listed.text


async def test_nodes_keeps_the_order_asked_with_mixed_kinds_and_misses(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    mine, theirs = await objects(api, a), await objects(api, b)
    ids = [mine["ApiKey"], theirs["Workflow"], "garbled", mine["Workflow"],
           mine["AuditEntry"], mine["ApiKey"], mine["StepExecution"],
           str(uuid.uuid4())]  # fmt: skip
    reply = await post(api, a.key, NODES, ids=ids)
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"]["nodes"] == [
        {"__typename": "ApiKey", "id": mine["ApiKey"]}, None, None,
        {"__typename": "Workflow", "id": mine["Workflow"]},
        {"__typename": "AuditEntry", "id": mine["AuditEntry"]},
        {"__typename": "ApiKey", "id": mine["ApiKey"]},
        {"__typename": "StepExecution", "id": mine["StepExecution"]}, None,
    ]  # fmt: skip


async def test_nodes_is_bounded_and_costed(api: Api) -> None:
    me = await api.owner()
    too_many = await post(api, me.key, NODES, ids=[str(uuid.uuid4()) for _ in range(101)])
    assert too_many.status_code == 200
    body = too_many.json()
    assert body["data"] is None
    assert "at most 100 ids" in body["errors"][0]["message"]
    cost = (await post(api, me.key, NODES, ids=[])).json()["extensions"]["cost"]["requested"]
    single = (await post(api, me.key, NODE, id="x")).json()["extensions"]["cost"]["requested"]
    assert cost >= 100 and cost > single


async def test_nodes_costs_the_same_statements_for_one_id_as_for_many(api: Api) -> None:
    from tests.graphql.test_statements import run

    me = await api.owner()
    mine = await objects(api, me)
    extra = [str(uuid.uuid4()) for _ in range(40)]

    def query(ids: list[str]) -> str:
        return "{ nodes(ids: " + json.dumps(ids) + ") { id } }"

    # A miss looks in every kind's table (the most statements one UUID can take); a
    # number, in the audit log's.
    one, _, _ = await run(api, me.key, query([str(uuid.uuid4()), "1"]))
    many, _, body = await run(api, me.key, query([*mine.values(), *extra]))
    assert len(many) == len(one), many
    assert [n["id"] if n else None for n in body["data"]["nodes"]] == [
        *mine.values(), *[None] * len(extra)
    ]  # fmt: skip
