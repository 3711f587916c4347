"""Isolation: owner B gets nothing of owner A's through any query, mutation or
subscription, and A's objects answer B exactly as missing ones do."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from gql.transport.exceptions import TransportQueryError

from tests.graphql.conftest import LEGACY_WS, TRANSPORT_WS, Api, op, running_worker
from tests.support.graphs import chain

Q = {
    "workflow": "query($id: ID!) { workflow(id: $id) { id } }",
    "versions": "query($id: ID!) { workflowVersions(workflowId: $id) { edges { cursor } } }",
    "execution": "query($id: ID!) { execution(id: $id) { id } }",
    "executions of": "query($id: ID!) { executions(workflowId: $id) { edges { cursor } } }",
    "update": """mutation($id: ID!) { updateWorkflow(id: $id, input: {name: "stolen"}) {
        __typename ... on NotFoundError { code message } } }""",
    "redefine": """mutation($id: ID!, $d: JSON) { updateWorkflow(id: $id, input: {definition: $d}) {
        __typename ... on NotFoundError { code message } } }""",
    "delete": """mutation($id: ID!) { deleteWorkflow(id: $id) {
        __typename ... on NotFoundError { code message } } }""",
    "start": """mutation($id: ID!) { startExecution(workflowId: $id, input: {n: 1}) {
        __typename ... on NotFoundError { code message } } }""",
    "cancel": """mutation($id: ID!) { cancelExecution(id: $id) {
        __typename ... on NotFoundError { code message } } }""",
    "revoke key": """mutation($id: ID!) { revokeApiKey(id: $id) {
        __typename ... on NotFoundError { code message } } }""",
}
TARGET = {
    "workflow": "workflow", "versions": "workflow", "execution": "execution",
    "executions of": "workflow", "update": "workflow", "redefine": "workflow",
    "delete": "workflow", "start": "workflow", "cancel": "execution", "revoke key": "key",
}  # fmt: skip


def scrub(value: Any, ids: list[str]) -> Any:
    text = repr(value)
    for one in ids:
        text = text.replace(one, "<id>")
    return text


async def test_owner_b_gets_nothing_of_owner_a(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    wid = (await api.services.workflows.create(a.principal, "secret", None, chain(1, delay=30))).id
    eid = (await api.services.executions.start(a.principal, wid, {"n": 1})).execution.id
    key = (await api.services.api_keys.list(a.principal))[0].id
    mine = {"workflow": str(wid), "execution": str(eid), "key": str(key)}
    async with api.http(b.key) as s:
        lists = await s.execute(
            op("""{ workflows { edges { cursor } }
            executions { edges { cursor } } }""")
        )
        assert lists == {"workflows": {"edges": []}, "executions": {"edges": []}}
        for name, query in Q.items():
            theirs = await s.execute(op(query, id=mine[TARGET[name]], d=chain(2)))
            missing_id = str(uuid.uuid4())
            missing = await s.execute(op(query, id=missing_id, d=chain(2)))
            assert scrub(theirs, [mine[TARGET[name]]]) == scrub(missing, [missing_id]), name
            assert "secret" not in repr(theirs)
    # A's objects are untouched.
    assert (await api.services.workflows.get(a.principal, wid)).name == "secret"
    assert (await api.services.executions.get(a.principal, eid)).status == "RUNNING"
    credential = await api.services.authenticator.authenticate(f"Bearer {a.key}")
    assert credential.principal.owner_id == a.principal.owner_id


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_owner_b_subscriptions_see_nothing_of_owner_a(api: Api, protocol: str) -> None:
    a, b = await api.owner(), await api.owner()
    wid = (await api.services.workflows.create(a.principal, "secret", None, chain(3))).id
    running = (await api.services.executions.start(a.principal, wid, {"n": 1})).execution.id
    async with api.ws(b.key, protocol) as ws:
        updated = "subscription($id: ID!) { executionUpdated(id: $id) { kind } }"
        events = "subscription($w: ID) { executionEvents(workflowId: $w) { kind } }"
        for query, variables, gist in (
            (updated, {"id": str(running)}, "No execution"),
            (events, {"w": str(wid)}, "No workflow"),
        ):
            with pytest.raises(TransportQueryError, match=gist):
                async for _ in ws.subscribe(op(query, **variables)):
                    pass
        seen: list[dict[str, Any]] = []

        async def watch() -> None:
            async for message in ws.subscribe(
                op("subscription { executionEvents { executionId kind } }")
            ):
                seen.append(message)

        task = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        async with running_worker(api):
            more = (await api.services.executions.start(a.principal, wid, {"n": 2})).execution.id
            for eid in (running, more):
                for _ in range(300):
                    if (await api.services.executions.get(a.principal, eid)).status == "COMPLETED":
                        break
                    await asyncio.sleep(0.05)
            await asyncio.sleep(1.2)  # two polls of the safety net, too
        task.cancel()
    assert seen == []
