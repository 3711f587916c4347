"""What enters through REST is decided at the boundary with a 400 naming the parameter or
field, never a 500: extreme cursors and times, digits that are not ASCII, NUL characters
and numbers beyond 64 bits."""

from __future__ import annotations

import base64
import json
import uuid

from tests.rest.server import Owner, Server, finished, worker
from tests.rest.test_webhooks_http import signature, webhook
from tests.support.graphs import chain


def cursor(*items: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(items)).encode()).decode().rstrip("=")


def nested_cursor(depth: int) -> str:
    return base64.urlsafe_b64encode(b"[" * depth + b"]" * depth).decode().rstrip("=")


EXTREME_CURSORS = {
    "nested": nested_cursor(5000),
    "nested, short": nested_cursor(300),
    "year 1 east of UTC": cursor("0001-01-01T00:30:00+05:00", str(uuid.uuid4())),
    "year 9999 west of UTC": cursor("9999-12-31T23:30:00-05:00", str(uuid.uuid4())),
    "no offset": cursor("2024-01-01T00:00:00", str(uuid.uuid4())),
    "a number for a time": cursor(1, str(uuid.uuid4())),
    "audit id past bigint": cursor("a", 2**70),
    "audit id nested": cursor("a", [[[[1]]]]),
}
LISTS = [
    "/api/workflows",
    "/api/executions",
    "/api/triggers",
    "/api/api-keys",
    "/api/dead-letters",
    "/api/observability/audit",
]


async def test_extreme_cursors_are_400_naming_the_cursor(server: Server, me: Owner) -> None:
    for path in LISTS:
        for case, value in EXTREME_CURSORS.items():
            reply = await me.http.get(path, params={"cursor": value})
            assert reply.status_code == 400, (path, case, reply.text)
            assert reply.json()["error"]["details"][0]["path"] == "cursor", (path, case)


async def test_extreme_audit_times_and_unicode_digits_are_400(server: Server, me: Owner) -> None:
    audit = "/api/observability/audit"
    for name in ("since", "until"):
        for value in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
            reply = await me.http.get(audit, params={name: value})
            assert reply.status_code == 400, (name, value, reply.text)
            assert reply.json()["error"]["details"][0]["path"] == name
    for path in LISTS:
        for value in ("²", "١٢", "1e3", "9" * 30):
            reply = await me.http.get(path, params={"limit": value})
            assert reply.status_code == 400, (path, value, reply.text)
            assert reply.json()["error"]["details"][0]["path"] == "limit"


BIG = {"amount": 1e20, "huge": 1e308, "tiny": -1e308, "long": 123456789012345678901234567890}


ECHO = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "end", "type": "end", "data": {"output": "{{ trigger.body }}"}},
    ],
    "edges": [{"source": "start", "target": "end"}],
}


async def test_numbers_past_64_bits_round_trip_as_doubles_and_every_list_reads(
    server: Server, me: Owner
) -> None:
    # One anonymous delivery of 1e20 once made its owner's execution list a lasting 500.
    url, secret = await webhook(me, ECHO)
    raw = b'{"amount": 1e20, "n": 1, "long": 123456789012345678901234567890}'
    headers = {"content-type": "application/json", "x-flowsync-signature": signature(secret, raw)}
    async with worker(server.services):
        reply = await server.client().post(url, content=raw, headers=headers)
        assert reply.status_code == 202, reply.text
        done = await finished(me.http, reply.json()["executionId"])
    assert done["output"] == {"amount": 1e20, "n": 1, "long": 1.2345678901234568e29}, done
    definition = {
        "nodes": [
            {"id": "start", "type": "start", "position": {"x": 1e308, "y": -1e308}},
            {"id": "end", "type": "end", "position": {"x": 10**20, "y": 2**64}},
        ],
        "edges": [{"source": "start", "target": "end"}],
    }
    made = await me.http.post("/api/workflows", json={"name": "far", "definition": definition})
    assert made.status_code == 201, made.text
    started = await me.http.post(
        "/api/executions", json={"workflowId": made.json()["id"], "input": BIG}
    )
    assert started.status_code in (201, 202), started.text
    listed = await me.http.get("/api/executions")
    assert listed.status_code == 200, listed.text
    outputs = [item["output"] for item in listed.json()["items"]]
    assert {"amount": 1e20, "n": 1, "long": 1.2345678901234568e29} in outputs
    inputs = [item["input"] for item in listed.json()["items"]]
    assert {"amount": 1e20, "huge": 1e308, "tiny": -1e308, "long": 1.2345678901234568e29} in inputs
    workflows = await me.http.get("/api/workflows")
    assert workflows.status_code == 200, workflows.text
    one = await me.http.get(f"/api/workflows/{made.json()['id']}")
    nodes = one.json()["definition"]["nodes"]
    assert nodes[0]["position"] == {"x": 1e308, "y": -1e308}
    assert nodes[1]["position"] == {"x": 1e20, "y": 2.0**64}
    # Beyond a double, a number cannot be read as one: refused.
    reply = await me.http.post(
        "/api/workflows",
        content=b'{"name": "x", "definition": 1e400}',
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 400, reply.text


NUL = "a\x00b"


async def test_a_nul_anywhere_in_a_request_is_400_naming_the_field(
    server: Server, me: Owner
) -> None:
    wf = (await me.http.post("/api/workflows", json={"name": "ok", "definition": chain(1)})).json()
    bodies = [
        ("POST", "/api/workflows", {"name": NUL, "definition": chain(1)}, "$.name"),
        ("POST", "/api/workflows", {"name": "x", "description": NUL, "definition": chain(1)},
         "$.description"),
        ("POST", "/api/workflows", {"name": "x", "definition": {**chain(1), NUL: 1}},
         "$.definition.a\\u0000b"),
        ("PUT", f"/api/workflows/{wf['id']}", {"name": NUL}, "$.name"),
        ("POST", "/api/executions", {"workflowId": wf["id"], "input": {"k": [NUL]}},
         "$.input.k[0]"),
        ("POST", "/api/executions", {"workflowId": wf["id"], "idempotencyKey": NUL},
         "$.idempotencyKey"),
        ("POST", "/api/api-keys", {"name": NUL}, "$.name"),
        ("POST", "/api/triggers",
         {"workflowId": wf["id"], "type": "CRON", "config": {"expression": NUL}},
         "$.config.expression"),
        ("POST", "/api/validate", {"definition": {"nodes": [{"id": NUL}]}},
         "$.definition.nodes[0].id"),
    ]  # fmt: skip
    for method, path, body, field in bodies:
        reply = await me.http.request(method, path, json=body)
        assert reply.status_code in (400, 404, 405), (path, body, reply.text)
        if reply.status_code == 400:
            assert reply.json()["error"]["details"][0]["path"] == field, (path, reply.text)
    for path in [*LISTS, "/api/workers"]:
        for name in ("workflowId", "status", "action", "entityType", "entityId", "cursor"):
            reply = await me.http.get(path, params={name: NUL})
            assert reply.status_code in (400, 200), (path, name, reply.text)
            if reply.status_code == 400:
                assert reply.json()["error"]["details"][0]["path"] == name, (path, reply.text)


async def test_a_nul_in_a_webhook_delivery_is_400_naming_where(server: Server, me: Owner) -> None:
    url, _ = await webhook(me, requireSignature=False)
    anonymous = server.client()
    for raw, kind in (
        (b'{"order": "a\\u0000b"}', "application/json"),
        (b'{"a\\u0000": 1}', "application/json"),
        (b"a\x00b", "text/plain"),
        (b"a=%00", "application/x-www-form-urlencoded"),
    ):
        reply = await anonymous.post(url, content=raw, headers={"content-type": kind})
        assert reply.status_code == 400, (raw, reply.text)
        assert "NUL" in reply.json()["error"]["message"], (raw, reply.text)
    reply = await anonymous.post(url + "?q=%00", json={})
    assert reply.status_code in (202, 400), reply.text


async def test_a_nul_in_a_steps_output_fails_the_step_at_once(server: Server, me: Owner) -> None:
    definition = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "t", "type": "transform", "data": {"output": {"v": "{{ 'a\\u0000b' }}"}}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "t"}, {"source": "t", "target": "end"}],
    }
    wf = await me.http.post("/api/workflows", json={"name": "nul", "definition": definition})
    assert wf.status_code == 201, wf.text
    async with worker(server.services):
        started = await me.http.post("/api/executions", json={"workflowId": wf.json()["id"]})
        done = await finished(me.http, started.json()["id"], timeout=10)
    assert done["status"] == "FAILED", done
    step = next(s for s in done["steps"] if s["nodeId"] == "t")
    assert step["status"] == "FAILED" and step["attempt"] == 1, step
    assert "NUL" in step["error"]["message"] and "$.v" in step["error"]["message"], step


async def test_a_signature_time_of_non_ascii_digits_is_a_malformed_signature(
    server: Server, me: Owner
) -> None:
    url, _ = await webhook(me)
    for stamp in ("²", "1²³"):
        # A header's bytes are read as Latin-1: b"\xb2" is "²", a digit to str.isdigit.
        header = f"t={stamp},v1=00".encode("latin-1")
        reply = await server.client().post(url, json={}, headers={"x-flowsync-signature": header})
        assert reply.status_code == 401, (stamp, reply.text)
        assert "malformed" in reply.json()["error"]["message"], reply.text


async def test_extreme_version_cursors_are_400(server: Server, me: Owner) -> None:
    wf = (await me.http.post("/api/workflows", json={"name": "v", "definition": chain(1)})).json()
    for case, value in {
        "nested": nested_cursor(5000),
        "past an int": cursor("v", 2**70),
        "a boolean": cursor("v", True),
        "negative": cursor("v", -1),
    }.items():
        reply = await me.http.get(f"/api/workflows/{wf['id']}/versions", params={"cursor": value})
        assert reply.status_code == 400, (case, reply.text)
        assert reply.json()["error"]["details"][0]["path"] == "cursor", (case, reply.text)
