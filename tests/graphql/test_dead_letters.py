"""Dead letters through GraphQL: filtered by execution, with or without the redriven
ones, one by id, each with its execution (batched); another owner's answer as missing."""

from __future__ import annotations

from tests.graphql.conftest import Api, new_id, op
from tests.graphql.test_statements import run
from tests.support.dead_letters import failed_runs

LETTERS = """query($e: ID, $all: Boolean, $first: Int, $after: String) {
  deadLetters(executionId: $e, includeRedriven: $all, first: $first, after: $after) {
    edges { node { id executionId nodeId redrivenAt execution { id status } } }
    pageInfo { hasNextPage endCursor } } }"""
ONE = "query($id: ID!) { deadLetter(id: $id) { id executionId nodeId attempts error } }"
REDRIVE = """mutation($id: ID!) { redriveDeadLetter(id: $id) { __typename
  ... on DeadLetterPayload { deadLetter { id redrivenAt execution { id } } } } }"""


async def test_dead_letters_by_execution_and_by_id(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    runs = [str(r) for r in await failed_runs(api.services, a.principal, 3)]
    async with api.http(a.key) as s:
        everything = (await s.execute(op(LETTERS)))["deadLetters"]["edges"]
        assert sorted(e["node"]["executionId"] for e in everything) == sorted(runs)
        assert all(e["node"]["execution"]["status"] == "FAILED" for e in everything)
        mine = (await s.execute(op(LETTERS, e=runs[1])))["deadLetters"]["edges"]
        assert [e["node"]["executionId"] for e in mine] == [runs[1]]
        letter = mine[0]["node"]
        assert letter["execution"] == {"id": runs[1], "status": "FAILED"}
        for nothing in (new_id(), "not-a-uuid"):
            assert (await s.execute(op(LETTERS, e=nothing)))["deadLetters"]["edges"] == []
        page = (await s.execute(op(LETTERS, first=2)))["deadLetters"]
        assert page["pageInfo"]["hasNextPage"] and len(page["edges"]) == 2
        one = (await s.execute(op(ONE, id=letter["id"])))["deadLetter"]
        assert (one["executionId"], one["nodeId"], one["attempts"]) == (runs[1], "call", 1)
        assert one["error"]

        redriven = (await s.execute(op(REDRIVE, id=letter["id"])))["redriveDeadLetter"]
        assert redriven["deadLetter"]["redrivenAt"] and redriven["deadLetter"]["execution"]
        # Redriven letters leave the default list; includeRedriven shows them.
        left = (await s.execute(op(LETTERS, e=runs[1])))["deadLetters"]["edges"]
        assert letter["id"] not in [e["node"]["id"] for e in left]
        kept = (await s.execute(op(LETTERS, e=runs[1], all=True)))["deadLetters"]["edges"]
        assert letter["id"] in [e["node"]["id"] for e in kept]
    async with api.http(b.key) as s:
        assert (await s.execute(op(LETTERS, e=runs[0], all=True)))["deadLetters"]["edges"] == []
        assert (await s.execute(op(ONE, id=letter["id"])))["deadLetter"] is None
        assert (await s.execute(op(ONE, id="not-a-uuid")))["deadLetter"] is None


async def test_a_page_of_dead_letters_with_executions_is_a_constant_number_of_statements(
    api: Api,
) -> None:
    a = await api.owner()
    await failed_runs(api.services, a.principal, 6)
    query = "{ deadLetters(first: 50) { edges { node { id execution { id status } } } } }"
    statements, _, body = await run(api, a.key, query)
    assert len(body["data"]["deadLetters"]["edges"]) == 6
    # The key's lookup, the page, the executions of all of them.
    assert len(statements) <= 3, statements
