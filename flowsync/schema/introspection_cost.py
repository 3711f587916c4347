"""The cost of an introspection selection (`__schema`, `__type`): the number of objects
it returns from this schema, counted exactly.

A static bound per introspection list (the most fields a type has, the most arguments
a field has, …) multiplies into hundreds of thousands for the standard introspection
query, which returns about ten thousand objects; and leaving introspection uncosted let
thirty aliases of `__schema` through. The schema is fixed, so what a selection returns
is known: each (schema element, selection set) pair is counted once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLDirective,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
)

# As the cost's: deeper selections are refused by the depth limit, after the cost.
_DEEPEST = 64


def _children(schema: GraphQLSchema, value: Any, name: str) -> Any:
    """What the introspection field `name` of `value` returns: a schema element, a list
    of them, or None (for a leaf, or a field the value does not have)."""
    if isinstance(value, GraphQLSchema):
        if name == "types":
            return list(schema.type_map.values())
        if name == "directives":
            return list(schema.directives)
        roots = {
            "queryType": "query",
            "mutationType": "mutation",
            "subscriptionType": "subscription",
        }
        return getattr(schema, f"{roots[name]}_type") if name in roots else None
    if isinstance(value, GraphQLField | GraphQLArgument | GraphQLInputField):
        if name == "args" and isinstance(value, GraphQLField):
            return list(value.args.values())
        return value.type if name == "type" else None
    if isinstance(value, GraphQLDirective):
        return list(value.args.values()) if name == "args" else None
    if name == "ofType":
        return value.of_type if isinstance(value, GraphQLList | GraphQLNonNull) else None
    if name == "fields" and isinstance(value, GraphQLObjectType | GraphQLInterfaceType):
        return list(value.fields.values())
    if name == "inputFields" and isinstance(value, GraphQLInputObjectType):
        return list(value.fields.values())
    if name == "interfaces" and isinstance(value, GraphQLObjectType | GraphQLInterfaceType):
        return list(value.interfaces)
    if name == "possibleTypes" and isinstance(value, GraphQLInterfaceType | GraphQLUnionType):
        return list(schema.get_possible_types(value))
    if name == "enumValues" and isinstance(value, GraphQLEnumType):
        return list(value.values.values())
    return None


def _shape(selections: SelectionSetNode) -> object:
    """What identifies a selection set's meaning: its text (fragments are named, so
    the same text selects the same), or the node itself when it has no source."""
    loc = selections.loc
    return loc.source.body[loc.start : loc.end] if loc is not None else id(selections)


class OverCeiling(Exception):
    """The count passed its ceiling: the cost is more than that, and counting stopped."""


class IntrospectionCost:
    """The cost of introspection selections of one document. Counting visits each
    (element, selection set) pair once, selection sets of the same text (aliases of one
    selection) as one; past `ceiling` elements visited it stops with OverCeiling, so
    that its work is bounded by the cost limit, not by what a document may ask."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        ceiling: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.ceiling = ceiling
        self.visits = 0
        self.known: dict[tuple[int, object], int] = {}
        self.open: set[str] = set()

    def root(self, field: FieldNode, depth: int) -> int:
        """The cost of a root field `__schema` or `__type(name:)`."""
        if field.name.value == "__schema":
            return self.object(self.schema, field.selection_set, depth)
        for argument in field.arguments or ():
            if argument.name.value != "name":
                continue
            value = argument.value
            name: object = None
            if isinstance(value, StringValueNode):
                name = value.value
            elif isinstance(value, VariableNode):
                name = self.variables.get(value.name.value)
            found = self.schema.get_type(name) if isinstance(name, str) else None
            return self.object(found, field.selection_set, depth)
        return 0

    def object(self, value: Any, selections: SelectionSetNode | None, depth: int) -> int:
        """One element (1, and its selections), a list of them, or nothing."""
        if value is None or selections is None:
            return 0
        if isinstance(value, list):
            return sum(self.object(item, selections, depth) for item in value)
        self.visits += 1
        if self.visits > self.ceiling:
            raise OverCeiling
        return 1 + self.selections(value, selections, depth)

    def selections(self, value: Any, selections: SelectionSetNode, depth: int) -> int:
        if depth > _DEEPEST:
            return 0
        key = (id(value), _shape(selections))
        known = self.known.get(key)
        if known is not None:
            return known
        total = 0
        for node in selections.selections:
            if isinstance(node, FieldNode):
                if node.selection_set is not None:
                    child = _children(self.schema, value, node.name.value)
                    total += self.object(child, node.selection_set, depth + 1)
            elif isinstance(node, InlineFragmentNode):
                total += self.selections(value, node.selection_set, depth)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in self.open:  # a cycle is refused later
                    self.open.add(name)
                    total += self.selections(value, fragment.selection_set, depth)
                    self.open.discard(name)
        self.known[key] = total
        return total
