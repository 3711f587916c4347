"""One result holds at most FLOWSYNC_GRAPHQL_MAX_RESPONSE_BYTES of JSON: a query within
the cost limit whose large fields would make it bigger is answered with the error
`response_too_large` instead, over HTTP and websockets alike."""

from __future__ import annotations

import httpx
import pytest
from gql.transport.exceptions import TransportQueryError

from tests.graphql.conftest import Api, Owner, op, serve
from tests.support.graphs import chain

LIMIT = 200_000
PAGE = """{ executions(first: %d) { edges { node { id definition } } } }"""


async def started(api: Api, owner: Owner, runs: int, pad: int) -> None:
    """`runs` executions of one workflow whose definition holds `pad` characters."""
    definition = chain(1)
    definition["nodes"][1]["data"]["output"]["pad"] = "x" * pad
    workflow = await api.services.workflows.create(owner.principal, "big", None, definition)
    for _ in range(runs):
        await api.services.executions.start(owner.principal, workflow.id, {"n": 1})


async def test_a_result_over_the_byte_limit_is_one_error_not_the_data(db_url: str) -> None:
    async with serve(db_url, graphql_max_response_bytes=LIMIT) as api:
        a = await api.owner()
        await started(api, a, runs=10, pad=30_000)  # ten definitions of ~30 KB
        headers = {"Authorization": f"Bearer {a.key}"}
        async with httpx.AsyncClient() as client:
            fits = await client.post(api.http_url, json={"query": PAGE % 3}, headers=headers)
            assert "errors" not in fits.json(), fits.text[:500]
            assert len(fits.json()["data"]["executions"]["edges"]) == 3
            aliased = " ".join(f"a{i}: " + PAGE[2:-2] % 2 for i in range(6))
            for query in (PAGE % 10, "{ " + aliased + " }"):
                reply = await client.post(api.http_url, json={"query": query}, headers=headers)
                assert reply.status_code == 200
                body = reply.json()
                assert body["data"] is None
                [error] = body["errors"]
                assert error["extensions"]["code"] == "response_too_large"
                assert f"limit of {LIMIT} bytes" in error["message"]
                assert "FLOWSYNC_GRAPHQL_MAX_RESPONSE_BYTES" in error["message"]
                assert len(reply.content) < 2000
        async with api.ws(a.key) as session:
            with pytest.raises(TransportQueryError) as caught:
                await session.execute(op(PAGE % 10))
            assert caught.value.errors is not None
            assert caught.value.errors[0]["extensions"]["code"] == "response_too_large"
            ok = await session.execute(op(PAGE % 3))
            assert len(ok["executions"]["edges"]) == 3
