"""What REST makes of a request body, found by QA: integers past what the database
holds, nulls in a PUT, bodies that are not declared as JSON, and the paths and statuses
of validation errors."""

from __future__ import annotations

import json

from tests.rest.server import Owner, Server
from tests.rest.test_routes import create, error_of
from tests.support.graphs import chain


async def test_an_expected_version_past_the_column_is_invalid_not_stale(me: Owner) -> None:
    wf = await create(me)
    url = f"/api/workflows/{wf['id']}"
    for big in (2**70, 2**31, 2**63):
        reply = await me.http.put(url, json={"name": "x", "expectedVersion": big})
        assert reply.status_code == 400, (big, reply.text)
        assert [d["path"] for d in error_of(reply)["details"]] == ["$.expectedVersion"]
    stale = await me.http.put(url, json={"name": "x", "expectedVersion": 2**31 - 1})
    assert stale.status_code == 409 and stale.json()["error"]["currentVersion"] == 1
    assert (await me.http.get(url)).json()["name"] == "wf"


async def test_null_in_a_put_clears_to_the_default_or_is_refused(me: Owner) -> None:
    made = await me.http.post(
        "/api/workflows",
        json={"name": "wf", "description": "old", "definition": chain(1), "maxConcurrency": 3},
    )
    wf = made.json()
    url = f"/api/workflows/{wf['id']}"
    kept = await me.http.put(url, json={"name": "renamed"})  # left out: kept
    assert (kept.json()["description"], kept.json()["maxConcurrency"]) == ("old", 3)
    cleared = await me.http.put(url, json={"description": None, "maxConcurrency": None})
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["description"], cleared.json()["maxConcurrency"]) == (None, None)
    for field in ("name", "definition"):
        refused = await me.http.put(url, json={field: None, "description": "new"})
        assert refused.status_code == 400, (field, refused.text)
        assert [d["path"] for d in error_of(refused)["details"]] == [f"$.{field}"]
    after = (await me.http.get(url)).json()
    assert (after["name"], after["description"], after["version"]) == ("renamed", None, 1)

    trigger = await me.http.post(
        "/api/triggers",
        json={"workflowId": wf["id"], "type": "CRON",
              "config": {"expression": "0 * * * *", "timezone": "Europe/Paris"}},
    )  # fmt: skip
    turl = f"/api/triggers/{trigger.json()['id']}"
    for field in ("workflowId", "type", "enabled"):
        refused = await me.http.put(turl, json={field: None})
        assert refused.status_code == 400, (field, refused.text)
        assert [d["path"] for d in error_of(refused)["details"]] == [f"$.{field}"]
    assert (await me.http.get(turl)).json()["enabled"] is True


async def test_a_body_not_sent_as_json_is_415(server: Server, me: Owner) -> None:
    wf = await create(me)
    body = json.dumps({"workflowId": wf["id"]}).encode()
    for headers in (
        {"content-type": "text/plain"},
        {},
        {"content-type": "application/x-www-form-urlencoded"},
    ):
        reply = await me.http.post("/api/executions", content=body, headers=headers)
        assert reply.status_code == 415, (headers, reply.text)
        error = error_of(reply)
        assert error["code"] == "unsupported_media_type" and "application/json" in error["message"]
        assert [d["path"] for d in error["details"]] == ["headers.content-type"]
    url = f"/api/workflows/{wf['id']}"
    assert (await me.http.put(url, content=b'{"name": "t"}')).status_code == 415
    assert (await me.http.get(url)).json()["name"] == "wf"  # nothing was read
    assert (await me.http.get("/api/executions")).json()["items"] == []
    for kind in ("application/json; charset=utf-8", "application/vnd.flowsync+json"):
        started = await me.http.post(
            "/api/executions", content=body, headers={"content-type": kind}
        )
        assert started.status_code == 201, (kind, started.text)
    # A route whose body is optional takes none, declared or not.
    run = (await me.http.get("/api/executions")).json()["items"][0]["id"]
    signal = await me.http.post(f"/api/executions/{run}/signals/go")
    assert signal.status_code != 415
    # Webhook ingress reads any type, as the README says.
    made = await me.http.post(
        "/api/triggers",
        json={"workflowId": wf["id"], "type": "WEBHOOK", "config": {"requireSignature": False}},
    )
    hook = await server.client().post(made.json()["webhookUrl"], content=b"plain words")
    assert hook.status_code == 202, hook.text


async def test_problems_name_body_fields_by_json_path_and_parameters_by_name(
    me: Owner,
) -> None:
    # Found by QA: body fields came back as `priority`, `from`, `kind`, `role`... beside
    # `$.maxConcurrency`, and a query parameter as `$.type` with a 422.
    wf = await create(me)
    trigger = await me.http.post(
        "/api/triggers",
        json={"workflowId": wf["id"], "type": "CRON", "config": {"expression": "0 * * * *"}},
    )
    backfill = f"/api/triggers/{trigger.json()['id']}/backfill"
    cases = [
        ("POST", "/api/executions", {"workflowId": wf["id"], "priority": 500}, {},
         400, ["$.priority"]),
        ("POST", "/api/executions", {"workflowId": wf["id"], "idempotencyKey": ""}, {},
         400, ["$.idempotencyKey"]),
        ("POST", "/api/executions", {"workflowId": wf["id"]}, {"Idempotency-Key": "k" * 256},
         400, ["headers.idempotency-key"]),
        ("POST", f"/api/workflows/{wf['id']}/executions:batch", {"inputs": [], "priority": 500},
         {}, 400, ["$.priority"]),
        ("POST", backfill, {"from": "x", "to": "y"}, {}, 400, ["$.from", "$.to"]),
        ("POST", "/api/expressions/check", {"expression": "1", "kind": "X"}, {},
         400, ["$.kind"]),
        ("POST", "/api/api-keys", {"name": "x", "role": "god"}, {}, 400, ["$.role"]),
        ("PUT", "/api/secrets/OK", {"value": ""}, {}, 400, ["$.value"]),
        ("PUT", "/api/secrets/bad-name", {"value": "v"}, {}, 400, ["name"]),
        ("GET", "/api/triggers?type=NOPE", None, {}, 400, ["type"]),
        ("GET", "/api/executions?status=NOPE", None, {}, 400, ["status"]),
        ("POST", "/api/triggers", {"workflowId": wf["id"], "type": "MANUAL", "priority": 500},
         {}, 422, ["$.priority"]),
    ]  # fmt: skip
    for method, path, body, headers, status, paths in cases:
        reply = await me.http.request(method, path, json=body, headers=headers)
        assert reply.status_code == status, (path, body, reply.text)
        assert [d["path"] for d in error_of(reply)["details"]] == paths, (path, body)
