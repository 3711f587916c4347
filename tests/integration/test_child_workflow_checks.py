"""Saving a workflow with `workflow` nodes: the workflow called must be the owner's and
exist (another owner's answers as unknown), a pinned version must exist, and workflows
must not call each other in a cycle. Each refusal names the node and path, and changes
nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from flowsync.errors import DefinitionInvalid
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from flowsync.services.workflows import WorkflowUpdate
from tests.conftest import new_subject


def plain() -> dict[str, Any]:
    return {
        "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
        "edges": [{"source": "start", "target": "end"}],
    }


def calling(workflow_id: object, version: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"workflowId": str(workflow_id)}
    if version is not None:
        data["version"] = version
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "call", "type": "workflow", "data": data},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "end"}],
    }


async def principal(services: Services) -> Principal:
    owner = await services.api_keys.ensure_owner(new_subject())
    return Principal(owner_id=owner, actor="test")


async def refusal(call: Any) -> tuple[str, str | None, str]:
    with pytest.raises(DefinitionInvalid) as caught:
        await call
    (problem,) = caught.value.details
    return problem.path, problem.node_id, problem.message


async def test_a_child_of_the_same_owner_is_accepted(services: Services) -> None:
    me = await principal(services)
    child = await services.workflows.create(me, "child", None, plain())
    parent = await services.workflows.create(me, "parent", None, calling(child.id, 1))
    assert parent.version == 1


async def test_unknown_and_another_owners_workflow_read_the_same(services: Services) -> None:
    me, other = await principal(services), await principal(services)
    theirs = await services.workflows.create(other, "theirs", None, plain())
    for target in (uuid.uuid4(), theirs.id):
        path, node, message = await refusal(
            services.workflows.create(me, "parent", None, calling(target))
        )
        assert (path, node) == ("$.definition.nodes[1].data.workflowId", "call")
        assert message == f"no workflow with id {target}"


async def test_a_pinned_version_must_exist(services: Services) -> None:
    me = await principal(services)
    child = await services.workflows.create(me, "child", None, plain())
    path, node, message = await refusal(
        services.workflows.create(me, "parent", None, calling(child.id, 2))
    )
    assert (path, node) == ("$.definition.nodes[1].data.version", "call")
    assert "has no version 2" in message


async def test_cycles_are_refused(services: Services) -> None:
    me = await principal(services)
    a = await services.workflows.create(me, "a", None, plain())
    b = await services.workflows.create(me, "b", None, calling(a.id))
    c = await services.workflows.create(me, "c", None, calling(b.id))
    # a → c → b → a
    path, node, message = await refusal(
        services.workflows.update(me, a.id, WorkflowUpdate(definition=calling(c.id)))
    )
    assert (path, node) == ("$.definition.nodes[1].data.workflowId", "call")
    chain = " → ".join(str(w) for w in (a.id, c.id, b.id, a.id))
    assert message == f"workflows would call each other in a cycle: {chain}"
    # itself
    _, _, message = await refusal(
        services.workflows.update(me, a.id, WorkflowUpdate(definition=calling(a.id)))
    )
    assert message == "a workflow cannot call itself"
    # nothing changed
    assert (await services.workflows.get(me, a.id)).version == 1
    # a chain through a pinned version that calls nothing is no cycle
    d = await services.workflows.create(me, "d", None, calling(a.id))
    await services.workflows.update(me, d.id, WorkflowUpdate(definition=plain()))
    e = await services.workflows.create(me, "e", None, calling(d.id, 2))
    updated = await services.workflows.update(me, a.id, WorkflowUpdate(definition=calling(e.id)))
    assert updated.version == 2
