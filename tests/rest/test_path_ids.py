"""What REST echoes of what a caller sent is bounded, and a malformed id in the path is
a 400 naming the parameter (found by QA: a 100 KB id came back whole in a 404); so is one
in a body (`workflowId`), naming the field (found by QA: it was a 404)."""

from __future__ import annotations

import pytest

from flowsync.errors import ECHO_LIMIT
from rest_compat import routes
from rest_compat.http import ApiRoute
from tests.rest.server import Owner, Server
from tests.rest.test_routes import create, error_of

# As long as httpx sends in a URL (its limit is 64 KiB); bodies carry it too.
HUGE = "x" * 60_000
# Bigger than any message that echoes at most ECHO_LIMIT characters of a value.
SMALL_REPLY = 2_000


def id_routes() -> list[tuple[str, str]]:
    """(method, path) of every REST route with an {id} in its path."""
    found = []
    for route in routes():
        if isinstance(route, ApiRoute) and "{id}" in route.path:
            for method in sorted(route.handlers):
                if method != "HEAD":
                    found.append((method, route.path))
    return found


@pytest.mark.parametrize("value", ["not-a-uuid", "1234", HUGE])
async def test_a_malformed_path_id_is_a_400_naming_it(me: Owner, value: str) -> None:
    assert len(id_routes()) >= 20
    for method, template in id_routes():
        path = template.replace("{id}", value).replace("{version}", "1")
        path = path.replace("{name}", "go")
        reply = await me.http.request(method, path, json={})
        assert reply.status_code == 400, (method, template, reply.text[:200])
        error = error_of(reply)
        assert error["code"] == "invalid_input"
        assert [d["path"] for d in error["details"]] == ["id"], (method, template)
        assert len(reply.content) < SMALL_REPLY, (method, template)


@pytest.mark.parametrize("value", ["not-a-uuid", "1234", HUGE])
async def test_a_malformed_body_id_is_a_400_naming_it(me: Owner, value: str) -> None:
    wf = await create(me)
    trigger = await me.http.post("/api/triggers", json={"workflowId": wf["id"], "type": "MANUAL"})
    assert trigger.status_code == 201, trigger.text
    sent = [
        ("POST", "/api/executions", {"workflowId": value}),
        ("POST", "/api/triggers", {"workflowId": value, "type": "MANUAL"}),
        ("PUT", f"/api/triggers/{trigger.json()['id']}", {"workflowId": value}),
    ]
    for method, path, body in sent:
        reply = await me.http.request(method, path, json=body)
        assert reply.status_code == 400, (method, path, reply.text[:200])
        error = error_of(reply)
        assert error["code"] == "invalid_input"
        assert [d["path"] for d in error["details"]] == ["$.workflowId"], (method, path)
        assert "must be a UUID" in error["details"][0]["message"]
        assert len(reply.content) < SMALL_REPLY, (method, path)
    # Nothing was made or changed by them.
    runs = await me.http.get("/api/executions")
    assert runs.json()["items"] == []
    triggers = (await me.http.get("/api/triggers")).json()["items"]
    assert [(t["id"], t["workflowId"]) for t in triggers] == [(trigger.json()["id"], wf["id"])]
    # A well-formed id that is no one's is still a 404.
    missing = await me.http.post(
        "/api/executions", json={"workflowId": "00000000-0000-0000-0000-000000000001"}
    )
    assert missing.status_code == 404


async def test_what_404s_and_400s_echo_is_bounded(server: Server, me: Owner) -> None:
    wf = await create(me)
    anonymous = server.client()
    replies = [
        await me.http.get(f"/api/nothing/{HUGE}"),  # no such route
        await anonymous.post(f"/api/webhooks/{HUGE}", json={}),  # webhooks: 404 as documented
        await me.http.get("/api/executions", params={"status": "y" * 1000}),
        await me.http.get("/api/dead-letters", params={"includeRedriven": "y" * 1000}),
        await me.http.get("/api/observability/audit", params={"since": "y" * 1000}),
        await me.http.get("/api/workflows", params={"limit": "9" * 1000}),
        await me.http.get(f"/api/workflows/{wf['id']}/versions/{HUGE}"),
        await me.http.put(f"/api/secrets/{HUGE}", json={"value": "v"}),
        await me.http.post("/api/executions", json={"workflowId": HUGE}),
        await me.http.post("/api/workflows", json={"name": "n", "definition": {}, HUGE: 1}),
        await me.http.post(
            "/api/triggers", json={"workflowId": wf["id"], "type": HUGE, "config": {}}
        ),
        await me.http.post("/api/expressions/check", json={"expression": "1", "kind": HUGE}),
    ]
    for reply in replies:
        assert 400 <= reply.status_code < 500, reply.text[:300]
        assert len(reply.content) < SMALL_REPLY, (reply.request.url.path[:60], reply.text[:300])
        assert ("x" * (ECHO_LIMIT + 1)) not in reply.text
        assert ("y" * (ECHO_LIMIT + 1)) not in reply.text
    assert "…" in error_of(replies[0])["message"]


async def test_version_zero_is_invalid_input(me: Owner) -> None:
    wf = await create(me)
    for bad in ("0", "000"):
        reply = await me.http.get(f"/api/workflows/{wf['id']}/versions/{bad}")
        assert reply.status_code == 400
        assert [d["path"] for d in error_of(reply)["details"]] == ["version"]


async def test_a_fixed_path_answers_405_for_another_method(me: Owner) -> None:
    # Not /api/workflows/{id} with "validate" as a malformed id.
    for method in ("GET", "PUT", "DELETE"):
        reply = await me.http.request(method, "/api/workflows/validate")
        assert reply.status_code == 405, (method, reply.text)
        assert reply.headers["allow"] == "POST"
