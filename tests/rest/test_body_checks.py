"""What REST makes of a request body, found by QA: integers past what the database
holds, nulls in a PUT, bodies that are not declared as JSON, and the paths and statuses
of validation errors."""

from __future__ import annotations

from tests.rest.server import Owner
from tests.rest.test_routes import create, error_of


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
