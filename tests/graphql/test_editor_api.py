"""The editor's GraphQL: node types and expression checks typed and costed, a version
message refused as a typed ValidationError naming it, and a stale update's ConflictError
carrying `currentVersion`, which `workflowVersion` then reads."""

from __future__ import annotations

import pytest
from gql.transport.exceptions import TransportQueryError

from tests.graphql.conftest import Api, op
from tests.support.graphs import chain

CREATE = """mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) {
  __typename ... on WorkflowPayload { workflow { id version } }
  ... on ValidationError { code problems { path message } } } }"""
UPDATE = """mutation($id: ID!, $input: UpdateWorkflowInput!) {
  updateWorkflow(id: $id, input: $input) { __typename
  ... on WorkflowPayload { workflow { version } }
  ... on ValidationError { code problems { path } }
  ... on ConflictError { code message currentVersion } } }"""
VERSION = """query($id: ID!, $v: Int!) {
  workflowVersion(workflowId: $id, version: $v) { version message author definition } }"""


async def test_node_types_and_checks_are_typed_and_cheap(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        found = await s.execute(
            op("{ nodeTypes { type hasTarget sourceHandles maxOutgoing dataSchema } }")
        )
        by_type = {t["type"]: t for t in found["nodeTypes"]}
        assert by_type["fork"]["maxOutgoing"] is None and by_type["start"]["hasTarget"] is False
        assert by_type["delay"]["dataSchema"]["properties"]["until"]["x-flowsync"] == "template"
        checked = await s.execute(
            op('{ checkExpression(expression: "input.n >", kind: EXPRESSION) {'
               " valid problems { message position } } }")
        )  # fmt: skip
        assert checked["checkExpression"]["valid"] is False
        assert checked["checkExpression"]["problems"][0]["position"] == 9
        with pytest.raises(TransportQueryError, match="ExpressionKind"):
            await s.execute(op('{ checkExpression(expression: "x", kind: JINJA) { valid } }'))
        with pytest.raises(TransportQueryError, match="kind"):
            await s.execute(op('{ checkExpression(expression: "x") { valid } }'))


async def test_a_version_message_too_long_is_a_typed_validation_error(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        result = await s.execute(
            op(CREATE, input={"name": "w", "definition": chain(1), "versionMessage": "é" * 501})
        )
        assert result["createWorkflow"] == {
            "__typename": "ValidationError",
            "code": "invalid_input",
            "problems": [{"path": "$.versionMessage", "message": "501 characters, over 500"}],
        }
        made = await s.execute(
            op(CREATE, input={"name": "w", "definition": chain(1), "versionMessage": "é" * 500})
        )
        wid = made["createWorkflow"]["workflow"]["id"]
        read = await s.execute(op(VERSION, id=wid, v=1))
        assert read["workflowVersion"]["message"] == "é" * 500
        assert read["workflowVersion"]["author"].startswith("apikey:")


async def test_a_stale_update_is_a_conflict_with_the_version_to_read(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        made = await s.execute(op(CREATE, input={"name": "w", "definition": chain(1)}))
        wid = made["createWorkflow"]["workflow"]["id"]
        mine = {"definition": chain(2), "expectedVersion": 1, "versionMessage": "mine"}
        first = await s.execute(op(UPDATE, id=wid, input=mine))
        assert first["updateWorkflow"]["workflow"]["version"] == 2
        theirs = {"definition": chain(3), "expectedVersion": 1, "versionMessage": "theirs"}
        stale = (await s.execute(op(UPDATE, id=wid, input=theirs)))["updateWorkflow"]
        assert (stale["__typename"], stale["code"], stale["currentVersion"]) == (
            "ConflictError", "conflict", 2,
        )  # fmt: skip
        current = await s.execute(op(VERSION, id=wid, v=stale["currentVersion"]))
        assert current["workflowVersion"]["definition"] == chain(2)
        assert current["workflowVersion"]["message"] == "mine"
        assert (await s.execute(op(VERSION, id=wid, v=3)))["workflowVersion"] is None
    b = await api.owner()
    async with api.http(b.key) as s:
        assert (await s.execute(op(VERSION, id=wid, v=1)))["workflowVersion"] is None
        other = await s.execute(op(UPDATE, id=wid, input=mine))
        assert other["updateWorkflow"]["__typename"] == "NotFoundError"
