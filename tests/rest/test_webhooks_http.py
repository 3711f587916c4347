"""Webhook ingress over real HTTP: signed requests (good, bad, stale, future, missing),
the same delivery twice (one run), synchronous replies and their timeout, 413, 404. The
signature is computed here with the stdlib, from the documented format, not with the
server's helper."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from typing import Any

import httpx
import pytest

from tests.rest.server import Owner, Server, finished, new_id, serve, worker
from tests.support.graphs import chain, waiting

REPLY: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "start"},
        {
            "id": "reply",
            "type": "webhook_response",
            "data": {
                "status": 201,
                "headers": {"X-Order": "{{ trigger.body.order }}"},
                "body": {"accepted": "{{ trigger.body.order }}", "q": "{{ trigger.query.src }}"},
            },
        },
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "reply"}, {"source": "reply", "target": "end"}],
}


# A signature is accepted once: each delivery signed here gets a timestamp of its own,
# later than the one before (a count going up as the clock does: never the same t twice
# within 200 signatures, whichever second each is made in).
_AGO = itertools.count(1)


def signature(secret: str, body: bytes, skew: int | None = None) -> str:
    stamp = int(time.time()) + (next(_AGO) % 200 - 200 if skew is None else skew)
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


async def webhook(me: Owner, definition: Any = None, **config: Any) -> tuple[str, str]:
    """A workflow and a webhook trigger of it: (ingress path, secret)."""
    wf = await me.http.post(
        "/api/workflows", json={"name": "hook", "definition": definition or chain(1)}
    )
    made = await me.http.post(
        "/api/triggers", json={"workflowId": wf.json()["id"], "type": "WEBHOOK", "config": config}
    )
    assert made.status_code == 201, made.text
    return made.json()["webhookUrl"], made.json()["secret"]


async def runs(me: Owner) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await me.http.get("/api/executions")).json()["items"]
    return items


async def test_a_signed_delivery_starts_a_run_without_a_bearer_token(
    server: Server, me: Owner
) -> None:
    url, secret = await webhook(me)
    body = b'{"order": 42}'
    anonymous = server.client()
    reply = await anonymous.post(
        url + "?src=shop",
        content=body,
        headers={
            "content-type": "application/json",
            "x-flowsync-signature": signature(secret, body),
        },
    )
    assert reply.status_code == 202, reply.text
    execution_id = reply.json()["executionId"]
    assert reply.json() == {"executionId": execution_id}
    assert reply.headers["x-flowsync-execution-id"] == execution_id
    [run] = await runs(me)
    assert run["id"] == execution_id
    trigger = (await me.http.get(url.replace("/webhooks/", "/triggers/"))).json()
    assert trigger["lastFiredAt"] is not None


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (None, "requires a signature"),
        ("garbage", "malformed"),
        ("bad", "does not match"),
        ("stale", "seconds old"),
        ("future", "in the future"),
        ("other-body", "does not match"),
    ],
)
async def test_bad_signatures_are_401_and_start_nothing(
    server: Server, me: Owner, header: str | None, fragment: str
) -> None:
    url, secret = await webhook(me)
    body = b'{"order": 1}'
    value = {
        None: None,
        "garbage": "v1=abc",
        "bad": signature("whsec_wrong", body),
        "stale": signature(secret, body, skew=-330),
        "future": signature(secret, body, skew=+330),
        "other-body": signature(secret, b'{"order": 2}'),
    }[header]
    headers = {"content-type": "application/json"}
    if value is not None:
        headers["x-flowsync-signature"] = value
    reply = await server.client().post(url, content=body, headers=headers)
    assert reply.status_code == 401
    error = reply.json()["error"]
    assert error["code"] == "unauthenticated" and fragment in error["message"]
    assert await runs(me) == []


async def test_signatures_within_the_tolerance_either_way_are_accepted(
    server: Server, me: Owner
) -> None:
    url, secret = await webhook(me)
    body = b"plain text body"
    for skew in (-290, 290):
        reply = await server.client().post(
            url, content=body, headers={"x-flowsync-signature": signature(secret, body, skew)}
        )
        assert reply.status_code == 202, reply.text
    assert len(await runs(me)) == 2


async def test_the_same_delivery_twice_starts_one_run(server: Server, me: Owner) -> None:
    url, secret = await webhook(me)
    body = b'{"order": 9}'
    replies = []
    for _ in range(2):
        replies.append(
            await server.client().post(
                url,
                content=body,
                headers={
                    "content-type": "application/json",
                    "x-flowsync-signature": signature(secret, body),
                    "idempotency-key": "delivery-9",
                },
            )
        )
    first, second = replies
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert len(await runs(me)) == 1


async def test_a_replayed_delivery_is_409_and_starts_nothing(server: Server, me: Owner) -> None:
    url, secret = await webhook(me, REPLY)
    body = b'{"order": 5}'
    headers = {"content-type": "application/json", "x-flowsync-signature": signature(secret, body)}
    assert (await server.client().post(url, content=body, headers=headers)).status_code == 202
    # The captured delivery again, as it was, or with another query string and headers.
    for query, extra in (("", {}), ("?src=evil", {"x-extra": "1", "idempotency-key": "k"})):
        again = await server.client().post(url + query, content=body, headers=headers | extra)
        assert again.status_code == 409, again.text
        error = again.json()["error"]
        assert error["code"] == "webhook_replayed" and "accepted before" in error["message"]
        assert again.headers["x-content-type-options"] == "nosniff"
    assert len(await runs(me)) == 1
    # Signed again (a new t), the same delivery is accepted.
    headers["x-flowsync-signature"] = signature(secret, body)
    assert (await server.client().post(url, content=body, headers=headers)).status_code == 202


def signature_v2(secret: str, body: bytes, query: str, headers: dict[str, str]) -> str:
    """v2 from the README: lines of `v2`, t, the raw query, the Content-Type, then
    `name:value` per header named in h, an empty line, the body."""
    stamp = int(time.time()) - next(_AGO) % 200
    names = [n for n in headers if n != "content-type"]
    lines = ["v2", str(stamp), query, headers.get("content-type", "")]
    lines += [f"{n}:{headers[n]}" for n in names]
    message = ("\n".join(lines) + "\n\n").encode() + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={stamp},h={';'.join(names)},v2={digest}"


async def test_v2_signs_the_query_and_headers_a_workflow_reads(server: Server, me: Owner) -> None:
    url, secret = await webhook(me, REPLY, mode="sync", syncTimeoutSeconds=10)
    body = b'{"order": 3}'
    signed = {"content-type": "application/json", "x-shop": "s-1"}
    async with worker(server.services):
        value = signature_v2(secret, body, "src=shop&n=1", signed)
        reply = await server.client().post(
            url + "?src=shop&n=1", content=body,
            headers=signed | {"x-flowsync-signature": value, "x-unsigned": "u"},
        )  # fmt: skip
        assert reply.status_code == 201, reply.text
        assert reply.json() == {"accepted": 3, "q": "shop"}
        run_id = reply.headers["x-flowsync-execution-id"]
    data = (await server.services.executions.get(me.principal, run_id)).trigger_data
    assert data["query"] == {"src": "shop", "n": "1"}
    assert data["headers"] == signed  # the unsigned header is not passed
    # What v2 signs cannot be changed: the query, a signed header, the Content-Type.
    for query, changed in (
        ("?src=evil&n=1", signed),
        ("?src=shop&n=1", signed | {"x-shop": "s-2"}),
        ("?src=shop&n=1", signed | {"content-type": "text/plain"}),
    ):
        value = signature_v2(secret, body, "src=shop&n=1", signed)
        refused = await server.client().post(
            url + query, content=body, headers=changed | {"x-flowsync-signature": value}
        )
        assert refused.status_code == 401 and "v2 signature does not match" in refused.text


async def test_a_sync_webhook_answers_with_the_workflow_response(server: Server, me: Owner) -> None:
    url, _ = await webhook(me, REPLY, requireSignature=False, mode="sync", syncTimeoutSeconds=10)
    async with worker(server.services):
        reply = await server.client().post(url + "?src=crm", json={"order": 7})
    assert reply.status_code == 201, reply.text
    assert reply.json() == {"accepted": 7, "q": "crm"}
    assert reply.headers["x-order"] == "7"
    assert reply.headers["content-type"] == "application/json"
    done = await finished(me.http, reply.headers["x-flowsync-execution-id"])
    assert done["status"] == "COMPLETED"


async def test_a_sync_webhook_past_its_bound_answers_202_with_the_id(
    server: Server, me: Owner
) -> None:
    slow = {
        "nodes": [*REPLY["nodes"], {"id": "wait", "type": "delay", "data": {"seconds": 1.5}}],
        "edges": [
            {"source": "start", "target": "wait"},
            {"source": "wait", "target": "reply"},
            {"source": "reply", "target": "end"},
        ],
    }
    url, _ = await webhook(me, slow, requireSignature=False, mode="sync", syncTimeoutSeconds=0.3)
    async with worker(server.services):
        started = time.monotonic()
        reply = await server.client().post(url + "?src=x", json={"order": 8})
        elapsed = time.monotonic() - started
        assert reply.status_code == 202
        assert 0.3 <= elapsed < 1.4
        done = await finished(me.http, reply.json()["executionId"])
    assert done["status"] == "COMPLETED"


async def test_a_body_over_the_limit_is_413(db_url: str) -> None:
    async with serve(db_url, max_body_bytes=1024) as server:
        me = await server.owner()
        url, secret = await webhook(me, requireSignature=False)
        small_url, _ = await webhook(me, requireSignature=False, maxBodyBytes=100)
        big = b"x" * 1025
        reply = await server.client().post(
            url, content=big, headers={"x-flowsync-signature": signature(secret, big)}
        )
        assert reply.status_code == 413
        assert reply.json()["error"]["code"] == "payload_too_large"
        assert (await server.client().post(small_url, content=b"y" * 101)).status_code == 413
        assert (await server.client().post(small_url, content=b"y" * 100)).status_code == 202

        async def stream() -> Any:  # chunked, no Content-Length
            for _ in range(100):
                yield b"z" * 1024

        assert (await server.client().post(url, content=stream())).status_code == 413
        assert len(await runs(me)) == 1


async def test_unknown_disabled_and_malformed_triggers_are_404(server: Server, me: Owner) -> None:
    url, _ = await webhook(me, requireSignature=False)
    anonymous = server.client()
    for path in (f"/api/webhooks/{new_id()}", "/api/webhooks/not-a-uuid"):
        reply = await anonymous.post(path, json={})
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"
    trigger_path = url.replace("/webhooks/", "/triggers/")
    assert (await me.http.put(trigger_path, json={"enabled": False})).status_code == 200
    assert (await anonymous.post(url, json={})).status_code == 404
    # A cron trigger has no ingress either.
    wf = (await me.http.get("/api/workflows")).json()["items"][0]
    cron = await me.http.post(
        "/api/triggers",
        json={"workflowId": wf["id"], "type": "CRON", "config": {"expression": "* * * * *"}},
    )
    assert (await anonymous.post(f"/api/webhooks/{cron.json()['id']}", json={})).status_code == 404
    assert await runs(me) == []


async def test_a_malformed_json_delivery_is_400_and_other_methods_405(
    server: Server, me: Owner
) -> None:
    url, _ = await webhook(me, requireSignature=False)
    anonymous: httpx.AsyncClient = server.client()
    reply = await anonymous.post(
        url, content=b"{oops", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_input"
    assert (await anonymous.get(url)).status_code == 405
    assert await runs(me) == []


async def test_a_header_that_decides_how_a_delivery_is_read_sent_twice_is_400(
    server: Server, me: Owner
) -> None:
    """Two Content-Types (or Idempotency-Keys, or signatures) leave which one counts to
    a guess: refused, naming the header, and nothing starts. A body too deep is refused
    whichever input template the trigger has (one that does not read the body too)."""
    url, secret = await webhook(me, requireSignature=False, input={"fixed": 1})
    anonymous: httpx.AsyncClient = server.client()
    deep = b'{"a":' * 300 + b"1" + b"}" * 300
    for name, values in [
        ("content-type", ["text/plain", "application/json"]),
        ("idempotency-key", ["one", "two"]),
        ("x-flowsync-signature", [signature(secret, deep), signature(secret, deep)]),
    ]:
        reply = await anonymous.post(url, content=deep, headers=[(name, v) for v in values])
        assert reply.status_code == 400, (name, reply.text)
        assert reply.json()["error"]["details"] == [
            {"path": f"headers.{name}", "message": "sent more than once"}
        ]
    reply = await anonymous.post(url, content=deep, headers={"content-type": "application/json"})
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["details"][0]["path"] == "body"
    assert await runs(me) == []
    once = await anonymous.post(
        url, content=b'{"a": 1}', headers={"content-type": "application/json"}
    )
    assert once.status_code == 202, once.text


async def test_a_signalling_webhook_signals_the_matching_run_over_http(
    server: Server, me: Owner
) -> None:
    url, secret = await webhook(
        me, waiting("paid"),
        signal={"name": "paid", "match": "trigger.body.orderId == input.orderId"},
    )  # fmt: skip
    wid = (await me.http.get("/api/triggers")).json()["items"][0]["workflowId"]
    ids = []
    for order in (1, 2):
        started = await me.http.post(
            "/api/executions", json={"workflowId": wid, "input": {"orderId": order}}
        )
        ids.append(started.json()["id"])
    body = b'{"orderId": 2, "paid": true}'
    reply = await server.client().post(
        url, content=body,
        headers={"Content-Type": "application/json",
                 "X-FlowSync-Signature": signature(secret, body)},
    )  # fmt: skip
    assert reply.status_code == 202, reply.text
    # No worker ran yet: the run has not reached its wait, and keeps the signal.
    assert reply.json() == {"executionId": ids[1], "signal": "paid", "takenBy": None}
    body = b'{"orderId": 3}'
    missing = await server.client().post(
        url, content=body,
        headers={"Content-Type": "application/json",
                 "X-FlowSync-Signature": signature(secret, body)},
    )  # fmt: skip
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    async with worker(server.services):
        done = await finished(me.http, ids[1])
    assert done["status"] == "COMPLETED" and done["output"] == {"orderId": 2, "paid": True}
    other = (await me.http.get(f"/api/executions/{ids[0]}")).json()
    assert other["status"] == "RUNNING"
