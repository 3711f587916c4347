"""Apollo's automatic persisted queries, through real HTTP: a hash alone misses with
PersistedQueryNotFound, the document with its hash registers it, then the hash alone
runs it, over GET and POST; a hash that is not the document's is refused."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
from strawberry.http import GraphQLRequestData

from flowsync.schema.persisted import PersistedQueries
from tests.graphql.conftest import Api, serve

QUERY = "query Mine { workflows(first: 1) { edges { cursor } } }"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()


def persisted(digest: str = HASH) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def post(api: Api, key: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            api.http_url, json=body, headers={"Authorization": f"Bearer {key}"}
        )


async def get(api: Api, key: str, **params: Any) -> httpx.Response:
    query = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    async with httpx.AsyncClient() as client:
        return await client.get(
            api.http_url, params=query,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
        )  # fmt: skip


def codes(reply: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in reply.json().get("errors", [])]


async def test_hash_misses_then_the_document_registers_it_over_post(api: Api) -> None:
    me = await api.owner()
    miss = await post(api, me.key, {"extensions": persisted()})
    assert miss.json()["errors"][0]["message"] == "PersistedQueryNotFound"
    assert codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"]
    full = await post(api, me.key, {"query": QUERY, "extensions": persisted()})
    assert full.json()["data"] == {"workflows": {"edges": []}}
    hit = await post(api, me.key, {"extensions": persisted()})
    assert hit.status_code == 200 and hit.json()["data"] == {"workflows": {"edges": []}}
    # The cost is counted for a persisted document as for any other.
    assert hit.json()["extensions"]["cost"]["requested"] >= 1


async def test_get_with_the_hash_alone_needs_a_credential_and_runs_it(api: Api) -> None:
    me = await api.owner()
    miss = await get(api, me.key, extensions=persisted())
    assert codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"], miss.text
    await get(api, me.key, query=QUERY, extensions=persisted())
    hit = await get(api, me.key, extensions=persisted())
    assert hit.json()["data"] == {"workflows": {"edges": []}}, hit.text
    async with httpx.AsyncClient() as client:
        anonymous = await client.get(api.http_url, params={"extensions": json.dumps(persisted())})
    assert anonymous.status_code == 401


async def test_a_hash_that_is_not_the_documents_is_refused_and_not_registered(
    api: Api,
) -> None:
    me = await api.owner()
    wrong = "0" * 64
    reply = await post(api, me.key, {"query": QUERY, "extensions": persisted(wrong)})
    assert reply.json()["data"] is None
    assert codes(reply) == ["invalid_input"]
    assert "not the SHA-256 of `query`" in reply.json()["errors"][0]["message"]
    after = await post(api, me.key, {"extensions": persisted(wrong)})
    assert codes(after) == ["PERSISTED_QUERY_NOT_FOUND"]
    for bad in ["XYZ", 5, None]:
        garbled = await post(api, me.key, {"extensions": persisted(bad)})  # type: ignore[arg-type]
        assert codes(garbled) == ["invalid_input"], bad
    version = await post(
        api, me.key, {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": HASH}}}
    )
    assert codes(version) == ["invalid_input"]


async def test_the_cache_is_bounded_least_recently_used_first(db_url: str) -> None:
    async with serve(db_url, persisted_query_cache_size=2) as api:
        me = await api.owner()
        docs = [f"query Q{n} {{ workflows(first: {n}) {{ edges {{ cursor }} }} }}"
                for n in (1, 2, 3)]  # fmt: skip
        hashes = [hashlib.sha256(d.encode()).hexdigest() for d in docs]
        for doc, digest in zip(docs[:2], hashes[:2], strict=True):
            await post(api, me.key, {"query": doc, "extensions": persisted(digest)})
        await post(api, me.key, {"extensions": persisted(hashes[0])})  # Q1 used: Q2 oldest
        await post(api, me.key, {"query": docs[2], "extensions": persisted(hashes[2])})
        left = [codes(await post(api, me.key, {"extensions": persisted(h)})) for h in hashes]
        assert left == [[], ["PERSISTED_QUERY_NOT_FOUND"], []]


def test_the_cache_holds_so_many_characters_and_no_syntax_error() -> None:
    """Registered documents are bounded in characters too (least recently used dropped
    first): long comments cannot fill a process's memory. A document that does not parse,
    or alone is over the bound, runs (and answers what it answers) but is not kept."""
    cache = PersistedQueries(1000, characters=100)

    def register(document: str) -> str:
        digest = hashlib.sha256(document.encode()).hexdigest()
        data = GraphQLRequestData(query=document, variables=None, operation_name=None,
                                  extensions=persisted(digest))  # fmt: skip
        assert cache.resolve(data) is None  # runs
        return digest

    def kept(digest: str) -> bool:
        data = GraphQLRequestData(query=None, variables=None, operation_name=None,
                                  extensions=persisted(digest))  # fmt: skip
        return cache.resolve(data) is None

    padded = [f"#{'x' * 30}\n{{ health {{ status }} }} # {n}" for n in range(3)]  # 55 each
    first, second = register(padded[0]), register(padded[1])
    assert not kept(first) and kept(second)  # 110 > 100: the older one went
    broken = register("{ health { ")
    long = register("#" + "y" * 120 + "\n{ health { status } }")
    assert not kept(broken) and not kept(long) and kept(second)
