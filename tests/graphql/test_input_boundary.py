"""What enters through GraphQL is decided at the boundary, with a clear error, never a
500 or "Unexpected error.": how the query string names `query`, fragment cycles and
out-of-range `first` in the cost limit, NUL characters and numbers beyond 64 bits in
literals and variables, and extreme cursors and times."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.graphql.conftest import Api, serve

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


async def test_fragment_cycles_and_deep_or_wide_documents_get_a_clear_error(api: Api) -> None:
    me = await api.owner()
    cycle = """query { workflows { edges { ...A } } }
      fragment A on WorkflowEdge { node { executions { edges { node { workflow {
        executions { edges { ...A } } } } } } } }"""
    # Each fragment spreads the next twice: 2^40 paths if followed one by one.
    chain = "".join(
        f"fragment F{i} on Execution {{ a: workflow {{ ...G{i} }} b: workflow {{ ...G{i} }} }}"
        f"fragment G{i} on Workflow {{ executions {{ edges {{ node {{ ...F{i + 1} }} }} }} }}"
        for i in range(40)
    )
    wide = "{ executions { edges { node { ...F0 } } } } " + chain
    wide += "fragment F40 on Execution { id }"
    deep = "{ " + "health { " * 400 + "status" + " }" * 401
    for document in (cycle, wide, deep):
        reply = await post(api, me.key, document)
        assert reply.status_code in (200, 400), reply.text
        errors = reply.json()["errors"]
        assert errors and "Unexpected error" not in reply.text, errors
        assert "recursion" not in reply.text.lower(), errors
        assert "too many tokens" not in reply.text, errors  # the limits under test ran


async def test_first_beyond_an_int_is_refused_as_graphql_refuses_any_int(api: Api) -> None:
    me = await api.owner()
    for first in ("9223372036854775808", "219306168535640140678344736768", "2147483648"):
        reply = await post(api, me.key, f"{{ workflows(first: {first}) {{ edges {{ cursor }} }} }}")
        assert reply.status_code in (200, 400), reply.text
        assert "Int cannot represent" in reply.json()["errors"][0]["message"], reply.text
        reply = await post(
            api,
            me.key,
            "query($n: Int) { workflows(first: $n) { edges { cursor } } }",
            n=int(first),
        )
        assert reply.status_code in (200, 400), reply.text
        assert "Int cannot represent" in reply.json()["errors"][0]["message"], reply.text
    # Nested connections each within range still multiply past 64 bits: refused by cost.
    nested = (
        "{ workflows(first: 2147483647) { edges { node { executions(first: 2147483647) {"
        " edges { node { workflow { executions(first: 2147483647) {"
        " edges { cursor } } } } } } } } } }"
    )
    reply = await post(api, me.key, nested)
    assert reply.status_code == 200, reply.text
    assert reply.json()["errors"][0]["extensions"]["code"] == "query_too_costly", reply.text


async def test_a_first_sent_as_a_whole_float_counts_as_what_graphql_makes_of_it(
    db_url: str,
) -> None:
    query = """query($n: Int) { workflows(first: $n) { edges { node {
      executions(first: $n) { edges { cursor } } } } } }"""
    async with serve(db_url, max_query_cost=10_000) as api:  # 200 * 202 is over, 50 * 52 not
        me = await api.owner()
        reply = await post(api, me.key, query, n=200.0)
        assert reply.json()["errors"][0]["extensions"]["code"] == "query_too_costly", reply.text
        reply = await post(api, me.key, query, n=50.0)
        assert "errors" not in reply.json(), reply.text


async def test_extreme_cursors_and_audit_times_are_invalid_input(api: Api) -> None:
    from tests.rest.test_input_boundary import EXTREME_CURSORS

    me = await api.owner()
    lists = ("workflows", "executions", "triggers", "apiKeys", "deadLetters", "auditLog")
    for field in lists:
        for case, value in EXTREME_CURSORS.items():
            reply = await post(
                api,
                me.key,
                f"query($c: String) {{ {field}(after: $c) {{ edges {{ cursor }} }} }}",
                c=value,
            )
            assert reply.status_code == 200, (field, case, reply.text)
            error = reply.json()["errors"][0]
            assert error["extensions"]["code"] == "invalid_input", (field, case, error)
    for name in ("since", "until"):
        for value in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
            query = f"query($t: DateTime) {{ auditLog({name}: $t) {{ edges {{ cursor }} }} }}"
            reply = await post(api, me.key, query, t=value)
            error = reply.json()["errors"][0]
            assert error["extensions"]["code"] == "invalid_input", (name, value, error)
            assert error["extensions"]["problems"][0]["path"] == name
    # A time without an offset is refused naming it (never guessed, nor a TypeError when
    # compared with one that has it); see tests/behaviour for both faces.
    query = '{ auditLog(since: "2024-01-01T00:00:00", until: "2025-01-01T00:00:00Z") {'
    query += " edges { cursor } } }"
    error = (await post(api, me.key, query)).json()["errors"][0]
    assert error["extensions"]["code"] == "invalid_input"
    assert error["extensions"]["problems"][0]["path"] == "since"


CREATE = """mutation($name: String!, $d: JSON!) {
  createWorkflow(input: {name: $name, definition: $d}) {
    __typename ... on WorkflowPayload { workflow { id definition } }
    ... on ValidationError { problems { path message } } } }"""


async def test_a_nul_in_a_variable_or_a_literal_is_invalid_input_naming_it(api: Api) -> None:
    from tests.support.graphs import chain

    me = await api.owner()
    cases = [
        (CREATE, {"name": "a\x00b", "d": chain(1)}, "$name"),
        (CREATE, {"name": "ok", "d": {**chain(1), "k": ["x", "a\x00"]}}, "$d.k[1]"),
        (CREATE, {"name": "ok", "d": {"a\x00": 1}}, "$d.a\\u0000"),
        (
            'mutation { createWorkflow(input: {name: "a\\u0000b", definition: {}}) '
            "{ __typename } }",
            {},
            "createWorkflow.input.name",
        ),
        (
            'mutation { createWorkflow(input: {name: "x", definition: {nodes: [1, "\\u0000"]}}) '
            "{ __typename } }",
            {},
            "createWorkflow.input.definition.nodes[1]",
        ),
        ('{ workflows(after: "\\u0000") { edges { cursor } } }', {}, "workflows.after"),
        ('{ auditLog(action: "\\u0000") { edges { cursor } } }', {}, "auditLog.action"),
        ('query($a: String = "\\u0000") { auditLog(action: $a) { edges { cursor } } }', {}, "$a"),
        ("mutation($n: String!) { createApiKey(name: $n) { __typename } }", {"n": "\x00"}, "$n"),
    ]
    for query, variables, path in cases:
        reply = await post(api, me.key, query, **variables)
        assert reply.status_code in (200, 400), reply.text
        error = reply.json()["errors"][0]
        assert error["extensions"]["code"] == "invalid_input", (query, error)
        assert error["extensions"]["problems"][0]["path"] == path, (query, error)
        assert "NUL" in error["message"], error


async def test_json_numbers_past_64_bits_round_trip_as_doubles_in_literals_too(api: Api) -> None:
    me = await api.owner()
    literal = """mutation { createWorkflow(input: {name: "big", definition: {nodes: [
      {id: "start", type: "start", position: {x: 100000000000000000000, y: 1e308}},
      {id: "end", type: "end"}], edges: [{source: "start", target: "end"}]}}) {
      __typename ... on WorkflowPayload { workflow { id definition } }
      ... on ValidationError { problems { path message } } } }"""
    reply = await post(api, me.key, literal)
    assert reply.status_code == 200 and "errors" not in reply.json(), reply.text
    made = reply.json()["data"]["createWorkflow"]
    assert "workflow" in made, made
    made = made["workflow"]
    assert made["definition"]["nodes"][0]["position"] == {"x": 1e20, "y": 1e308}
    listed = await post(api, me.key, "{ workflows { edges { node { id definition } } } }")
    assert listed.status_code == 200 and "errors" not in listed.json(), listed.text
    too_big = literal.replace("1e308", "1e400")
    reply = await post(api, me.key, too_big)
    error = reply.json()["errors"][0]
    assert error["extensions"]["code"] == "invalid_input", error
    assert error["extensions"]["problems"][0]["path"].endswith("position.y"), error


async def test_a_nul_in_a_websocket_operation_is_invalid_input(api: Api) -> None:
    from gql.transport.exceptions import TransportQueryError

    from tests.graphql.conftest import op

    me = await api.owner()
    async with api.ws(me.key) as session:
        with pytest.raises(TransportQueryError) as caught:
            subscription = session.subscribe(
                op("subscription($id: ID!) { executionUpdated(id: $id) { kind } }", id="\x00")
            )
            async for _ in subscription:
                break
        error = caught.value.errors[0] if caught.value.errors else {}
        assert error.get("extensions", {}).get("code") == "invalid_input", caught.value
        assert error["extensions"]["problems"][0]["path"] == "$id"


async def test_extreme_version_cursors_are_invalid_input(api: Api) -> None:
    from tests.rest.test_input_boundary import cursor, nested_cursor
    from tests.support.graphs import chain

    me = await api.owner()
    made = await post(api, me.key, CREATE, name="v", d=chain(1))
    wid = made.json()["data"]["createWorkflow"]["workflow"]["id"]
    query = """query($w: ID!, $c: String) { workflowVersions(workflowId: $w, after: $c) {
      edges { cursor } } }"""
    for value in (nested_cursor(5000), cursor("v", 2**70), cursor("v", True)):
        reply = await post(api, me.key, query, w=wid, c=value)
        error = reply.json()["errors"][0]
        assert error["extensions"]["code"] == "invalid_input", error
