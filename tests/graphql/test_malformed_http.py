"""Every HTTP request to /graphql that GraphQL cannot run answers JSON errors with
`extensions.code` (as a GraphQL client reads them), never plain text: bad JSON, no
query, a body of the wrong shape or media type, bad GET parameters, other methods."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.graphql.conftest import Api
from tests.rest.server import serve

CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    # (name, method, request arguments, status, code)
    ("bad JSON", "POST", {"content": b'{"query": ', "ct": "application/json"}, 400,
     "invalid_input"),
    ("no query", "POST", {"content": b"{}", "ct": "application/json"}, 400, "invalid_input"),
    ("null query", "POST", {"content": b'{"query": null}', "ct": "application/json"}, 400,
     "invalid_input"),
    ("query not a string", "POST", {"content": b'{"query": 5}', "ct": "application/json"}, 400,
     "invalid_input"),
    ("variables not an object", "POST",
     {"content": b'{"query": "{ health { status } }", "variables": [1]}',
      "ct": "application/json"}, 400, "invalid_input"),
    ("a batch", "POST", {"content": b'[{"query": "{ health { status } }"}]',
                         "ct": "application/json"}, 400, "invalid_input"),
    ("a JSON number", "POST", {"content": b"5", "ct": "application/json"}, 400,
     "invalid_input"),
    ("a JSON string", "POST", {"content": b'"{ health { status } }"', "ct": "application/json"},
     400, "invalid_input"),
    ("text", "POST", {"content": b"{ health { status } }", "ct": "text/plain"}, 415,
     "unsupported_media_type"),
    ("no content type", "POST", {"content": b'{"query": "{ health { status } }"}'}, 415,
     "unsupported_media_type"),
    ("multipart", "POST", {"content": b"--x\r\n\r\n{}\r\n--x--",
                           "ct": "multipart/form-data; boundary=x"}, 415,
     "unsupported_media_type"),
    ("GET bad variables", "GET",
     {"params": {"query": "{ health { status } }", "variables": "{"}}, 400, "invalid_input"),
    ("GET variables not an object", "GET",
     {"params": {"query": "{ health { status } }", "variables": "[1]"}}, 400, "invalid_input"),
    ("GET empty query", "GET", {"params": {"query": ""}}, 400, "invalid_input"),
    ("GET a mutation", "GET",
     {"params": {"query": 'mutation { deleteWorkflow(id: "x") { __typename } }'}}, 400,
     "invalid_input"),
    ("POST a subscription", "POST",
     {"content": b'{"query": "subscription { executionEvents { kind } }"}',
      "ct": "application/json"}, 400, "invalid_input"),
    ("no such operation", "POST",
     {"content": b'{"query": "query A { health { status } }", "operationName": "B"}',
      "ct": "application/json"}, 400, "invalid_input"),
    # A document that does not parse, or that breaks the schema's rules, or variables
    # that do not fit it (found by QA: these had no code, only a message).
    ("syntax error", "POST", {"content": b'{"query": "{ health { "}', "ct": "application/json"},
     200, "syntax_error"),
    ("too many tokens", "POST",
     {"content": b'{"query": "{ ' + b"a " * 3000 + b'}"}', "ct": "application/json"}, 200,
     "syntax_error"),
    ("unknown field", "POST", {"content": b'{"query": "{ health { nope } }"}',
                               "ct": "application/json"}, 200, "invalid_query"),
    ("variable of the wrong type", "POST",
     {"content": b'{"query": "query($n: Int!) { workflows(first: $n) { edges { cursor } } }", '
                 b'"variables": {"n": "x"}}', "ct": "application/json"}, 200, "invalid_query"),
    ("GET syntax error", "GET", {"params": {"query": "{ health {"}}, 200, "syntax_error"),
    ("PUT", "PUT", {"content": b'{"query": "{ health { status } }"}', "ct": "application/json"},
     405, "method_not_allowed"),
    ("DELETE", "DELETE", {}, 405, "method_not_allowed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "method", "args", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
async def test_a_request_graphql_cannot_run_answers_json_errors(
    api: Api, name: str, method: str, args: dict[str, Any], status: int, code: str
) -> None:
    a = await api.owner()
    headers = {"Authorization": f"Bearer {a.key}", "Accept": "application/json"}
    if "ct" in args:
        headers["Content-Type"] = args["ct"]
    async with httpx.AsyncClient() as client:
        reply = await client.request(
            method, api.http_url, content=args.get("content"), params=args.get("params"),
            headers=headers,
        )  # fmt: skip
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    body = reply.json()
    [error] = body["errors"]
    assert error["extensions"]["code"] == code, body
    assert error["message"] and body.get("data") is None
    if name == "variable of the wrong type":
        assert "Variable '$n' has invalid value" in error["message"], error
    if status == 405:
        assert reply.headers["allow"] == "GET, POST"


async def test_graphiql_off_answers_json_not_found(db_url: str) -> None:
    # Without GraphiQL, a browser's GET without a query is a JSON 404 (no credential
    # needed to learn that); with it, the page.
    async with serve(db_url, graphiql=False) as server:
        reply = await server.client().get("/graphql", headers={"Accept": "text/html"})
    assert reply.status_code == 404
    [error] = reply.json()["errors"]
    assert error["extensions"]["code"] == "not_found" and "GraphiQL is off" in error["message"]


async def test_a_document_of_several_operations_runs_none_without_a_name(api: Api) -> None:
    """GraphQL requires `operationName` when a document holds several operations; none
    runs without it (Strawberry alone would run the first: here, a mutation)."""
    a = await api.owner()
    document = 'mutation B { createApiKey(name: "x") { __typename } } query A { health { status } }'
    headers = {"Authorization": f"Bearer {a.key}"}
    async with httpx.AsyncClient() as client:
        reply = await client.post(api.http_url, json={"query": document}, headers=headers)
        [error] = reply.json()["errors"]
        assert (
            error["extensions"]["code"] == "invalid_input" and "operationName" in error["message"]
        )
        assert reply.json()["data"] is None
        named = await client.post(
            api.http_url, json={"query": document, "operationName": "A"}, headers=headers
        )
        assert named.json()["data"]["health"]["status"], named.text
    assert "x" not in [k.name for k in await api.services.api_keys.list(a.principal)]
