"""A limit on how much one query may ask for, before any of it runs.

Depth and alias limits do not stop `workflows(first: 200) { edges { node {
executions(first: 200) { … } } } }`: two levels that ask for 40,000 executions. The cost
of a query is the number of objects it can return: a connection multiplies what it
selects by its `first` (50 when left out), a plain list by the most it usually holds, and
every object counts one. Variables are taken into account."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.extensions import SchemaExtension

from flowsync.services.observability import MAX_BUCKETS
from flowsync.services.pagination import DEFAULT_PAGE_SIZE

# Fields that return a connection (their `first` multiplies) and lists without paging
# (the figure is what one usually holds: a workflow's steps, an execution's timeline;
# for a metrics series' buckets, the most it may hold).
CONNECTIONS = frozenset(
    {"workflows", "executions", "workflowVersions", "apiKeys", "deadLetters", "auditLog"}
)
LISTS = {"steps": 20, "timeline": 100, "workers": 50, "buckets": MAX_BUCKETS}


def query_cost(
    selections: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    seen: frozenset[str] = frozenset(),
) -> int:
    """The number of objects a selection set can return."""
    total = 0
    for field in _fields(selections, fragments, seen):
        name = field.name.value
        inner = query_cost(field.selection_set, fragments, variables, seen)
        if name in CONNECTIONS:
            total += _first(field, variables) * max(inner, 1)
        elif name in LISTS:
            total += LISTS[name] * (1 + inner)
        elif field.selection_set is not None:
            total += 1 + inner
    return total


def _fields(
    selections: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> Iterator[FieldNode]:
    if selections is None:
        return
    for node in selections.selections:
        if isinstance(node, FieldNode):
            yield node
        elif isinstance(node, InlineFragmentNode):
            yield from _fields(node.selection_set, fragments, seen)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments, seen | {node.name.value})


def _first(field: FieldNode, variables: Mapping[str, Any]) -> int:
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return max(int(value.value), 0)
        if isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            if isinstance(given, int) and not isinstance(given, bool):
                return max(given, 0)
    return DEFAULT_PAGE_SIZE


class QueryCostLimiter(SchemaExtension):
    """Refuses an operation whose cost is over `max_cost`, with the cost in the message."""

    def __init__(self, max_cost: int) -> None:
        super().__init__()
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        # Before validation: errors set here are the answer, and validation is skipped.
        self._check()
        yield

    def _check(self) -> None:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors or document is None:
            return
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if context.operation_name is not None:
            operations = [
                o for o in operations if o.name and o.name.value == context.operation_name
            ]
        for operation in operations[:1]:
            cost = query_cost(operation.selection_set, fragments, context.variables or {})
            if cost > self.max_cost:
                context.pre_execution_errors = [
                    GraphQLError(
                        f"The query could return {cost} objects; the limit is {self.max_cost}. "
                        "Ask for smaller pages (`first`) or fewer nested lists.",
                        operation,
                        extensions={"code": "query_too_costly", "cost": cost},
                    )
                ]
