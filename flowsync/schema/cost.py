"""A limit on how much one query may ask for, before any of it runs.

Depth and alias limits do not stop `workflows(first: 200) { edges { node {
executions(first: 200) { … } } } }`: two levels that ask for 40,000 executions. The cost
of a query is the number of objects it can return: a connection multiplies what it
selects by its `first` (50 when left out), a plain list by the most it may hold, and
every object counts one. Variables are taken into account. Introspection (`__schema`,
`__type`) counts the objects it returns from this schema (flowsync.schema.introspection_cost).

Every field of the schema that returns a list or takes `first` is costed from one table,
`BOUNDS`, keyed by (type, field): a test walks the schema and fails when one is missing,
so that no new list reaches clients uncosted."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension

from flowsync.schema.introspection_cost import IntrospectionCost, OverCeiling
from flowsync.services.observability import MAX_BUCKETS
from flowsync.services.pagination import DEFAULT_PAGE_SIZE
from flowsync.services.triggers import MAX_FIRE_TIMES


@dataclass(frozen=True, slots=True)
class Bound:
    """How many items a list field may return. `page`: a connection, whose `first`
    (default 50) multiplies what it selects; `edges`: a connection's items, counted by
    its connection's `first` already; otherwise a plain list of at most `most` items
    (for an open-ended one, what it usually holds)."""

    kind: str
    most: int = 0


PAGE = Bound("page")
EDGES = Bound("edges")


def most(n: int) -> Bound:
    """A plain list of at most (or, open-ended, usually) `n` items."""
    return Bound("most", n)


# The one table of every list in the schema, by (type, field). Plain lists: a run's steps
# (one per node) and timeline (grows with retries), a workflow's triggers, the worker
# processes, a metrics series' buckets (at most MAX_BUCKETS), a snapshot's statuses (5)
# and node types, the schedulers running and their newest firings (20), one input's
# problems, a cron trigger's next fire times (its `count`, at most MAX_FIRE_TIMES).
BOUNDS: dict[tuple[str, str], Bound] = {
    ("Query", "workflows"): PAGE,
    ("Query", "executions"): PAGE,
    ("Query", "workflowVersions"): PAGE,
    ("Query", "triggers"): PAGE,
    ("Query", "deadLetters"): PAGE,
    ("Query", "auditLog"): PAGE,
    ("Query", "apiKeys"): PAGE,
    ("Workflow", "executions"): PAGE,
    ("WorkflowConnection", "edges"): EDGES,
    ("ExecutionConnection", "edges"): EDGES,
    ("WorkflowVersionConnection", "edges"): EDGES,
    ("TriggerConnection", "edges"): EDGES,
    ("DeadLetterConnection", "edges"): EDGES,
    ("AuditEntryConnection", "edges"): EDGES,
    ("ApiKeyConnection", "edges"): EDGES,
    ("Execution", "steps"): most(20),
    ("Execution", "timeline"): most(100),
    # One child per `workflow` step (and per redrive of one).
    ("Execution", "childExecutions"): most(10),
    ("ExecutionEvent", "steps"): most(20),
    ("Workflow", "triggers"): most(20),
    ("Trigger", "nextFireTimes"): most(MAX_FIRE_TIMES),
    ("Query", "workers"): most(50),
    ("Query", "members"): most(50),
    ("Query", "secrets"): most(100),
    ("MetricsSeries", "buckets"): most(MAX_BUCKETS),
    ("MetricsSnapshot", "executionsByStatus"): most(5),
    ("MetricsSnapshot", "stepLatency"): most(20),
    ("SchedulerStatus", "schedulers"): most(10),
    ("SchedulerStatus", "lastFirings"): most(20),
    ("ValidationError", "problems"): most(20),
    ("ValidationResult", "problems"): most(20),
    ("Query", "nodeTypes"): most(20),
    ("NodeType", "sourceHandles"): most(2),
    ("NodeType", "optionalHandles"): most(1),
    ("ExpressionCheck", "problems"): most(1),
    # `nodes(ids:)`: at most MAX_NODES (100) ids, each costed as a `node`.
    ("Query", "nodes"): most(100),
    # A batch start's results: one per item, FLOWSYNC_MAX_BATCH_STARTS (1,000) by default.
    ("StartExecutionsPayload", "results"): most(1000),
}


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
    schema: GraphQLSchema,
    root: GraphQLNamedType | None = None,
    ceiling: int = MAX_REPORTED,
) -> int:
    """The number of objects a selection set on `root` (default: the Query type) can
    return, at most MAX_REPORTED; `ceiling + 1` when counting introspection stopped
    past `ceiling` (the cost is more than that)."""
    try:
        return _Cost(fragments, variables, schema, ceiling).of(
            selections, 0, root or schema.query_type
        )
    except OverCeiling:
        return ceiling + 1


class _Cost:
    """One document's cost. A fragment's cost is the sum of its fields', whatever the
    place it is spread in, so each is counted once (a fragment spread twice in each of
    sixty fragments is sixty sums, not 2^60). A fragment spread inside itself, however
    deep, counts nothing there: validation refuses the cycle after the cost passes."""

    def __init__(
        self,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        schema: GraphQLSchema,
        ceiling: int = MAX_REPORTED,
    ) -> None:
        self.fragments = fragments
        self.variables = variables
        self.schema = schema
        self.known: dict[str, int] = {}
        self.open: set[str] = set()
        self.introspection = IntrospectionCost(schema, fragments, variables, ceiling)

    def of(
        self, selections: SelectionSetNode | None, depth: int, parent: GraphQLNamedType | None
    ) -> int:
        """The cost of a selection set on `parent` (None: a type the schema lacks, which
        validation refuses; its fields are counted as plain objects)."""
        if selections is None or depth > _DEEPEST:
            return 0
        total = 0
        for node in selections.selections:
            if isinstance(node, FieldNode):
                total += self.field(node, depth, parent)
            elif isinstance(node, InlineFragmentNode):
                on = node.type_condition
                inner = self.schema.get_type(on.name.value) if on is not None else parent
                total += self.of(node.selection_set, depth, inner)
            elif isinstance(node, FragmentSpreadNode):
                total += self.fragment(node.name.value, depth)
        return min(total, MAX_REPORTED)

    def field(self, field: FieldNode, depth: int, parent: GraphQLNamedType | None) -> int:
        name = field.name.value
        if name in ("__schema", "__type"):  # what it returns from this schema, exactly
            return min(self.introspection.root(field, depth), MAX_REPORTED)
        inner = self.of(field.selection_set, depth + 1, _field_type(parent, name))
        bound = BOUNDS.get((parent.name, name)) if parent is not None else None
        if bound is PAGE:
            return min(_first(field, self.variables) * max(inner, 1), MAX_REPORTED)
        if bound is not None and bound.kind == "most":
            return min(bound.most * (1 + inner), MAX_REPORTED)
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
        # A fragment's type is its own condition, wherever it is spread.
        on = self.schema.get_type(fragment.type_condition.name.value)
        cost = self.of(fragment.selection_set, depth, on)
        self.open.discard(name)
        self.known[name] = cost
        return cost


def _field_type(parent: GraphQLNamedType | None, name: str) -> GraphQLNamedType | None:
    """The named type a field of `parent` returns (None for a union's own fields, which
    only `__typename` is, and for a field that does not exist)."""
    if not isinstance(parent, GraphQLObjectType):
        return None
    found = parent.fields.get(name)
    return get_named_type(found.type) if found is not None else None


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


def _with_defaults(
    operation: OperationDefinitionNode, variables: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The variables as the operation runs with them: a variable left out takes its
    default (`query($n: Int = 200)` asks for pages of 200)."""
    defaults = {
        d.variable.name.value: value_from_ast_untyped(d.default_value)
        for d in operation.variable_definitions or ()
        if d.default_value is not None and d.variable.name.value not in variables
    }
    return {**defaults, **variables} if defaults else variables


class QueryCostLimiter(SchemaExtension):
    """Refuses an operation whose cost is over `max_cost`, with the cost in the message.
    Every result of an operation whose cost was computed reports it in its
    `extensions.cost`: `{"requested": <cost>, "limit": <max_cost>}`."""

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
        schema = context.schema._schema
        for operation in operations[:1]:
            variables = _with_defaults(operation, context.variables or {})
            cost = query_cost(
                operation.selection_set, fragments, variables, schema,
                schema.get_root_type(operation.operation), self.max_cost,
            )  # fmt: skip
            context.extensions_results["cost"] = {"requested": cost, "limit": self.max_cost}
            if cost > self.max_cost:
                amount = (
                    f"more than {self.max_cost}"
                    if cost == self.max_cost + 1
                    else str(cost)
                    if cost < MAX_REPORTED
                    else f"more than {MAX_REPORTED}"
                )
                context.pre_execution_errors = [
                    GraphQLError(
                        f"The query could return {amount} objects; the limit is {self.max_cost}. "
                        "Ask for smaller pages (`first`) or fewer nested lists.",
                        operation,
                        extensions={"code": "query_too_costly", "cost": cost},
                    )
                ]
