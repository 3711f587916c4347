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


# Past this, a cost is "more than" it: a cost must stay a number every JSON reader holds.
MAX_REPORTED = 2**53
# Deeper selections add nothing: the depth limit (a validation rule, which runs after
# the cost) refuses any document that nests so deep; counting stops so that a document
# of thousands of nested fields cannot exhaust Python's recursion before it does.
_DEEPEST = 64
# GraphQL's Int: a `first` outside it is refused when its arguments are coerced.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def query_cost(
    selections: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> int:
    """The number of objects a selection set can return (at most MAX_REPORTED)."""
    return _Cost(fragments, variables).of(selections, 0)


class _Cost:
    """One document's cost. A fragment's cost is the sum of its fields', whatever the
    place it is spread in, so each is counted once (a fragment spread twice in each of
    sixty fragments is sixty sums, not 2^60). A fragment spread inside itself, however
    deep, counts nothing there: validation refuses the cycle after the cost passes."""

    def __init__(
        self, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any]
    ) -> None:
        self.fragments = fragments
        self.variables = variables
        self.known: dict[str, int] = {}
        self.open: set[str] = set()

    def of(self, selections: SelectionSetNode | None, depth: int) -> int:
        if selections is None or depth > _DEEPEST:
            return 0
        total = 0
        for node in selections.selections:
            if isinstance(node, FieldNode):
                total += self.field(node, depth)
            elif isinstance(node, InlineFragmentNode):
                total += self.of(node.selection_set, depth)
            elif isinstance(node, FragmentSpreadNode):
                total += self.fragment(node.name.value, depth)
        return min(total, MAX_REPORTED)

    def field(self, field: FieldNode, depth: int) -> int:
        name = field.name.value
        inner = self.of(field.selection_set, depth + 1)
        if name in CONNECTIONS:
            return min(_first(field, self.variables) * max(inner, 1), MAX_REPORTED)
        if name in LISTS:
            return min(LISTS[name] * (1 + inner), MAX_REPORTED)
        if field.selection_set is not None:
            return 1 + inner
        return 0

    def fragment(self, name: str, depth: int) -> int:
        known = self.known.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.open:
            return 0
        self.open.add(name)
        cost = self.of(fragment.selection_set, depth)
        self.open.discard(name)
        self.known[name] = cost
        return cost


def _first(field: FieldNode, variables: Mapping[str, Any]) -> int:
    """A connection's `first`; one that is no GraphQL Int counts as 0 here, as its
    coercion refuses it with the reason (`Int cannot represent ...`)."""
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        value = argument.value
        given: object = None
        if isinstance(value, IntValueNode):
            given = int(value.value)
        elif isinstance(value, VariableNode):
            given = variables.get(value.name.value)
            if isinstance(given, float) and given.is_integer():
                given = int(given)  # graphql-core coerces 200.0 to the Int 200
        else:
            return DEFAULT_PAGE_SIZE
        if isinstance(given, int) and not isinstance(given, bool):
            return max(given, 0) if _INT_MIN <= given <= _INT_MAX else 0
        return 0 if given is not None else DEFAULT_PAGE_SIZE
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
                amount = str(cost) if cost < MAX_REPORTED else f"more than {MAX_REPORTED}"
                context.pre_execution_errors = [
                    GraphQLError(
                        f"The query could return {amount} objects; the limit is {self.max_cost}. "
                        "Ask for smaller pages (`first`) or fewer nested lists.",
                        operation,
                        extensions={"code": "query_too_costly", "cost": cost},
                    )
                ]
