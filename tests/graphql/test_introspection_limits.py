"""Introspection is held to the limits every other selection is: its depth (a limit of
its own, FLOWSYNC_MAX_INTROSPECTION_DEPTH, that the standard introspection query fits),
its aliases and its cost (the objects it returns from this schema). The defaults let
the query GraphiQL and graphql-codegen send through."""

from __future__ import annotations

from typing import Any

import httpx
from graphql import get_introspection_query

from tests.graphql.conftest import Api, serve


async def post(api: Api, key: str, query: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            api.http_url, json={"query": query}, headers={"Authorization": f"Bearer {key}"}
        )
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


def nested(field: str, times: int, leaf: str = "name") -> str:
    return f"{field} {{ " * times + leaf + " }" * times


async def test_the_standard_introspection_query_passes_the_default_limits(api: Api) -> None:
    a = await api.owner()
    every_option = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        one_of=True,
    )
    for query in (get_introspection_query(), every_option):
        body = await post(api, a.key, query)
        assert "errors" not in body, body.get("errors")
        assert body["data"]["__schema"]["queryType"]["name"] == "Query"
        assert 0 < body["extensions"]["cost"]["requested"] < body["extensions"]["cost"]["limit"]


async def test_deep_introspection_is_refused_with_query_too_deep(api: Api) -> None:
    a = await api.owner()
    # 16 deep, past the default 15: `ofType` and `type` were never counted.
    for query in (
        '{ __type(name: "Query") { ' + nested("ofType", 15) + " } }",
        "{ __schema { types { fields { type { " + nested("ofType", 12) + " } } } } }",
        "query Q { __schema { ...T } } fragment T on __Schema { types { "
        + nested("ofType", 14)
        + " } }",
    ):
        body = await post(api, a.key, query)
        assert body["data"] is None, query
        [error] = body["errors"]
        assert error["extensions"]["code"] == "query_too_deep", error
        assert "introspection depth of 15" in error["message"]
    # graphql-core's own limit on nested introspection lists carries the code too.
    lists = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    body = await post(api, a.key, lists)
    assert body["errors"][0]["message"] == "Maximum introspection depth exceeded"
    assert body["errors"][0]["extensions"]["code"] == "query_too_deep"


async def test_introspection_counts_against_the_cost_limit(db_url: str) -> None:
    async with serve(db_url, max_query_cost=5000) as api:
        a = await api.owner()
        full = get_introspection_query()
        body = await post(api, a.key, full)
        assert "errors" not in body
        one = body["extensions"]["cost"]["requested"]
        assert one > 1000  # every type, field, argument and type reference it returns
        # Aliases of `__schema` cost one each, as the objects they return: four are over.
        selection = full[full.index("__schema {") + len("__schema") : full.index("fragment")]
        aliased = (
            "query A { "
            + " ".join(f"s{i}: __schema {selection.strip()[:-1]}" for i in range(4))
            + " }"
        )
        aliased += full[full.index("fragment") - 1 :]
        body = await post(api, a.key, aliased)
        [error] = body["errors"]
        assert error["extensions"] == {"code": "query_too_costly", "cost": 4 * one}
