"""The node types the editor is served agree with the validator: every type has its
connection rules and description, its data schema is the validating model's, the CEL
fields are annotated exactly where the validator compiles templates, and the degree rules
of the table are those the validator applies, tried on every small in- and out-degree."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flowsync.engine.definition import DATA_MODELS, TEMPLATE_FIELDS, NodeType
from flowsync.engine.structure import CONNECTIONS, Connections
from flowsync.engine.validation import validate_definition
from flowsync.errors import DefinitionInvalid
from flowsync.services.node_types import node_types

# The smallest valid `data` of each type that takes one.
DATA: dict[NodeType, dict[str, Any]] = {
    NodeType.END: {},
    NodeType.ACTION: {"method": "GET", "url": "https://example.test/"},
    NodeType.CONDITION: {"expression": "input.ok == true"},
    NodeType.DELAY: {"seconds": 1},
    NodeType.TRANSFORM: {"output": {}},
    NodeType.WEBHOOK_RESPONSE: {},
    NodeType.WORKFLOW: {"workflowId": "00000000-0000-4000-8000-000000000001"},
    NodeType.WAIT: {"signal": "go"},
    NodeType.APPROVAL: {},
}


def test_every_node_type_has_its_rules_and_description() -> None:
    missing = [t.value for t in NodeType if t not in CONNECTIONS]
    assert not missing, f"no entry in structure.CONNECTIONS for: {missing}"
    served = node_types()
    assert [t.type for t in served] == [t.value for t in NodeType]
    for info in served:
        assert info.label and info.description, info.type
    assert set(DATA) == {t for t, model in DATA_MODELS.items() if model is not None}


def test_the_rules_the_editor_draws_by() -> None:
    served = {t.type: t for t in node_types()}
    assert (served["start"].has_target, served["start"].min_incoming) == (False, 0)
    assert (served["end"].has_source, served["end"].max_outgoing) == (False, 0)
    assert served["condition"].source_handles == ("true", "false")
    assert (served["condition"].min_outgoing, served["condition"].max_outgoing) == (2, 2)
    assert (served["fork"].min_outgoing, served["fork"].max_outgoing) == (2, None)
    assert served["join"].min_incoming == 2
    assert served["approval"].source_handles == ("approved", "rejected")
    assert all(
        not t.source_handles for name, t in served.items() if name not in ("condition", "approval")
    )


def test_the_data_schema_is_the_validating_models() -> None:
    for info in node_types():
        model = DATA_MODELS[NodeType(info.type)]
        expected = model.model_json_schema() if model is not None else None
        assert info.data_schema == expected, info.type
    action = next(t for t in node_types() if t.type == "action").data_schema
    assert action is not None
    assert action["required"] == ["method", "url"]
    assert action["additionalProperties"] is False
    assert "timeoutSeconds" in action["properties"]  # type: ignore[operator]


def _annotated(schema: dict[str, Any], kind: str) -> tuple[str, ...]:
    return tuple(k for k, v in schema["properties"].items() if v.get("x-flowsync") == kind)


def test_cel_fields_are_annotated_where_the_validator_compiles_them() -> None:
    for node_type, model in DATA_MODELS.items():
        if model is None:
            continue
        schema = model.model_json_schema()
        assert _annotated(schema, "template") == TEMPLATE_FIELDS.get(node_type, ()), node_type
        expected = ("expression",) if node_type is NodeType.CONDITION else ()
        assert _annotated(schema, "expression") == expected, node_type


def _graph(kind: NodeType, incoming: int, outgoing: int, handle: str | None = None) -> Any:
    """Node `X` of `kind` with `incoming` edges in (from the start, or from a fork's
    branches) and `outgoing` edges out (each to an end of its own; a condition's labelled
    true, false, true...). Other nodes may break rules too; only X's problems count."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []

    def node(node_id: str, node_type: NodeType) -> None:
        item: dict[str, Any] = {"id": node_id, "type": node_type.value}
        if node_type in DATA:
            item["data"] = DATA[node_type]
        nodes.append(item)

    node("X", kind)
    if kind is not NodeType.START:
        node("S", NodeType.START)
    if kind is NodeType.START:
        for i in range(incoming):
            node(f"p{i}", NodeType.TRANSFORM)
            edges.append({"source": f"p{i}", "target": "X"})
    elif incoming == 1:
        edges.append({"source": "S", "target": "X"})
    elif incoming >= 2:
        node("F", NodeType.FORK)
        edges.append({"source": "S", "target": "F"})
        for i in range(incoming):
            node(f"p{i}", NodeType.TRANSFORM)
            edges += [{"source": "F", "target": f"p{i}"}, {"source": f"p{i}", "target": "X"}]
    else:
        node("E", NodeType.END)
        edges.append({"source": "S", "target": "E"})
    rule = CONNECTIONS[kind]
    # The required handles, then the optional ones (a wait: its default edge first).
    handles: tuple[str | None, ...] = (*rule.source_handles, *rule.optional_handles)
    if rule.optional_handles and not rule.source_handles:
        handles = (None, *handles)
    for j in range(outgoing):
        node(f"e{j}", NodeType.END)
        edge: dict[str, Any] = {"source": "X", "target": f"e{j}"}
        label = handles[j % len(handles)] if handles else handle
        if label is not None:
            edge["sourceHandle"] = label
        edges.append(edge)
    if outgoing == 0 and not any(n["type"] == "end" for n in nodes):
        node("E", NodeType.END)
    return {"nodes": nodes, "edges": edges}


def _problems_of_x(definition: Any) -> list[str]:
    try:
        validate_definition(definition)
    except DefinitionInvalid as exc:
        return [p.message for p in exc.details if p.node_id == "X"]
    return []


def _allowed(rule: Connections, incoming: int, outgoing: int) -> bool:
    ins = incoming == 0 if not rule.has_target else incoming >= rule.min_incoming
    most = rule.max_outgoing if rule.max_outgoing is not None else outgoing
    outs = outgoing == 0 if not rule.has_source else rule.min_outgoing <= outgoing <= most
    return ins and outs


@pytest.mark.parametrize("kind", list(NodeType), ids=str)
def test_the_validator_applies_the_tables_degrees(kind: NodeType) -> None:
    rule = CONNECTIONS[kind]
    for incoming, outgoing in itertools.product(range(4), range(4)):
        found = _problems_of_x(_graph(kind, incoming, outgoing))
        assert (not found) == _allowed(rule, incoming, outgoing), (
            f"{kind} with {incoming} in, {outgoing} out: table says "
            f"{'allowed' if _allowed(rule, incoming, outgoing) else 'refused'}, "
            f"validator said {found or 'nothing'}"
        )


@pytest.mark.parametrize("kind", [t for t in NodeType if CONNECTIONS[t].has_source], ids=str)
def test_only_the_tables_handles_are_accepted(kind: NodeType) -> None:
    rule = CONNECTIONS[kind]
    fitting = 2 if rule.source_handles else max(rule.min_outgoing, 1)
    fitting = min(fitting, rule.max_outgoing or fitting)
    incoming = 0 if not rule.has_target else max(rule.min_incoming, 1)
    assert _problems_of_x(_graph(kind, incoming, fitting)) == []
    if not rule.source_handles and not rule.optional_handles:
        found = _problems_of_x(_graph(kind, incoming, fitting, handle="true"))
        assert any("sourceHandle" in p for p in found), found
    if rule.optional_handles:
        definition = _graph(kind, incoming, fitting)
        definition["edges"][-1]["sourceHandle"] = "true"
        found = _problems_of_x(definition)
        assert any("sourceHandle" in p for p in found), found
