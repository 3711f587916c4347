"""The caller owner's API keys through GraphQL: newest first, paged by keyset cursors,
revoked ones included with `revokedAt`; never another owner's; costed like any list."""

from __future__ import annotations

from typing import Any

import httpx

from tests.graphql.conftest import Api, op, serve

KEYS = """query($first: Int, $after: String) { apiKeys(first: $first, after: $after) {
  edges { cursor node { id name prefix createdAt revokedAt } }
  pageInfo { hasNextPage hasPreviousPage endCursor } } }"""
CREATE = """mutation($name: String!) { createApiKey(name: $name) {
  ... on CreateApiKeyPayload { secret apiKey { id name prefix } } } }"""
REVOKE = """mutation($id: ID!) { revokeApiKey(id: $id) { __typename
  ... on ApiKeyPayload { apiKey { id revokedAt } } ... on NotFoundError { code } } }"""


async def _all(session: Any, first: int) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await session.execute(op(KEYS, first=first, after=after)))["apiKeys"]
        nodes += [e["node"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


async def test_keys_newest_first_with_revoked_ones_and_nothing_of_others(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    async with api.http(a.key) as s:
        made = [(await s.execute(op(CREATE, name=f"k{i}")))["createApiKey"] for i in range(4)]
        revoked = (await s.execute(op(REVOKE, id=made[1]["apiKey"]["id"])))["revokeApiKey"]
        assert revoked["apiKey"]["revokedAt"] is not None
        nodes = await _all(s, 2)
        # The four new keys, newest first, then the test's own key.
        assert [n["name"] for n in nodes] == ["k3", "k2", "k1", "k0", "test"]
        assert [n["id"] for n in nodes[:4]] == [m["apiKey"]["id"] for m in reversed(made)]
        by_name = {n["name"]: n for n in nodes}
        assert by_name["k1"]["revokedAt"] == revoked["apiKey"]["revokedAt"]
        assert all(by_name[k]["revokedAt"] is None for k in ("k0", "k2", "k3", "test"))
        assert all(
            m["secret"].startswith(n["prefix"]) for m, n in zip(made, nodes[3::-1], strict=True)
        )
        assert "secret" not in str(await s.execute(op(KEYS)))  # the secret is never listed
    async with api.http(b.key) as s:
        assert [n["name"] for n in await _all(s, 50)] == ["test"]
        stolen = (await s.execute(op(REVOKE, id=made[0]["apiKey"]["id"])))["revokeApiKey"]
        assert stolen == {"__typename": "NotFoundError", "code": "not_found"}


async def test_key_pages_are_checked_and_costed(db_url: str) -> None:
    async with serve(db_url, max_query_cost=300) as api:
        a = await api.owner()
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {a.key}"}) as http:

            async def post(variables: dict[str, Any]) -> dict[str, Any]:
                reply = await http.post(api.http_url, json={"query": KEYS, "variables": variables})
                body: dict[str, Any] = reply.json()
                return body

            costly = await post({"first": 200})
            assert costly["errors"][0]["extensions"] == {"code": "query_too_costly", "cost": 600}
            for bad in ({"first": 0}, {"after": "nope"}):
                error = (await post(bad))["errors"][0]
                assert error["extensions"]["code"] == "invalid_input", error
            assert len((await post({"first": 100}))["data"]["apiKeys"]["edges"]) == 1
