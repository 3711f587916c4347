"""An error message echoes at most the first 64 characters of a caller's value (then
"…"): a megabyte argument, variable, enum value, field name or definition node came
back whole in graphql-core's, Strawberry's and FlowSync's messages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gql.transport.exceptions import TransportQueryError

from tests.graphql.conftest import Api, op

BIG = "x" * 1_000_000
ECHO = "x" * 64 + "…"
CASES: list[tuple[str, dict[str, Any] | None]] = [
    # graphql-core: a literal, a variable, an enum value, a field and argument name
    ('{ executions(first: "' + BIG + '") { edges { cursor } } }', None),
    ("query($n: Int) { executions(first: $n) { edges { cursor } } }", {"n": BIG}),
    ("{ executions(status: " + BIG + ") { edges { cursor } } }", None),
    ("query($s: ExecutionStatus) { executions(status: $s) { edges { cursor } } }", {"s": BIG}),
    ("{ " + BIG + " }", None),
    ("{ health(" + BIG + ": 1) { status } }", None),
    ("mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) { __typename } }",
     {"i": {"name": "n", BIG: 1, "definition": {}}}),
    # Strawberry's DateTime
    ('{ auditLog(since: "' + BIG + '") { edges { cursor } } }', None),
]  # fmt: skip


async def post(api: Api, key: str, query: str, variables: dict[str, Any] | None) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            api.http_url,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {key}"},
        )


@pytest.mark.parametrize(("query", "variables"), CASES)
async def test_an_error_echoes_64_characters_of_a_value(
    api: Api, query: str, variables: dict[str, Any] | None
) -> None:
    a = await api.owner()
    reply = await post(api, a.key, query, variables)
    assert len(reply.content) < 2000, reply.content[:300]
    assert ECHO in reply.json()["errors"][0]["message"]


async def test_a_definitions_problems_echo_64_characters_of_a_value(api: Api) -> None:
    a = await api.owner()
    mutation = """mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) {
        ... on ValidationError { message problems { path message } } } }"""
    long = "x" * 100_000  # within the definition size limit
    definition = {"nodes": [{"id": long, "type": long}], "edges": []}
    reply = await post(api, a.key, mutation, {"i": {"name": "n", "definition": definition}})
    assert len(reply.content) < 3000
    problems = reply.json()["data"]["createWorkflow"]["problems"]
    echoed = [p for p in problems if ECHO in p["message"]]
    assert {p["path"] for p in echoed} == {"$.definition.nodes[0].id", "$.definition.nodes[0].type"}


async def test_an_error_over_a_websocket_echoes_64_characters(api: Api) -> None:
    a = await api.owner()
    async with api.ws(a.key) as session:
        with pytest.raises(TransportQueryError) as caught:
            await session.execute(op(CASES[1][0], **(CASES[1][1] or {})))
    assert caught.value.errors is not None
    message = caught.value.errors[0]["message"]
    assert ECHO in message and len(message) < 200
