"""GraphQL offers what REST did alone: rotating a webhook trigger's secret, and a
workflow's `maxConcurrency` on create and update."""

from __future__ import annotations

from tests.graphql.conftest import Api, new_id, op
from tests.support.graphs import chain

ROTATE = """mutation($id: ID!) { rotateTriggerSecret(id: $id) { __typename
  ... on CreateTriggerPayload { secret trigger { id type updatedAt } }
  ... on UserError { code message } } }"""
CREATE_TRIGGER = """mutation($w: ID!, $t: TriggerKind!, $c: JSON) {
  createTrigger(workflowId: $w, type: $t, config: $c) {
  ... on CreateTriggerPayload { secret trigger { id } } } }"""
CREATE = """mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) {
  __typename ... on WorkflowPayload { workflow { id maxConcurrency } }
  ... on ValidationError { code problems { path } } } }"""
UPDATE = """mutation($id: ID!, $input: UpdateWorkflowInput!) {
  updateWorkflow(id: $id, input: $input) { __typename
  ... on WorkflowPayload { workflow { id name version maxConcurrency } }
  ... on ValidationError { code problems { path } } } }"""


async def test_rotating_a_webhook_secret_through_graphql(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    wf = await api.services.workflows.create(a.principal, "w", None, chain(1))
    async with api.http(a.key) as s:
        hook = (await s.execute(op(CREATE_TRIGGER, w=str(wf.id), t="WEBHOOK")))["createTrigger"]
        tid = hook["trigger"]["id"]
        rotated = (await s.execute(op(ROTATE, id=tid)))["rotateTriggerSecret"]
        assert rotated["__typename"] == "CreateTriggerPayload"
        assert rotated["trigger"]["id"] == tid and rotated["secret"] != hook["secret"]
        assert await api.services.triggers.reveal_secret(a.principal, tid) == rotated["secret"]
        cron = (
            await s.execute(
                op(CREATE_TRIGGER, w=str(wf.id), t="CRON", c={"expression": "0 * * * *"})
            )
        )["createTrigger"]
        refused = (await s.execute(op(ROTATE, id=cron["trigger"]["id"])))["rotateTriggerSecret"]
        assert (refused["__typename"], refused["code"]) == ("ConflictError", "conflict")
    async with api.http(b.key) as s:
        for target in (tid, new_id(), "not-a-uuid"):
            stolen = (await s.execute(op(ROTATE, id=target)))["rotateTriggerSecret"]
            assert stolen["__typename"] == "NotFoundError"
    assert await api.services.triggers.reveal_secret(a.principal, tid) == rotated["secret"]


async def test_max_concurrency_on_create_and_update(api: Api) -> None:
    a = await api.owner()
    async with api.http(a.key) as s:
        made = await s.execute(
            op(CREATE, input={"name": "w", "definition": chain(1), "maxConcurrency": 2})
        )
        wf = made["createWorkflow"]["workflow"]
        assert wf["maxConcurrency"] == 2
        renamed = await s.execute(op(UPDATE, id=wf["id"], input={"name": "w2"}))
        assert renamed["updateWorkflow"]["workflow"]["maxConcurrency"] == 2  # left out: kept
        raised = await s.execute(op(UPDATE, id=wf["id"], input={"maxConcurrency": 5}))
        assert raised["updateWorkflow"]["workflow"] == {
            "id": wf["id"], "name": "w2", "version": 1, "maxConcurrency": 5,
        }  # fmt: skip
        removed = await s.execute(op(UPDATE, id=wf["id"], input={"maxConcurrency": None}))
        assert removed["updateWorkflow"]["workflow"]["maxConcurrency"] is None
        for bad in (0, 100_001):
            refused = await s.execute(op(UPDATE, id=wf["id"], input={"maxConcurrency": bad}))
            result = refused["updateWorkflow"]
            assert result["__typename"] == "ValidationError"
            assert [p["path"] for p in result["problems"]] == ["$.maxConcurrency"]
            created = await s.execute(
                op(CREATE, input={"name": "x", "definition": chain(1), "maxConcurrency": bad})
            )
            assert created["createWorkflow"]["__typename"] == "ValidationError"
        row = await api.services.workflows.get(a.principal, wf["id"])
        assert row.max_concurrency is None
