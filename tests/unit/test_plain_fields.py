"""Plain fields completed without graphql-core's per-field machinery
(flowsync/schema/plain_fields.py) give exactly graphql-core's results and errors: each
query below is run by Strawberry's stock executor and by FlowSync's, and the two answers
must be equal, with the shortcut taken where it applies. The result budget still
measures every leaf and stops reading once over."""

from __future__ import annotations

import asyncio
import enum
from typing import Any, ClassVar

import pytest
import strawberry
from strawberry.scalars import JSON
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from flowsync.schema.budget import BoundedResults, bounded
from flowsync.schema.plain_fields import PlainLeaves


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Inner:
    id: strawberry.ID
    colour: Colour
    note: str | None


READS = {"label": 0}


@strawberry.type
class Item:
    n: int
    label: str
    inner: Inner
    maybe: Inner | None
    data: JSON | None

    @strawberry.field
    def doubled(self) -> int:
        return self.n * 2

    @strawberry.field
    async def later(self) -> str:
        await asyncio.sleep(0)
        return f"later {self.n}"


def item(n: int, label: Any = "x", colour: Any = Colour.RED, maybe: bool = True) -> Item:
    inner = Inner(id=strawberry.ID(f"i{n}"), colour=colour, note=None if n % 2 else "odd")
    return Item(
        n=n,
        label=label,
        inner=inner,
        maybe=inner if maybe else None,
        data={"n": n, "list": [1, 2]} if n % 3 else None,
    )


class CountedItem(Item):
    """An item that counts the reads of its label."""

    def __getattribute__(self, name: str) -> Any:
        if name == "label":
            READS["label"] += 1
        return object.__getattribute__(self, name)


LISTS: dict[str, list[Any]] = {
    "good": [item(i) for i in range(5)],
    "null-label": [item(0), item(1), item(2, label=None), item(3)],
    "bad-enum": [item(0), item(1, colour="green")],
    "int-label": [item(0, label=7)],
    "none-maybe": [item(0, maybe=False), item(1)],
    "error-value": [item(0, label=ValueError("kept as a value"))],
    "empty": [],
}


@strawberry.type
class Query:
    @strawberry.field
    def items(self, which: str = "good") -> list[Item]:
        return [CountedItem(**vars(i)) for i in LISTS[which]]

    @strawberry.field
    def maybe_items(self) -> list[Item | None]:
        return [LISTS["good"][0], None, LISTS["good"][1]]

    @strawberry.field
    def tuple_items(self) -> list[Item]:
        return tuple(LISTS["good"][:2])  # type: ignore[return-value]


class GraphQLCoreLists(StrawberryGraphQLCoreExecutionContext):
    """Counts the lists that graphql-core completes itself."""

    general: ClassVar[list[int]] = [0]

    def complete_iterable_value(self, *args: Any) -> Any:
        GraphQLCoreLists.general[0] += 1
        return super().complete_iterable_value(*args)


class Counting(PlainLeaves, GraphQLCoreLists):
    """PlainLeaves, over an executor that counts the lists it was left to complete."""


def schema(executor: type[Any]) -> strawberry.Schema:
    return strawberry.Schema(query=Query, execution_context_class=executor)


STOCK = schema(StrawberryGraphQLCoreExecutionContext)
PLAIN = schema(Counting)


def answer(which: strawberry.Schema, query: str, variables: Any = None) -> Any:
    result = asyncio.run(which.execute(query, variable_values=variables))
    return result.data, [error.formatted for error in result.errors or []]


# (query, variables, whether a list plan completes items)
QUERIES = [
    ("{ items { n label inner { id colour note } maybe { id } data __typename } }", None, True),
    ("{ items { a: n b: n label } }", None, True),
    (
        "{ items { ...F inner { ...G } } } fragment F on Item { n } fragment G on Inner { colour }",
        None,
        True,
    ),
    ("{ items { inner { id } inner { colour } } }", None, True),
    (
        "query($x: Boolean!) { items { n @include(if: $x) label @skip(if: $x) } }",
        {"x": True},
        False,
    ),
    ("{ items { n doubled later } }", None, False),
    ('{ items(which: "null-label") { n label } }', None, False),
    ('{ items(which: "bad-enum") { inner { colour } } }', None, False),
    ('{ items(which: "int-label") { label } }', None, True),
    ('{ items(which: "none-maybe") { maybe { id colour } } }', None, True),
    ('{ items(which: "error-value") { n label } }', None, False),
    ('{ items(which: "empty") { n } }', None, True),
    ("{ maybeItems { n inner { id } } }", None, True),
    ("{ tupleItems { n label } }", None, True),
    ("{ items { n } m: items { label } }", None, True),
]


@pytest.mark.parametrize(("query", "variables", "planned"), QUERIES)
def test_same_answer_as_graphql_core(query: str, variables: Any, planned: bool) -> None:
    expected = answer(STOCK, query, variables)
    GraphQLCoreLists.general[0] = 0
    assert answer(PLAIN, query, variables) == expected
    # The shortcut completes the list where its selection is plain and every item is
    # regular; where not, graphql-core completed it.
    assert (GraphQLCoreLists.general[0] == 0) == planned, GraphQLCoreLists.general[0]


def test_errors_keep_their_paths() -> None:
    data, errors = answer(PLAIN, '{ items(which: "null-label") { n label } }')
    assert data is None  # a null in a non-null list item nulls the whole list
    assert errors[0]["path"] == ["items", 2, "label"]
    assert "Cannot return null for non-nullable field Item.label" in errors[0]["message"]
    data, errors = answer(PLAIN, '{ items(which: "bad-enum") { inner { colour } } }')
    assert errors[0]["path"] == ["items", 1, "inner", "colour"]


def test_budget_measures_plain_lists_and_stops_reading() -> None:
    """A list of 200 objects with 1 KB labels under a 10 KB limit: refused, and the
    labels past the limit are never read."""
    LISTS["big"] = [item(i, label="y" * 1000) for i in range(200)]
    try:
        limited = schema(bounded(BoundedResults, 10_000))
        READS["label"] = 0
        data, errors = answer(limited, '{ items(which: "big") { n label } }')
        assert data is None
        assert "over the limit of 10000 bytes" in errors[0]["message"]
        assert READS["label"] <= 12, READS["label"]
        # Within the limit the same list is answered whole, through the plan.
        roomy = schema(bounded(BoundedResults, 1_000_000))
        data, errors = answer(roomy, '{ items(which: "big") { n label } }')
        assert errors == [] and len(data["items"]) == 200
        assert data["items"][199] == {"n": 199, "label": "y" * 1000}
    finally:
        del LISTS["big"]
