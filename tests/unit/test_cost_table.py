"""The GraphQL cost limit knows every list of the schema: each field that returns a list
or takes `first` is in `cost.BOUNDS`, and a query is costed by its fields' types, so a
field named like another on some other type is not mistaken for it."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    FragmentDefinitionNode,
    GraphQLObjectType,
    OperationDefinitionNode,
    get_nullable_type,
    is_list_type,
    parse,
)

from flowsync.config import Settings
from flowsync.schema.cost import BOUNDS, EDGES, PAGE, query_cost
from flowsync.schema.schema import build_schema

SCHEMA = build_schema(Settings(_env_file=None))._schema


def list_fields() -> dict[tuple[str, str], str]:
    """Every field of the schema that returns a list or takes `first`, with its type."""
    found: dict[tuple[str, str], str] = {}
    for name, kind in SCHEMA.type_map.items():
        if name.startswith("__") or not isinstance(kind, GraphQLObjectType):
            continue
        for field_name, field in kind.fields.items():
            if is_list_type(get_nullable_type(field.type)) or "first" in field.args:
                found[(name, field_name)] = str(field.type)
    return found


def test_every_list_of_the_schema_is_costed() -> None:
    fields = list_fields()
    missing = sorted(f"{t}.{f} ({kind})" for (t, f), kind in fields.items() if (t, f) not in BOUNDS)
    assert not missing, (
        "List fields missing from flowsync.schema.cost.BOUNDS (add each with its bound): "
        + ", ".join(missing)
    )
    stale = sorted(f"{t}.{f}" for t, f in BOUNDS if (t, f) not in fields)
    assert not stale, "BOUNDS names fields the schema does not have: " + ", ".join(stale)
    for (type_name, field_name), bound in BOUNDS.items():
        field = SCHEMA.type_map[type_name].fields[field_name]  # type: ignore[attr-defined]
        if "first" in field.args:
            assert bound is PAGE, f"{type_name}.{field_name} takes `first`: it is a page"
        elif type_name.endswith("Connection") and field_name == "edges":
            assert bound is EDGES
        else:
            assert bound.kind == "most" and bound.most > 0, f"{type_name}.{field_name}"


def cost(document: str, variables: dict[str, Any] | None = None) -> int:
    parsed = parse(document)
    [op] = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)
    }
    root = SCHEMA.get_root_type(op.operation)
    return query_cost(op.selection_set, fragments, variables or {}, SCHEMA, root)


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        # A page of triggers, each with its workflow and that workflow's triggers (20).
        ("{ triggers(first: 200) { edges { node { workflow { triggers { id } } } } } }",
         200 * (1 + 1 + 1 + 20)),
        # A workflow's triggers, in a page of workflows.
        ("{ workflows(first: 10) { edges { node { triggers { id } } } } }", 10 * (2 + 20)),
        # The same names on other types: Execution.steps is a list, a page's `first`
        # belongs to the field it is given to.
        ("{ executions(first: 5) { edges { node { steps { status } } } } }", 5 * (2 + 20)),
        ("query($n: Int) { deadLetters(first: $n) { edges { node { id } } } }", 7 * 2),
        ("{ auditLog { edges { node { id } } } }", 50 * 2),
        # Fragments and inline fragments are costed on their own type.
        ("{ triggers(first: 3) { edges { node { ...t } } } } "
         "fragment t on Trigger { workflow { triggers { id } } }", 3 * (2 + 1 + 20)),
        ('mutation { createTrigger(workflowId: "x", type: MANUAL) { '
         "... on CreateTriggerPayload { trigger { workflow { triggers { id } } } } "
         "... on ValidationError { problems { path } } } }", (1 + 1 + 1 + 20) + 20),
    ],
)  # fmt: skip
def test_lists_are_costed_by_type_and_field(document: str, expected: int) -> None:
    assert cost(document, {"n": 7}) == expected
