"""Webhook ingress in the service layer, on a real PostgreSQL: signatures (good, bad,
stale, future, missing), redeliveries, size limits, unknown and disabled triggers, body
parsing, and synchronous replies with an in-process worker (the real `webhook_response`
handler) and their timeout."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from flowsync.errors import (
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    WebhookReplayed,
)
from flowsync.services.triggers import TriggerUpdate
from flowsync.services.webhooks import (
    WebhookResult,
    WebhookService,
    sign,
    sign_v2,
)
from tests.support.env import Env
from tests.support.graphs import chain

JSON = {"content-type": "application/json"}


async def webhook(env: Env, definition: Any = None, **config: Any) -> tuple[uuid.UUID, str]:
    """A workflow and a webhook trigger of it: (trigger id, secret)."""
    wid = await env.create(definition or chain(1))
    created = await env.services.triggers.create(env.me, wid, "WEBHOOK", config)
    assert created.secret is not None
    return created.trigger.id, created.secret


# A signature is accepted once: each delivery a test signs gets a timestamp of its own
# (in the past), as a sender that signs every delivery would send: a count going up as
# the clock does, so never the same t twice within 200 signatures.
_AGO = itertools.count(1)


def signed(
    secret: str, body: bytes, *, skew: int | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    stamp = int(time.time()) + (next(_AGO) % 200 - 200 if skew is None else skew)
    return {**JSON, "X-FlowSync-Signature": sign(secret, body, stamp), **(extra or {})}


async def deliver(
    env: Env,
    trigger: object,
    body: bytes,
    headers: dict[str, str],
    query: str = "",
) -> WebhookResult:
    return await env.services.webhooks.receive(trigger, body, headers, query)


async def executions(env: Env) -> int:
    return int(await env.services.pool.fetchval("SELECT count(*) FROM executions"))


async def test_a_signed_delivery_starts_the_workflow_with_the_trigger_data(env: Env) -> None:
    trigger, secret = await webhook(env)
    body = b'{"order": 42, "items": ["a", "b"]}'
    headers = signed(
        secret, body, extra={"Authorization": "Bearer x", "Cookie": "s=1", "X-Delivery": "d-1"}
    )
    result = await deliver(env, trigger, body, headers, "source=shop")
    assert result.status == 202 and result.created and not result.responded
    assert result.body == {"executionId": str(result.execution_id)}
    execution = await env.services.executions.get(env.me, result.execution_id)
    assert execution.trigger_type == "WEBHOOK" and execution.trigger_id == trigger
    assert execution.input == {"order": 42, "items": ["a", "b"]}  # the body, by default
    # v1 signs the body alone: the workflow reads no header and no query (unsigned).
    assert execution.trigger_data == {
        "type": "WEBHOOK",
        "headers": {},
        "query": {},
        "body": {"order": 42, "items": ["a", "b"]},
    }
    assert (await env.services.triggers.get(env.me, trigger)).last_fired_at is not None
    actor = await env.services.pool.fetchval(
        "SELECT actor FROM audit_log WHERE action = 'execution.started' AND entity_id = $1",
        str(result.execution_id),
    )
    assert actor == f"webhook:{trigger}"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "requires a signature"),
        ("", "requires a signature"),
        ("garbage", "malformed"),
        ("t=123", "malformed"),
        ("v1=abcd", "malformed"),
        ("t=soon,v1=abcd", "malformed"),
        ("WRONG_SECRET", "does not match"),
        ("TAMPERED", "does not match"),
        ("STALE", "seconds old"),
        ("FUTURE", "in the future"),
    ],
)
async def test_bad_signatures_are_refused_with_a_clear_message(
    env: Env, header: str | None, message: str
) -> None:
    trigger, secret = await webhook(env)
    body = b'{"a": 1}'
    now = int(time.time())
    value = {
        "WRONG_SECRET": sign("whsec_someone_else", body, now),
        "TAMPERED": sign(secret, b'{"a": 2}', now),
        "STALE": sign(secret, body, now - 301),
        # Well past the tolerance (300 s): the server reads its clock a moment later,
        # which may be the next second (now + 301 was then 300 s ahead, and accepted).
        "FUTURE": sign(secret, body, now + 330),
    }.get(header or "", header)
    headers = dict(JSON) if value is None else {**JSON, "X-FlowSync-Signature": value}
    with pytest.raises(Unauthenticated) as caught:
        await deliver(env, trigger, body, headers)
    assert caught.value.status == 401
    assert message in caught.value.message
    assert await executions(env) == 0


async def test_signatures_within_five_minutes_either_way_are_accepted(env: Env) -> None:
    trigger, secret = await webhook(env)
    body = b"{}"
    for skew in (-290, 290):
        result = await deliver(env, trigger, body, signed(secret, body, skew=skew))
        assert result.status == 202
    # Several v1 values (a sender mid-rotation): one that matches is enough.
    stamp = int(time.time()) - 1
    good = sign(secret, body, stamp).split(",")[1]
    header = f"t={stamp},v1={'0' * 64},{good}"
    result = await deliver(env, trigger, body, {**JSON, "x-flowsync-signature": header})
    assert result.status == 202 and await executions(env) == 3


async def test_after_rotation_only_the_new_secret_signs(env: Env) -> None:
    trigger, old = await webhook(env)
    rotated = await env.services.triggers.rotate_secret(env.me, trigger)
    assert rotated.secret is not None
    body = b'{"x": true}'
    with pytest.raises(Unauthenticated):
        await deliver(env, trigger, body, signed(old, body))
    assert (await deliver(env, trigger, body, signed(rotated.secret, body))).status == 202


async def test_unsigned_deliveries_when_no_signature_is_required(env: Env) -> None:
    trigger, _ = await webhook(env, requireSignature=False)
    result = await deliver(env, trigger, b'{"free": 1}', dict(JSON))
    assert result.status == 202


async def test_the_same_delivery_twice_starts_one_run(env: Env) -> None:
    trigger, secret = await webhook(env)
    body = b'{"event": "paid"}'
    first = await deliver(
        env, trigger, body, signed(secret, body, extra={"Idempotency-Key": "e-1"})
    )
    again = await deliver(
        env, trigger, body, signed(secret, body, extra={"idempotency-key": "e-1"})
    )
    assert first.created and not again.created
    assert again.status == 202 and again.execution_id == first.execution_id
    other = await deliver(
        env, trigger, body, signed(secret, body, extra={"Idempotency-Key": "e-2"})
    )
    assert other.created and other.execution_id != first.execution_id
    assert await executions(env) == 2


async def test_concurrent_redeliveries_start_one_run(env: Env) -> None:
    trigger, secret = await webhook(env)
    body = b'{"event": "paid"}'
    key = "k" * 300  # longer than an execution key: hashed, still deduped
    results = await asyncio.gather(
        *(deliver(env, trigger, body, signed(secret, body, extra={"Idempotency-Key": key}))
          for _ in range(6))
    )  # fmt: skip
    assert len({r.execution_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await executions(env) == 1


async def test_without_a_key_every_delivery_is_a_new_run(env: Env) -> None:
    trigger, secret = await webhook(env)
    body = b"{}"
    for _ in range(2):
        await deliver(env, trigger, body, signed(secret, body, extra={"Idempotency-Key": " "}))
    assert await executions(env) == 2


async def test_a_body_over_the_limit_is_refused_before_the_signature(env: Env) -> None:
    trigger, secret = await webhook(env, maxBodyBytes=100)
    at_limit = b'"' + b"x" * 98 + b'"'
    assert (await deliver(env, trigger, at_limit, signed(secret, at_limit))).status == 202
    with pytest.raises(PayloadTooLarge) as caught:
        await deliver(env, trigger, at_limit + b" ", {})  # unsigned: 413 all the same
    assert caught.value.status == 413
    assert await executions(env) == 1


async def test_unknown_disabled_and_other_triggers_are_not_found(env: Env) -> None:
    trigger, secret = await webhook(env)
    wid = await env.create(chain(1))
    manual = (await env.services.triggers.create(env.me, wid, "MANUAL")).trigger.id
    cron = (
        await env.services.triggers.create(env.me, wid, "CRON", {"expression": "0 0 * * *"})
    ).trigger.id
    body = b"{}"
    for target in (uuid.uuid4(), "not-a-uuid", manual, cron):
        with pytest.raises(NotFound) as caught:
            await deliver(env, target, body, signed(secret, body))
        assert caught.value.status == 404
    await env.services.triggers.update(env.me, trigger, TriggerUpdate(enabled=False))
    with pytest.raises(NotFound):
        await deliver(env, trigger, body, signed(secret, body))
    await env.services.triggers.update(env.me, trigger, TriggerUpdate(enabled=True))
    assert (await deliver(env, trigger, body, signed(secret, body))).status == 202
    hook_wid = (await env.services.triggers.get(env.me, trigger)).workflow_id
    await env.services.workflows.delete(env.me, hook_wid)
    with pytest.raises(NotFound):  # a trigger of a deleted workflow stays off
        await env.services.triggers.update(env.me, trigger, TriggerUpdate(enabled=True))
    await env.services.pool.execute("UPDATE triggers SET enabled = true WHERE id = $1", trigger)
    with pytest.raises(NotFound):  # enabled behind the service's back: still not found
        await deliver(env, trigger, body, signed(secret, body))


@pytest.mark.parametrize(
    ("content_type", "raw", "expected"),
    [
        ("application/json; charset=utf-8", b'{"a": [1, 2]}', {"a": [1, 2]}),
        ("application/vnd.shop+json", b"[1, 2]", [1, 2]),
        ("text/plain", b"hello \xc3\xa9", "hello é"),
        (None, b"<xml/>", "<xml/>"),
        (
            "application/x-www-form-urlencoded",
            b"a=1&b=&a=2&c=x+y",
            {"a": ["1", "2"], "b": "", "c": "x y"},
        ),
        ("application/json", b"", None),
    ],
)
async def test_bodies_are_parsed_by_content_type(
    env: Env, content_type: str | None, raw: bytes, expected: Any
) -> None:
    trigger, _ = await webhook(env, requireSignature=False)
    headers = {} if content_type is None else {"Content-Type": content_type}
    result = await deliver(env, trigger, raw, headers)
    execution = await env.services.executions.get(env.me, result.execution_id)
    assert execution.trigger_data["body"] == expected


@pytest.mark.parametrize("encoding", ["gzip", "br", "GZIP ", "deflate, gzip"])
async def test_a_compressed_body_is_415_naming_the_header(env: Env, encoding: str) -> None:
    # Found by QA: a gzipped JSON delivery was parsed as it came and refused as "not
    # valid JSON", naming neither Content-Encoding nor the fix.
    trigger, secret = await webhook(env)
    body = gzip.compress(b'{"order": 1}')
    headers = signed(secret, body, extra={"Content-Type": "application/json"})
    with pytest.raises(UnsupportedMediaType) as caught:
        await deliver(env, trigger, body, {**headers, "Content-Encoding": encoding})
    assert caught.value.status == 415
    assert [p.path for p in caught.value.details] == ["headers.content-encoding"]
    assert "send it uncompressed" in caught.value.message
    assert await executions(env) == 0
    plain = b'{"order": 1}'
    headers = signed(secret, plain, extra={"Content-Type": "application/json"})
    await deliver(env, trigger, plain, {**headers, "Content-Encoding": "identity"})
    assert await executions(env) == 1


async def test_a_repeated_query_field_keeps_every_value(env: Env) -> None:
    # Found by QA: `?tag=a&tag=b` reached the workflow as {"tag": "b"}, the first value
    # dropped without a word; a form's repeated field was already a list.
    trigger, _ = await webhook(env, requireSignature=False)
    result = await deliver(env, trigger, b"", {}, "tag=a&src=shop&tag=b&tag=&empty=")
    execution = await env.services.executions.get(env.me, result.execution_id)
    assert execution.trigger_data["query"] == {
        "tag": ["a", "b", ""], "src": "shop", "empty": ""
    }  # fmt: skip


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [("application/json", b'{"a": '), ("application/json", b"NaN"), ("text/plain", b"\xff\xfe")],
)
async def test_bodies_that_do_not_parse_are_invalid_input(
    env: Env, content_type: str, raw: bytes
) -> None:
    trigger, secret = await webhook(env)
    with pytest.raises(InvalidInput) as caught:
        await deliver(env, trigger, raw, signed(secret, raw, extra={"Content-Type": content_type}))
    assert caught.value.status == 400 and caught.value.details[0].path == "body"
    assert await executions(env) == 0


REPLY: dict[str, Any] = {
    "nodes": [
        {"id": "start", "type": "start"},
        {
            "id": "reply",
            "type": "webhook_response",
            "data": {
                "status": 201,
                "headers": {"X-Order": "{{ trigger.body.order }}"},
                "body": {"accepted": "{{ trigger.body.order }}", "via": "{{ trigger.type }}"},
            },
        },
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "reply"}, {"source": "reply", "target": "end"}],
}


async def test_a_sync_webhook_answers_with_the_webhook_response(running: Env) -> None:
    trigger, secret = await webhook(running, REPLY, mode="sync", syncTimeoutSeconds=10)
    body = b'{"order": 7}'
    headers = signed(secret, body, extra={"Idempotency-Key": "o-7"})
    result = await deliver(running, trigger, body, headers)
    assert result.responded and result.status == 201
    assert result.headers == {"X-Order": "7"}
    assert result.body == {"accepted": 7, "via": "WEBHOOK"}
    # A redelivery gets the same answer, from the same run.
    again = await deliver(
        running, trigger, body, signed(secret, body, extra={"Idempotency-Key": "o-7"})
    )
    assert (again.status, again.body, again.execution_id) == (201, result.body, result.execution_id)
    assert not again.created


async def test_a_sync_webhook_past_its_bound_answers_202_with_the_id(running: Env) -> None:
    slow = {
        "nodes": [*REPLY["nodes"], {"id": "wait", "type": "delay", "data": {"seconds": 1.5}}],
        "edges": [
            {"source": "start", "target": "wait"},
            {"source": "wait", "target": "reply"},
            {"source": "reply", "target": "end"},
        ],
    }
    trigger, secret = await webhook(running, slow, mode="sync", syncTimeoutSeconds=0.3)
    body = b'{"order": 8}'
    started = time.monotonic()
    result = await deliver(running, trigger, body, signed(secret, body))
    elapsed = time.monotonic() - started
    assert result.status == 202 and not result.responded
    assert result.body == {"executionId": str(result.execution_id), "status": "RUNNING"}
    assert 0.3 <= elapsed < 1.2
    assert (await running.wait(result.execution_id)).status == "COMPLETED"


async def test_a_sync_webhook_without_a_response_node_waits_for_the_run_to_end(
    env: Env,
) -> None:
    # No worker runs: the run does not end, so the reply is 202 at the bound.
    trigger, secret = await webhook(env, chain(2), mode="sync", syncTimeoutSeconds=0.5)
    started = time.monotonic()
    result = await deliver(env, trigger, b"{}", signed(secret, b"{}"))
    assert (result.status, result.body["status"]) == (202, "RUNNING")
    assert time.monotonic() - started >= 0.5


async def test_a_sync_webhook_whose_response_is_skipped_answers_by_the_run_s_end(
    running: Env,
) -> None:
    branching = {
        "nodes": [
            *REPLY["nodes"],
            {"id": "check", "type": "condition", "data": {"expression": "trigger.body.ok"}},
            {"id": "other", "type": "transform", "data": {"output": {"skipped": True}}},
        ],
        "edges": [
            {"source": "start", "target": "check"},
            {"source": "check", "target": "reply", "sourceHandle": "true"},
            {"source": "check", "target": "other", "sourceHandle": "false"},
            {"source": "reply", "target": "end"},
            {"source": "other", "target": "end"},
        ],
    }
    trigger, secret = await webhook(running, branching, mode="sync", syncTimeoutSeconds=10)
    started = time.monotonic()
    no = b'{"ok": false, "order": 1}'
    result = await deliver(running, trigger, no, signed(secret, no))
    assert result.status == 200 and time.monotonic() - started < 5
    assert result.body == {"executionId": str(result.execution_id), "status": "COMPLETED"}
    yes = b'{"ok": true, "order": 2}'
    assert (await deliver(running, trigger, yes, signed(secret, yes))).status == 201


async def test_a_signature_is_accepted_once(env: Env) -> None:
    trigger, secret = await webhook(env)
    body = b'{"event": "paid"}'
    headers = signed(secret, body)
    assert (await deliver(env, trigger, body, headers)).created
    # Replayed as it was, with another query or headers, or several at once: refused.
    for query, extra in (("", {}), ("a=1", {"Idempotency-Key": "new", "X-Other": "x"})):
        with pytest.raises(WebhookReplayed) as caught:
            await deliver(env, trigger, body, {**headers, **extra}, query)
        assert caught.value.status == 409 and "accepted before" in caught.value.message
    other = signed(secret, body)
    results = await asyncio.gather(
        *(deliver(env, trigger, body, other) for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, WebhookResult) for r in results) == 1
    assert all(isinstance(r, WebhookResult | WebhookReplayed) for r in results)
    assert await executions(env) == 2


async def test_remembered_signatures_expire_and_are_purged(env: Env) -> None:
    trigger, secret = await webhook(env)
    body = b"{}"
    stamp = int(time.time()) - 10
    header = {**JSON, "X-FlowSync-Signature": sign(secret, body, stamp)}
    await deliver(env, trigger, body, header)
    expires = await env.services.pool.fetchval(
        "SELECT expires_at FROM webhook_signatures WHERE trigger_id = $1", trigger
    )
    assert expires == datetime.fromtimestamp(stamp + 300, UTC)
    # Six minutes on (the signature is stale by then), a delivery purges it.
    later = WebhookService(
        env.services.pool, env.services.executions, max_body_bytes=1 << 20,
        clock=lambda: datetime.fromtimestamp(stamp + 360, UTC),
    )  # fmt: skip
    with pytest.raises(Unauthenticated, match="seconds old"):
        await later.receive(trigger, body, header, "")
    fresh = {**JSON, "X-FlowSync-Signature": sign(secret, body, stamp + 355)}
    await later.receive(trigger, body, fresh, "")
    left = await env.services.pool.fetch("SELECT expires_at FROM webhook_signatures")
    assert [r["expires_at"] for r in left] == [datetime.fromtimestamp(stamp + 655, UTC)]


async def test_v2_passes_what_it_signs_and_only_that(env: Env) -> None:
    trigger, secret = await webhook(env)
    body = b'{"n": 1}'
    vouched = {"Content-Type": "application/json", "X-Delivery": "d-1"}
    value = sign_v2(secret, body, int(time.time()) - 3, query="src=shop", headers=vouched)
    headers = {**vouched, "X-FlowSync-Signature": value, "X-Unsigned": "u", "Cookie": "c"}
    result = await deliver(env, trigger, body, headers, "src=shop")
    execution = await env.services.executions.get(env.me, result.execution_id)
    assert execution.trigger_data["headers"] == {
        "content-type": "application/json", "x-delivery": "d-1"
    }  # fmt: skip
    assert execution.trigger_data["query"] == {"src": "shop"}
    value = sign_v2(secret, body, int(time.time()) - 4, query="src=shop", headers=vouched)
    for query, changed in (("src=evil", {}), ("src=shop", {"X-Delivery": "d-2"})):
        with pytest.raises(Unauthenticated, match="v2 signature does not match"):
            await deliver(env, trigger, body, {**headers, **changed, "X-FlowSync-Signature": value},
                          query)  # fmt: skip
    with pytest.raises(Unauthenticated, match="malformed"):  # v1 and v2 at once
        await deliver(env, trigger, body, {**JSON, "X-FlowSync-Signature": value + ",v1=ab"})
