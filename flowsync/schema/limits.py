"""The limits on one document's shape, as validation rules whose errors carry a code:
its depth (`query_too_deep`, introspection included) and its aliases
(`too_many_aliases`).

Strawberry's depth limiter skips every field whose name begins with `__`, so
`__schema { types { fields { type { ofType { ofType … } } } } }` was never refused;
here an introspection selection (under `__schema` or `__type`) has a depth limit of its
own, `max_introspection_depth`, since the standard introspection query that GraphiQL
and graphql-codegen send (`graphql.get_introspection_query()`: a type's reference
`ofType` nine deep) is 14 deep, deeper than any query of the API needs. graphql-core's
own rule on introspection (at most three nested `fields`, `interfaces`,
`possibleTypes` or `inputFields`) answers `query_too_deep` too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.extensions import AddValidationRules
from strawberry.extensions.max_aliases import count_fields_with_alias

QUERY_TOO_DEEP = "query_too_deep"
TOO_MANY_ALIASES = "too_many_aliases"
# The root fields whose selections are introspection.
INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


class _Depths:
    """The depth of one document's selections: for each selection set, the deepest
    path of plain fields and the deepest through an introspection root (each the
    number of nested fields with a selection set). A fragment is measured once; a walk
    deeper than `cap` stops there, with a depth past every limit."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode], cap: int) -> None:
        self.fragments = fragments
        self.cap = cap
        self.known: dict[str, tuple[int, int]] = {}
        self.open: set[str] = set()

    def of(self, selections: SelectionSetNode | None, level: int) -> tuple[int, int]:
        if selections is None:
            return 0, 0
        if level > self.cap:
            return self.cap + 1, 0
        plain = introspection = 0
        for node in selections.selections:
            if isinstance(node, FieldNode):
                if node.selection_set is None:
                    continue
                inner_plain, inner_introspection = self.of(node.selection_set, level + 1)
                if node.name.value in INTROSPECTION_ROOTS:
                    introspection = max(introspection, 1 + max(inner_plain, inner_introspection))
                else:
                    plain = max(plain, 1 + inner_plain)
                    if inner_introspection:
                        introspection = max(introspection, 1 + inner_introspection)
            else:
                if isinstance(node, InlineFragmentNode):
                    found = self.of(node.selection_set, level)
                elif isinstance(node, FragmentSpreadNode):
                    found = self.fragment(node.name.value, level)
                else:  # pragma: no cover - no other selection exists
                    continue
                plain = max(plain, found[0])
                introspection = max(introspection, found[1])
        return plain, introspection

    def fragment(self, name: str, level: int) -> tuple[int, int]:
        known = self.known.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self.open:  # refused by graphql-core's rules
            return 0, 0
        self.open.add(name)
        found = self.of(fragment.selection_set, level)
        self.open.discard(name)
        self.known[name] = found
        return found


def _fragments(definitions: Any) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}


def depth_rule(max_depth: int, max_introspection_depth: int) -> type[ASTValidationRule]:
    """A rule refusing an operation deeper than `max_depth`, or whose introspection is
    deeper than `max_introspection_depth`, with `query_too_deep`."""

    class DepthLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = _fragments(document.definitions)
            depths = _Depths(fragments, max(max_depth, max_introspection_depth) + 1)
            for operation in document.definitions:
                if not isinstance(operation, OperationDefinitionNode):
                    continue
                name = operation.name.value if operation.name else "anonymous"
                plain, introspection = depths.of(operation.selection_set, 0)
                if plain > max_depth:
                    message = f"'{name}' exceeds maximum operation depth of {max_depth}"
                elif introspection > max_introspection_depth:
                    message = (
                        f"'{name}' exceeds maximum introspection depth of {max_introspection_depth}"
                    )
                else:
                    continue
                context.report_error(
                    GraphQLError(message, operation, extensions={"code": QUERY_TOO_DEEP})
                )

    return DepthLimit


def alias_rule(max_aliases: int) -> type[ASTValidationRule]:
    """A rule refusing a document of more than `max_aliases` aliases (introspection's
    included), with `too_many_aliases`."""

    class AliasLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = _fragments(document.definitions)
            found = sum(
                count_fields_with_alias(d, fragments)
                for d in document.definitions
                if isinstance(d, OperationDefinitionNode)
            )
            if found > max_aliases:
                context.report_error(
                    GraphQLError(
                        f"{found} aliases found. Allowed: {max_aliases}",
                        extensions={"code": TOO_MANY_ALIASES},
                    )
                )

    return AliasLimit


class IntrospectionNesting(MaxIntrospectionDepthRule):
    """graphql-core's limit on nested introspection lists, with `query_too_deep`."""

    def report_error(self, error: GraphQLError) -> None:
        super().report_error(
            GraphQLError(error.message, error.nodes, extensions={"code": QUERY_TOO_DEEP})
        )


class ShapeLimits(AddValidationRules):
    """The depth and alias limits, introspection included."""

    def __init__(self, max_depth: int, max_introspection_depth: int, max_aliases: int) -> None:
        super().__init__([depth_rule(max_depth, max_introspection_depth), alias_rule(max_aliases)])


def with_coded_rules(rules: tuple[Any, ...]) -> tuple[Any, ...]:
    """`rules` with graphql-core's introspection nesting rule replaced by the coded one."""
    return tuple(IntrospectionNesting if r is MaxIntrospectionDepthRule else r for r in rules)
