"""What enters through GraphQL is decided at the boundary, with a clear error, never a
500 or "Unexpected error.": how the query string names `query`, fragment cycles and
out-of-range `first` in the cost limit, NUL characters and numbers beyond 64 bits in
literals and variables, and extreme cursors and times."""

from __future__ import annotations

from typing import Any

import httpx

from tests.graphql.conftest import Api

INTROSPECT = "{__schema{queryType{name}}}"


async def post(api: Api, token: str | None, query: str, **variables: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            api.http_url, json={"query": query, "variables": variables}, headers=headers
        )


async def test_a_percent_encoded_query_parameter_still_needs_a_credential(api: Api) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        for spelled in ("%71uery", "qu%65ry", "%71%75%65%72%79", "query"):
            reply = await client.get(f"{api.http_url}?{spelled}={INTROSPECT}")
            assert reply.status_code == 401, (spelled, reply.text)
            assert "__schema" not in reply.text
        # GraphiQL's page still opens without one.
        page = await client.get(api.http_url, headers={"Accept": "text/html"})
        assert page.status_code == 200 and "<html" in page.text.lower()
