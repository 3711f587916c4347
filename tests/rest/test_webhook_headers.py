"""Tenant content on FlowSync's origin, over real HTTP: a workflow's reply headers are
refused when unsafe at save, dropped when a template renders them unsafe (the reply is
still sent), every webhook reply carries nosniff and a sandbox CSP, and triggers report
their ingress on FLOWSYNC_WEBHOOK_BASE_URL when it is set."""

from __future__ import annotations

from typing import Any

from tests.rest.server import Owner, Server, new_id, serve, worker
from tests.rest.test_webhooks_http import signature, webhook

GUARDS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox; default-src 'none'",
}


def reply_workflow(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "reply", "type": "webhook_response", "data": data},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "reply"}, {"source": "reply", "target": "end"}],
    }


def guarded(headers: Any) -> bool:
    return all(headers.get_list(name) == [value] for name, value in GUARDS.items())


ECHO = reply_workflow(
    {
        "status": 200,
        "headers": {
            "Content-Type": "{{ trigger.body.type }}",
            "X-Echo": "{{ trigger.body.echo }}",
            "X-Kept": "kept",
            "Cache-Control": "no-store",
        },
        "body": "{{ trigger.body.page }}",
    }
)


async def test_unsafe_reply_headers_are_refused_when_the_workflow_is_saved(me: Owner) -> None:
    definition = reply_workflow(
        {
            "headers": {
                "Set-Cookie": "session=1",
                "X-Order": "1\r\nSet-Cookie: s=1",
                "Content-Type": "text/html",
                "Access-Control-Allow-Origin": "*",
            }
        }
    )
    made = await me.http.post("/api/workflows", json={"name": "evil", "definition": definition})
    assert made.status_code == 422, made.text
    details = made.json()["error"]["details"]
    base = "$.definition.nodes[1].data.headers"
    assert {d["path"] for d in details} == {
        f'{base}["Set-Cookie"]',
        f'{base}["X-Order"]',
        f'{base}["Content-Type"]',
        f'{base}["Access-Control-Allow-Origin"]',
    }
    assert {d["nodeId"] for d in details} == {"reply"}
    assert (await me.http.get("/api/workflows")).json()["items"] == []


async def test_what_a_template_renders_unsafe_is_dropped_and_the_reply_still_sent(
    server: Server, me: Owner
) -> None:
    url, _ = await webhook(me, ECHO, requireSignature=False, mode="sync", syncTimeoutSeconds=10)
    page = "<script>alert(localStorage.getItem('key'))</script>"
    deliveries = [
        {"type": "text/html", "echo": "a\r\nSet-Cookie: s=1", "page": page},
        {"type": "image/svg+xml", "echo": "a\nb", "page": page},
        {"type": "application/json; charset=utf-8", "echo": "東京", "page": page},
    ]
    async with worker(server.services):
        replies = [await server.client().post(url, json=body) for body in deliveries]
    for reply in replies:
        assert reply.status_code == 200, reply.text
        assert reply.text == page  # as it was rendered, but never as a page
        assert "set-cookie" not in reply.headers and "x-echo" not in reply.headers
        assert reply.headers["x-kept"] == "kept"
        assert reply.headers["cache-control"] == "no-store"
        assert guarded(reply.headers)
    # An active type is dropped: the text is sent as text; a passive one is kept.
    kinds = [reply.headers["content-type"] for reply in replies]
    assert kinds == ["text/plain; charset=utf-8"] * 2 + ["application/json; charset=utf-8"]


async def test_a_reply_without_content_is_sent_without_a_body(server: Server, me: Owner) -> None:
    flow = reply_workflow({"status": 204, "body": {"ignored": True}})
    url, _ = await webhook(me, flow, requireSignature=False, mode="sync", syncTimeoutSeconds=10)
    async with worker(server.services):
        reply = await server.client().post(url, json={})
    assert (reply.status_code, reply.content) == (204, b"")
    assert guarded(reply.headers)


async def test_every_webhook_reply_carries_nosniff_and_a_sandbox_csp(
    server: Server, me: Owner
) -> None:
    anonymous = server.client()
    url, secret = await webhook(me)
    body = b'{"order": 1}'
    signed = {"x-flowsync-signature": signature(secret, body)}
    replies = {
        "accepted": await anonymous.post(url, content=body, headers=signed),
        "unsigned": await anonymous.post(url, content=body),
        "unknown": await anonymous.post(f"/api/webhooks/{new_id()}", json={}),
        "malformed id": await anonymous.post("/api/webhooks/not-an-id", json={}),
        "wrong method": await anonymous.get(url),
        "bad json": await anonymous.post(
            url,
            content=b"{oops",
            headers={
                "content-type": "application/json",
                "x-flowsync-signature": signature(secret, b"{oops"),
            },
        ),
    }
    statuses = {name: reply.status_code for name, reply in replies.items()}
    assert statuses == {
        "accepted": 202,
        "unsigned": 401,
        "unknown": 404,
        "malformed id": 404,
        "wrong method": 405,
        "bad json": 400,
    }
    for name, reply in replies.items():
        assert guarded(reply.headers), name


async def test_triggers_report_their_ingress_on_the_webhook_base_url(db_url: str) -> None:
    async with serve(db_url, webhook_base_url="https://hooks.example.test/") as server:
        me = await server.owner()
        wf = await me.http.post(
            "/api/workflows", json={"name": "hook", "definition": reply_workflow({})}
        )
        made = await me.http.post(
            "/api/triggers",
            json={"workflowId": wf.json()["id"], "type": "WEBHOOK", "config": {}},
        )
        trigger_id = made.json()["id"]
        expected = f"https://hooks.example.test/api/webhooks/{trigger_id}"
        assert made.json()["webhookUrl"] == expected
        path = f"/api/triggers/{trigger_id}"
        assert (await me.http.get(path)).json()["webhookUrl"] == expected
        [listed] = (await me.http.get("/api/triggers")).json()["items"]
        assert listed["webhookUrl"] == expected
        rotated = await me.http.post(f"{path}/rotate-secret")
        assert rotated.json()["webhookUrl"] == expected
        query = "query($id: ID!) { trigger(id: $id) { webhookUrl } }"
        graphql = await me.http.post(
            "/graphql", json={"query": query, "variables": {"id": trigger_id}}
        )
        assert "errors" not in graphql.json()
        assert graphql.json()["data"] == {"trigger": {"webhookUrl": expected}}
        # The API's own origin still receives deliveries (a proxy decides which host
        # reaches the path); the reply is inert there too.
        body = b"{}"
        secret = rotated.json()["secret"]
        reply = await server.client().post(
            f"/api/webhooks/{trigger_id}",
            content=body,
            headers={"x-flowsync-signature": signature(secret, body)},
        )
        assert reply.status_code == 202 and guarded(reply.headers)
