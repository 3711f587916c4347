"""GraphQL input types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry
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
