"""The `workflow` node's definition contract: what a save accepts and the errors, each
naming the node and the JSON path, for what it refuses."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from flowsync.engine.graph import StepStatus
from flowsync.engine.transitions import StepRow, plan_child_wait
from flowsync.engine.validation import validate_definition
from flowsync.errors import DefinitionInvalid
from flowsync.services.child_workflows import ChildRef, child_refs

CHILD = "6f1c2a9e-3b7d-4c1e-9a55-2f0d8e7b1c44"


def graph(data: Any) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "child", "type": "workflow", "data": data},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "child"}, {"source": "child", "target": "end"}],
    }


def problems(data: Any) -> list[tuple[str, str | None, str]]:
    with pytest.raises(DefinitionInvalid) as caught:
        validate_definition(graph(data))
    return [(p.path, p.node_id, p.message) for p in caught.value.details]


def test_a_workflow_node_compiles_its_input_template() -> None:
    wf = validate_definition(
        graph({"workflowId": CHILD, "version": 2, "input": {"id": "{{ input.orderId }}"}})
    )
    node = wf.nodes["child"]
    assert node.type == "workflow" and node.input is not None
    assert [e.source for e in node.expressions] == ["input.orderId"]
    assert validate_definition(graph({"workflowId": CHILD})).nodes["child"].input is None


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({}, "$.nodes[1].data.workflowId", "required"),
        ({"workflowId": "orders"}, "$.nodes[1].data.workflowId", "UUID"),
        ({"workflowId": CHILD, "version": 0}, "$.nodes[1].data.version", "greater than"),
        ({"workflowId": CHILD, "version": "2"}, "$.nodes[1].data.version", "integer"),
        ({"workflowId": CHILD, "versoin": 2}, "$.nodes[1].data.versoin", ""),
        ({"workflowId": CHILD, "input": "{{ input. }}"}, "$.nodes[1].data.input", ""),
    ],
)
def test_bad_data_names_the_node_and_the_path(data: Any, path: str, words: str) -> None:
    found = problems(data)
    assert any(p == path and node == "child" and words in m for p, node, m in found), found


def test_child_refs_lists_the_workflow_nodes() -> None:
    definition = validate_definition(graph({"workflowId": CHILD, "version": 3})).definition
    (ref,) = child_refs(definition)
    assert ref == ChildRef(1, "child", ref.workflow_id, 3) and str(ref.workflow_id) == CHILD


def test_a_step_waiting_for_its_child_keeps_the_childs_id() -> None:
    row = StepRow(uuid.uuid4(), StepStatus.RUNNING)
    child = uuid.uuid4()
    plan = plan_child_wait({"call": row}, "call", child)
    (change,) = plan.steps
    assert (change.status, change.input) == (StepStatus.WAITING, {"childExecutionId": str(child)})
    (event,) = plan.events
    assert (event.kind, event.data) == ("step.waiting", {"childExecutionId": str(child)})
    assert not plan.jobs and plan.execution_status is None and not plan.drop_jobs
