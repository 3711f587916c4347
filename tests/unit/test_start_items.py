"""A batch start's items (StartExecutionItem) reach the resolver as Strawberry's own
conversion makes them: FlowSync builds a list of them in one pass
(flowsync/schema/inputs.py), and the same query run with Strawberry's stock conversion
must give the same items."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql.execution import values as graphql_values
from strawberry.scalars import JSON
from strawberry.types import arguments

from flowsync.schema import inputs
from flowsync.schema.inputs import StartExecutionItem


@strawberry.type
class Query:
    @strawberry.field
    def items(self, given: list[StartExecutionItem]) -> JSON:
        return [[type(i).__name__, i.input, i.idempotency_key] for i in given]

    @strawberry.field
    def maybe(self, given: list[StartExecutionItem | None] | None = None) -> JSON | None:
        if given is None:
            return None
        return [i if i is None else [i.input, i.idempotency_key] for i in given]


SCHEMA = strawberry.Schema(query=Query)
GIVEN = [
    {"input": {"n": 1, "deep": [1, {"x": None}]}, "idempotencyKey": "a"},
    {"input": None},
    {},
    {"idempotencyKey": "b", "input": "text"},
]
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("query ($g: [StartExecutionItem!]!) { items(given: $g) }", {"g": GIVEN}),
    ("query ($g: [StartExecutionItem!]!) { items(given: $g) }", {"g": []}),
    # A single object where a list is expected: graphql-core makes it a list of one.
    ("query ($g: [StartExecutionItem!]!) { items(given: $g) }", {"g": GIVEN[0]}),
    ('{ items(given: [{input: {n: 2}, idempotencyKey: "k"}, {}]) }', {}),
    ("query ($g: [StartExecutionItem]) { maybe(given: $g) }", {"g": [None, GIVEN[3]]}),
    ("query ($g: [StartExecutionItem]) { maybe(given: $g) }", {"g": None}),
]


def run(query: str, variables: dict[str, Any]) -> Any:
    result = SCHEMA.execute_sync(query, variable_values=variables)
    assert result.errors is None, result.errors
    return result.data


@pytest.mark.parametrize(("query", "variables"), QUERIES)
def test_items_are_what_strawberry_s_own_conversion_makes(
    query: str, variables: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert arguments.convert_argument is inputs._convert_start_items
    ours = run(query, variables)
    # Strawberry as it ships: its convert_argument, and no from_input of the item.
    monkeypatch.setattr(arguments, "convert_argument", inputs._convert_argument)
    monkeypatch.setattr(inputs._ITEM, "from_input", None)
    assert run(query, variables) == ours


def test_the_list_is_built_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    # Strawberry converts an argument by calling convert_argument, which calls itself
    # (by its name in its module) for each item of a list: a batch's items take none.
    calls: list[object] = []
    installed = arguments.convert_argument

    def counted(value: Any, type_: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(type_)
        return installed(value, type_, *args, **kwargs)

    monkeypatch.setattr(arguments, "convert_argument", counted)
    made = [["StartExecutionItem", item.get("input"), item.get("idempotencyKey")] for item in GIVEN]
    assert run(*QUERIES[0]) == {"items": made}
    assert len(calls) == 1  # the list's


ITEMS = "query ($g: [StartExecutionItem!]!) { items(given: $g) }"
# Variables graphql-core coerces itself, or refuses, beside plain ones.
VARIABLES: list[Any] = [
    GIVEN,
    [],
    GIVEN[0],  # a list of one
    [{"input": [1, [2, [3]]], "idempotencyKey": None}, {"idempotencyKey": ""}],
    [{"input": {"n": 1}}] * 50,
    [{"idempotencyKey": 5}],
    [{"input": 1, "extra": 2}],
    [None],
    ["text"],
    [{"input": {"a": 1}}, 7],
    [{"idempotencyKey": ["a"]}],
    None,
    "text",
]


def answer(query: str, variables: dict[str, Any]) -> tuple[Any, list[str]]:
    result = SCHEMA.execute_sync(query, variable_values=variables)
    return result.data, [e.message for e in result.errors or []]


@pytest.mark.parametrize("given", VARIABLES)
def test_items_are_coerced_as_graphql_core_coerces_them(
    given: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert graphql_values.coerce_input_value is inputs._coerce_variable
    items_type = SCHEMA._schema.query_type.fields["items"].args["given"].type
    assert inputs._start_items_type(items_type) is not None
    coerced = inputs._coerce_variable(given, items_type)
    assert repr(coerced) == repr(inputs._coerce_input_value(given, items_type))
    ours = answer(ITEMS, {"g": given})
    monkeypatch.setattr(graphql_values, "coerce_input_value", inputs._coerce_input_value)
    monkeypatch.setattr(
        graphql_values, "input_is_nested_too_deeply", inputs._input_is_nested_too_deeply
    )
    assert answer(ITEMS, {"g": given}) == ours


def test_plain_items_are_coerced_in_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    # graphql-core coerces a list by calling coerce_input_value for each item and each
    # field of it: a batch's plain items take no call of graphql-core's own.
    calls: list[object] = []
    own = inputs._coerce_input_value

    def counted(value: Any, type_: Any) -> Any:
        calls.append(type_)
        return own(value, type_)

    monkeypatch.setattr(inputs, "_coerce_input_value", counted)
    data, errors = answer(ITEMS, {"g": GIVEN})
    assert errors == [] and len(data["items"]) == len(GIVEN)
    assert calls == []
    data, errors = answer(ITEMS, {"g": [{"idempotencyKey": 5}]})  # refused: graphql-core's
    assert data is None and len(errors) == 1 and calls
