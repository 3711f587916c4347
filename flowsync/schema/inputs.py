"""GraphQL input types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry
from graphql import GraphQLInputObjectType, GraphQLList, GraphQLNonNull, GraphQLString
from graphql.execution import values as graphql_values
from graphql.pyutils import Undefined
from strawberry.scalars import JSON
from strawberry.types import arguments as strawberry_arguments
from strawberry.types.base import StrawberryList, get_object_definition


@strawberry.input
class CreateWorkflowInput:
    """A new workflow: its definition is validated against every rule before storing."""

    name: str
    definition: JSON
    description: str | None = None
    max_concurrency: int | None = strawberry.field(
        default=None,
        description="Executions beyond this many running wait PENDING (null: no limit).",
    )
    version_message: str | None = strawberry.field(
        default=None,
        description="What this first version is (at most 500 characters); kept with it.",
    )


@strawberry.input
class UpdateWorkflowInput:
    """A partial change: fields left out stay as they are."""

    name: str | None = None
    description: str | None = None
    definition: JSON | None = strawberry.UNSET
    max_concurrency: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="A new limit on running executions; null removes it; left out, kept.",
    )
    expected_version: int | None = strawberry.field(
        default=None,
        description="The version you read: if the workflow is at another one now, nothing "
        "changes and the result is a ConflictError naming both.",
    )
    version_message: str | None = strawberry.field(
        default=None,
        description="What the new version changes (at most 500 characters); kept with the "
        "version the new `definition` makes. Needs `definition`; ignored when the "
        "definition is unchanged (no version is made).",
    )


@strawberry.input
class StartExecutionItem:
    """One execution of a batch start (`startExecutions`)."""

    input: JSON | None = strawberry.field(
        default=None, description="The execution's input (any JSON; null: {})."
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description="1 to 255 characters. Used before (or earlier in the batch): nothing "
        "starts for this item, whose result is the first execution (`created: false`).",
    )


def _start_item(
    cls: type[StartExecutionItem], value: Mapping[str, Any], _: object
) -> StartExecutionItem:
    # Both fields are leaves graphql-core has already coerced (JSON as sent, a String), so
    # the item is built from them directly: Strawberry's generic conversion resolved each
    # field's type again for every item, ~15 ms of a 1,000-item batch.
    return cls(input=value.get("input"), idempotency_key=value.get("idempotencyKey"))


_ITEM = get_object_definition(StartExecutionItem, strict=True)
# A new field would be dropped by _start_item: it must be read there.
assert [f.python_name for f in _ITEM.fields] == ["input", "idempotency_key"], _ITEM.fields
_ITEM.from_input = _start_item

_convert_argument = strawberry_arguments.convert_argument


def _convert_start_items(value: Any, type_: Any, *args: Any, **kwargs: Any) -> Any:
    """Strawberry's convert_argument, with a list of StartExecutionItem (a batch start's
    1,000) built in one pass: through convert_argument, each item cost ~5 µs before it
    reached _start_item (its checks of the type, and an import statement run per call),
    a seventh of the API's CPU in a batch start. Anything else, as Strawberry does it."""
    if (
        type(value) is list
        and isinstance(type_, StrawberryList)
        and type_.of_type is StartExecutionItem
    ):
        return [_start_item(StartExecutionItem, item, None) for item in value]
    return _convert_argument(value, type_, *args, **kwargs)


# convert_arguments (every resolver's) and convert_argument's own recursion look it up
# by name in that module, so this is what they call.
strawberry_arguments.convert_argument = _convert_start_items


# graphql-core checks a variable's nesting, then coerces it, value by value: for a batch
# start's 1,000 items, ~2.2 µs an item (0.9 the check, 1.3 the coercion), a tenth of
# the API's CPU in a GraphQL batch start. `[StartExecutionItem!]!` is coerced here in one
# pass instead, to exactly what graphql-core makes of it, and anything else (or an item
# that is not plain: not a dict, a field it does not know, a key that is not a string, an
# input its scalar refuses) goes to graphql-core's own path, which also reports errors.
# tests/unit/test_start_items.py compares the two.
_VALUES: Any = graphql_values
_coerce_input_value = _VALUES.coerce_input_value
_input_is_nested_too_deeply = _VALUES.input_is_nested_too_deeply
_ITEM_FIELDS = frozenset(("input", "idempotencyKey"))


def _start_items_type(type_: Any) -> GraphQLInputObjectType | None:
    """The item type when `type_` is `[StartExecutionItem!]!` as FlowSync declares it (a
    nullable JSON `input` and String `idempotencyKey`, both defaulting to null)."""
    if not (isinstance(type_, GraphQLNonNull) and isinstance(type_.of_type, GraphQLList)):
        return None
    item = type_.of_type.of_type
    if not (isinstance(item, GraphQLNonNull) and isinstance(item.of_type, GraphQLInputObjectType)):
        return None
    kind = item.of_type
    if kind.name != "StartExecutionItem" or kind.is_one_of or kind.fields.keys() != _ITEM_FIELDS:
        return None
    given, key = kind.fields["input"], kind.fields["idempotencyKey"]
    if (
        given.out_name or key.out_name or given.default_value is not None
        or key.default_value is not None or key.type is not GraphQLString
        or isinstance(given.type, GraphQLNonNull)
    ):  # fmt: skip
        return None
    return kind


def _coerced_start_items(value: Any, kind: GraphQLInputObjectType) -> list[Any] | None:
    """graphql-core's coercion of a list of plain items; None for anything else."""
    if type(value) is not list:
        return None
    scalar = kind.fields["input"].type
    coerced: list[Any] = []
    for item in value:
        if type(item) is not dict or not item.keys() <= _ITEM_FIELDS:
            return None
        key = item.get("idempotencyKey")
        if key is not None and type(key) is not str:
            return None
        given = item.get("input")
        if given is not None:
            try:
                given = scalar.coerce_input_value(given)
            except Exception:  # graphql-core's path reports it
                return None
            if given is Undefined:
                return None
        coerced.append(kind.out_type({"input": given, "idempotencyKey": key}))
    return coerced


def _coerce_variable(value: Any, type_: Any) -> Any:
    kind = _start_items_type(type_)
    if kind is not None:
        coerced = _coerced_start_items(value, kind)
        if coerced is not None:
            return coerced
    return _coerce_input_value(value, type_)


def _nested_too_deeply(value: Any, type_: Any) -> bool:
    # A list of input objects whose fields are scalars is three levels deep whatever
    # the values hold (the check does not descend into a scalar, JSON included).
    if _start_items_type(type_) is not None:
        return False
    return bool(_input_is_nested_too_deeply(value, type_))


# coerce_variable_values looks both up by name in that module.
_VALUES.coerce_input_value = _coerce_variable
_VALUES.input_is_nested_too_deeply = _nested_too_deeply
