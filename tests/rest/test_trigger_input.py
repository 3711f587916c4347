"""A trigger's `input`: the run a webhook or a schedule starts gets the trigger's input
template rendered over its `trigger` data (by default a webhook's body, a cron's `{}`),
so that a workflow written for manual starts runs the same from a trigger. Over real
HTTP (the webhook route and the trigger routes), with a worker where runs must end."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowsync.scheduler.scheduler import Scheduler
from tests.rest.server import Owner, Server, finished, worker
from tests.support.graphs import chain


async def hook(me: Owner, definition: Any = None, **config: Any) -> tuple[str, str]:
    """A workflow and a webhook trigger of it: (ingress URL, secret)."""
    wf = await me.http.post(
        "/api/workflows", json={"name": "hook", "definition": definition or chain(1)}
    )
    made = await me.http.post(
        "/api/triggers", json={"workflowId": wf.json()["id"], "type": "WEBHOOK", "config": config}
    )
    assert made.status_code == 201, made.text
    return made.json()["webhookUrl"], made.json()["secret"]


async def input_of(me: Owner, reply: Any) -> Any:
    assert reply.status_code in (200, 202), reply.text
    run = await me.http.get(f"/api/executions/{reply.headers['x-flowsync-execution-id']}")
    return run.json()["input"]


async def test_a_workflow_written_for_manual_starts_runs_from_a_webhook(
    server: Server, me: Owner
) -> None:
    # chain(1) reads input.n: the webhook's body is the run's input.
    url, _ = await hook(me, chain(1), requireSignature=False, mode="sync")
    async with worker(server.services):
        reply = await server.client().post(url, json={"n": 1})
    assert reply.status_code == 200, reply.text
    done = await finished(me.http, reply.json()["executionId"])
    assert (done["status"], done["input"], done["output"]) == ("COMPLETED", {"n": 1}, {"n": 2})


async def test_the_default_input_is_the_body_as_parsed(server: Server, me: Owner) -> None:
    url, _ = await hook(me, requireSignature=False)
    client = server.client()
    assert await input_of(me, await client.post(url, json={"a": [1, 2]})) == {"a": [1, 2]}
    assert await input_of(me, await client.post(url, json=[1, "x"])) == [1, "x"]
    assert await input_of(me, await client.post(url, content=b"plain words")) == "plain words"
    form = await client.post(url, data={"a": "1", "b": "2"})
    assert await input_of(me, form) == {"a": "1", "b": "2"}
    assert await input_of(me, await client.post(url)) == {}  # no body


async def test_an_input_template_reshapes_the_request(server: Server, me: Owner) -> None:
    template = {
        "n": "{{ trigger.body.order.count }}",
        "source": "{{ trigger.query.src }}",
        "delivery": "{{ trigger.headers['x-delivery'] }}",
        "note": "order {{ trigger.body.order.id }} from {{ trigger.query.src }}",
    }
    url, _ = await hook(me, chain(1), requireSignature=False, mode="sync", input=template)
    async with worker(server.services):
        reply = await server.client().post(
            url + "?src=shop", json={"order": {"id": "o-1", "count": 4}},
            headers={"X-Delivery": "d-9"},
        )  # fmt: skip
    assert reply.status_code == 200, reply.text
    done = await finished(me.http, reply.json()["executionId"])
    assert done["input"] == {
        "n": 4,
        "source": "shop",
        "delivery": "d-9",
        "note": "order o-1 from shop",
    }
    assert done["output"] == {"n": 5}
    # trigger.* is still there for the workflow to read.
    trigger = await me.http.get(f"/api/triggers/{url.rsplit('/', 1)[1]}")
    assert trigger.json()["config"]["input"] == template


async def test_a_delivery_the_template_cannot_read_is_400_and_starts_nothing(
    server: Server, me: Owner
) -> None:
    url, _ = await hook(me, requireSignature=False, input={"n": "{{ trigger.body.count }}"})
    reply = await server.client().post(url, json={"other": 1})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_input" and "$.config.input.n" in error["message"]
    assert error["details"][0]["path"] == "body"
    assert (await me.http.get("/api/executions")).json()["items"] == []


def _v1(secret: str, body: bytes) -> str:
    stamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


async def test_a_signed_trigger_s_template_reads_only_what_is_signed(
    server: Server, me: Owner
) -> None:
    # v1 signs the body alone: the query is not the workflow's to read, nor the template's.
    url, secret = await hook(
        me, input={"n": "{{ trigger.body.n }}", "src": "{{ trigger.query.src }}"}
    )
    body = b'{"n": 3}'
    reply = await server.client().post(
        url + "?src=evil", content=body,
        headers={"content-type": "application/json", "x-flowsync-signature": _v1(secret, body)},
    )  # fmt: skip
    assert reply.status_code == 400 and "src" in reply.json()["error"]["message"]
    url2, secret2 = await hook(me, input={"n": "{{ trigger.body.n }}"})
    reply = await server.client().post(
        url2 + "?src=evil", content=body,
        headers={"content-type": "application/json", "x-flowsync-signature": _v1(secret2, body)},
    )  # fmt: skip
    assert await input_of(me, reply) == {"n": 3}


BAD_TEMPLATES = [
    ("WEBHOOK", {"n": "{{ trigger.body.n + }}"}, "$.config.input.n", "invalid expression"),
    ("WEBHOOK", {"a": ["ok", "{{ input.n }}"]}, "$.config.input.a[1]", "`trigger` only"),
    ("WEBHOOK", "{{ steps.x.output }}", "$.config.input", "`trigger` only"),
    ("WEBHOOK", {"all": "{{ trigger.body.items.map(i, i * 2) }}"}, "$.config.input.all",
     "too costly"),
    ("WEBHOOK", {"n": "{{ trigger.body.n"}, "$.config.input.n", "no matching"),
    ("CRON", {"at": "{{ trigger.scheduled }}"}, "$.config.input", "fails on a firing's data"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "template", "path", "words"), BAD_TEMPLATES)
async def test_a_bad_input_template_is_refused_at_save_naming_its_path(
    me: Owner, kind: str, template: Any, path: str, words: str
) -> None:
    wf = await me.http.post("/api/workflows", json={"name": "w", "definition": chain(1)})
    config: dict[str, Any] = {"input": template}
    if kind == "CRON":
        config["expression"] = "0 * * * *"
    made = await me.http.post(
        "/api/triggers", json={"workflowId": wf.json()["id"], "type": kind, "config": config}
    )
    assert made.status_code == 422, made.text
    details = made.json()["error"]["details"]
    assert [d["path"] for d in details] == [path], details
    assert words in details[0]["message"], details


async def test_a_manual_trigger_takes_no_input_template(me: Owner) -> None:
    wf = await me.http.post("/api/workflows", json={"name": "w", "definition": chain(1)})
    made = await me.http.post(
        "/api/triggers",
        json={"workflowId": wf.json()["id"], "type": "MANUAL", "config": {"input": {}}},
    )
    assert made.status_code == 422
    assert made.json()["error"]["details"][0]["path"] == "$.config.input"


async def test_a_cron_run_gets_its_template_or_an_empty_input(server: Server, me: Owner) -> None:
    wf = await me.http.post("/api/workflows", json={"name": "w", "definition": chain(1)})
    wid = wf.json()["id"]
    made = []
    for config in (
        {"expression": "* * * * * *", "input": {"n": 10, "at": "{{ trigger.scheduledAt }}"}},
        {"expression": "* * * * * *"},
    ):
        reply = await me.http.post(
            "/api/triggers", json={"workflowId": wid, "type": "CRON", "config": config}
        )
        assert reply.status_code == 201, reply.text
        made.append(reply.json()["id"])
    now = datetime.now(UTC)
    sched = Scheduler(
        server.services.url, server.services.executions, clock=lambda: now + timedelta(seconds=1)
    )
    conn = await sched.connect()
    try:
        assert (await sched.tick(conn)).fired >= 2
    finally:
        await conn.close()
    runs = (await me.http.get("/api/executions", params={"limit": 200})).json()["items"]
    templated = [r for r in runs if r["input"] != {}]
    assert templated and all(r["input"]["n"] == 10 for r in templated)
    assert all(r["input"]["at"].endswith("Z") for r in templated)
    assert any(r["input"] == {} for r in runs)  # the trigger without a template
    by_trigger = await me.http.get("/api/executions", params={"triggerId": made[0]})
    assert {r["id"] for r in by_trigger.json()["items"]} == {r["id"] for r in templated}


async def test_a_body_too_big_for_an_input_needs_a_template(server: Server, me: Owner) -> None:
    big = {"n": 1, "blob": "x" * (1024 * 1024 + 10)}  # over a run's 1 MiB input
    plain, _ = await hook(me, requireSignature=False)
    refused = await server.client().post(plain, json=big)
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["details"][0]["path"] == "$.input"
    kept, _ = await hook(me, requireSignature=False, input={"n": "{{ trigger.body.n }}"})
    assert await input_of(me, await server.client().post(kept, json=big)) == {"n": 1}
