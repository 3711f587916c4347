"""FlowSync's schema skips strawberry's per-result extension work when no extension
asks for it, and keeps it, unchanged, for one that does."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension

from flowsync.schema.schema import Schema


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def count(self) -> AsyncGenerator[int, None]:
        for i in range(3):
            yield i


class Stamps(SchemaExtension):
    """Marks every streamed result and reports results of its own."""

    seen = 0

    def on_stream_result(self, result: Any) -> Iterator[None]:
        Stamps.seen += 1
        result.extensions = {**(result.extensions or {}), "stamped": True}
        yield

    def get_results(self) -> dict[str, Any]:
        return {"mine": 1}


async def events(schema: Schema) -> list[Any]:
    stream = await schema.subscribe("subscription { count }")
    return [result async for result in stream]  # type: ignore[union-attr]


async def test_without_such_extensions_results_stream_plain() -> None:
    schema = Schema(query=Query, subscription=Subscription, extensions=[])
    results = await events(schema)
    assert [r.data for r in results] == [{"count": 0}, {"count": 1}, {"count": 2}]
    assert all(not r.errors and not r.extensions for r in results)


async def test_an_extension_with_stream_hooks_and_results_still_gets_them() -> None:
    Stamps.seen = 0
    schema = Schema(query=Query, subscription=Subscription, extensions=[Stamps])
    results = await events(schema)
    assert [r.data for r in results] == [{"count": 0}, {"count": 1}, {"count": 2}]
    assert Stamps.seen == 3
    assert all(r.extensions == {"mine": 1, "stamped": True} for r in results)
