"""`GET /graphql/schema.graphql` over real HTTP: the committed schema, under
introspection's rules (a credential, the rate limits, off with introspection)."""

from __future__ import annotations

import httpx

from tests.graphql.conftest import serve
from tests.support.processes import ROOT

COMMITTED = (ROOT / "web" / "schema.graphql").read_text()


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}/graphql/schema.graphql"


async def test_the_schema_document_is_the_committed_schema_for_a_caller(db_url: str) -> None:
    async with serve(db_url, rate_limit_per_principal="5/day") as api, httpx.AsyncClient() as http:
        a = await api.owner()
        auth = {"Authorization": f"Bearer {a.key}"}
        got = await http.get(url(api.port), headers=auth)
        assert got.status_code == 200
        assert got.headers["content-type"] == "text/plain; charset=utf-8"
        assert got.text == COMMITTED
        # Unchanged since: 304, nothing sent again.
        etag = got.headers["etag"]
        again = await http.get(url(api.port), headers={**auth, "If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        head = await http.head(url(api.port), headers=auth)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(COMMITTED.encode())

        # As any operation: a credential first, and every request counted.
        for headers in ({}, {"Authorization": "Bearer fsk_nope"}):
            refused = await http.get(url(api.port), headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"] == 'Bearer realm="flowsync"'
            assert refused.json()["errors"][0]["extensions"]["code"] == "unauthenticated"
        posted = await http.post(url(api.port), headers=auth, content=b"{}")
        assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
        assert posted.json()["errors"][0]["extensions"]["code"] == "method_not_allowed"
        # Three counted so far (the refusals above were not the owner's requests).
        for _ in range(2):
            assert (await http.get(url(api.port), headers=auth)).status_code == 200
        over = await http.get(url(api.port), headers=auth)  # the sixth: over 5/day
        assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
        assert over.json()["errors"][0]["extensions"]["code"] == "rate_limited"


async def test_no_schema_document_while_introspection_is_off(db_url: str) -> None:
    async with serve(db_url, introspection=False) as api, httpx.AsyncClient() as http:
        a = await api.owner()
        anonymous = await http.get(url(api.port))
        assert anonymous.status_code == 401
        off = await http.get(url(api.port), headers={"Authorization": f"Bearer {a.key}"})
        assert off.status_code == 404
        error = off.json()["errors"][0]
        assert error["extensions"]["code"] == "not_found"
        assert "FLOWSYNC_INTROSPECTION" in error["message"]
        # As introspection itself, refused by the same switch.
        reply = await http.post(
            api.http_url, json={"query": "{ __schema { queryType { name } } }"},
            headers={"Authorization": f"Bearer {a.key}"},
        )  # fmt: skip
        assert "introspection has been disabled" in reply.json()["errors"][0]["message"].lower()
