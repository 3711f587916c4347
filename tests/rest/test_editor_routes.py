"""The REST routes the editor's server side adds, over real sockets: a stale update's 409
names the current version beside its details, versions are listed and read one by one,
and bad paths, kinds and bodies are 400s naming what is wrong, never 500s."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.rest.server import Owner, Server
from tests.support.graphs import chain


async def create(me: Owner, **extra: Any) -> dict[str, Any]:
    reply = await me.http.post(
        "/api/workflows", json={"name": "w", "definition": chain(1), **extra}
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def error_of(reply: httpx.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    error: dict[str, Any] = reply.json()["error"]
    return error


async def test_a_stale_update_is_409_with_the_current_version(me: Owner) -> None:
    wf = await create(me)
    url = f"/api/workflows/{wf['id']}"
    assert (await me.http.put(url, json={"definition": chain(2)})).status_code == 200
    reply = await me.http.put(url, json={"definition": chain(3), "expectedVersion": 1})
    error = error_of(reply, 409)
    assert error["code"] == "conflict" and error["currentVersion"] == 2
    assert error["details"] == [{"path": "$.expectedVersion", "message": "expected 1, current 2"}]
    current = await me.http.get(f"{url}/versions/{error['currentVersion']}")
    assert current.status_code == 200 and current.json()["definition"] == chain(2)
    # Any other error keeps the envelope as it was.
    missing = error_of(await me.http.get(f"{url}/versions/3"), 404)
    assert set(missing) == {"code", "message", "details"}


async def test_a_version_in_the_path_is_a_whole_number(me: Owner) -> None:
    wf = await create(me)
    base = f"/api/workflows/{wf['id']}/versions"
    for bad in ("one", "1.0", "-1", "0", "00", "1e3", "%C2%B2", "9" * 19):
        error = error_of(await me.http.get(f"{base}/{bad}"), 400)
        assert [d["path"] for d in error["details"]] == ["version"], bad
    for none in ("2", "2147483648", "99999999999"):
        assert error_of(await me.http.get(f"{base}/{none}"), 404)["code"] == "not_found"
    one = await me.http.get(f"{base}/0001")
    assert one.status_code == 200 and one.json()["version"] == 1


async def test_the_versions_list_pages_and_refuses_bad_paging(me: Owner) -> None:
    wf = await create(me, versionMessage="v1")
    base = f"/api/workflows/{wf['id']}"
    for n in (2, 3):
        reply = await me.http.put(base, json={"definition": chain(n), "versionMessage": f"v{n}"})
        assert reply.status_code == 200
    page = (await me.http.get(f"{base}/versions", params={"limit": 2})).json()
    assert [v["message"] for v in page["items"]] == ["v3", "v2"]
    assert all("definition" not in v for v in page["items"])
    rest = (await me.http.get(f"{base}/versions", params={"cursor": page["nextCursor"]})).json()
    assert ([v["message"] for v in rest["items"]], rest["nextCursor"]) == (["v1"], None)
    for params, path in (({"limit": 0}, "limit"), ({"cursor": "nope"}, "cursor")):
        error = error_of(await me.http.get(f"{base}/versions", params=params), 400)
        assert [d["path"] for d in error["details"]] == [path]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"expression": "input.a", "kind": "JINJA"}, "$.kind"),
        ({"expression": "input.a"}, "$.kind"),
        ({"kind": "EXPRESSION"}, "$.expression"),
        ({"expression": 3, "kind": "EXPRESSION"}, "$.expression"),
        ({"expression": "input.a", "kind": "EXPRESSION", "node": "n"}, "$.node"),
    ],
)
async def test_a_bad_check_is_400_naming_the_field(me: Owner, body: Any, path: str) -> None:
    error = error_of(await me.http.post("/api/expressions/check", json=body), 400)
    assert path in [d["path"] for d in error["details"]]


async def test_a_version_message_is_checked(me: Owner) -> None:
    for message, status in (("x" * 501, 400), ("a\x00b", 400), (7, 400)):
        reply = await me.http.post(
            "/api/workflows", json={"name": "w", "definition": chain(1), "versionMessage": message}
        )
        error = error_of(reply, status)
        assert [d["path"] for d in error["details"]] == ["$.versionMessage"], error
    assert (await me.http.get("/api/workflows")).json()["items"] == []


async def test_the_editor_routes_want_a_credential(server: Server, me: Owner) -> None:
    wf = await create(me)
    nobody = server.client()
    for method, url, body in (
        ("GET", "/api/node-types", None),
        ("POST", "/api/expressions/check", {"expression": "input.a", "kind": "EXPRESSION"}),
        ("GET", f"/api/workflows/{wf['id']}/versions", None),
        ("GET", f"/api/workflows/{wf['id']}/versions/1", None),
    ):
        reply = await nobody.request(method, url, json=body)
        assert error_of(reply, 401)["code"] == "unauthenticated", url
