"""The REST routes for API keys and dead letters: what only REST has to say (statuses,
the secret in one reply only, query parameters refused with their name)."""

from __future__ import annotations

from tests.rest.server import Owner, Server
from tests.rest.test_routes import error_of
from tests.support.dead_letters import failed_runs

NEW_ROUTES = [
    ("GET", "/api/api-keys"),
    ("POST", "/api/api-keys"),
    ("POST", "/api/api-keys/x/revoke"),
    ("GET", "/api/dead-letters"),
    ("GET", "/api/dead-letters/x"),
    ("POST", "/api/dead-letters/x/redrive"),
    ("POST", "/api/executions/x/retry"),
    ("GET", "/api/workers"),
]


async def test_every_new_route_wants_a_credential(server: Server) -> None:
    anonymous = server.client()
    for method, path in NEW_ROUTES:
        reply = await anonymous.request(method, path)
        assert reply.status_code == 401, (method, path)
        assert error_of(reply)["code"] == "unauthenticated"


async def test_a_keys_secret_is_in_the_reply_that_issues_it_only(me: Owner) -> None:
    made = await me.http.post("/api/api-keys", json={"name": "ci"})
    assert made.status_code == 201
    key = made.json()
    assert set(key) == {"id", "name", "prefix", "createdAt", "revokedAt", "role", "secret"}
    assert key["role"] == "admin"  # the creator's own role, by default
    listed = (await me.http.get("/api/api-keys")).json()
    assert [k["name"] for k in listed["items"]] == ["ci", "test"]
    assert key["secret"] not in str(listed)
    for body, path in (({}, "$.name"), ({"name": 3}, "$.name"), ({"name": "x", "y": 1}, "$.y")):
        refused = await me.http.post("/api/api-keys", json=body)
        assert refused.status_code == 400
        assert path in [d["path"] for d in error_of(refused)["details"]]
    assert (await me.http.post("/api/api-keys", json={"name": "  "})).status_code == 400
    assert (await me.http.get("/api/api-keys", params={"limit": 0})).status_code == 400
    assert (await me.http.delete(f"/api/api-keys/{key['id']}/revoke")).status_code == 405


async def test_dead_letter_parameters_are_checked(server: Server, me: Owner) -> None:
    await failed_runs(server.services, me.principal, 1)
    for value in ("yes", "1", ""):
        reply = await me.http.get("/api/dead-letters", params={"includeRedriven": value})
        assert reply.status_code == 400
        assert [d["path"] for d in error_of(reply)["details"]] == ["includeRedriven"]
    listed = (await me.http.get("/api/dead-letters", params={"includeRedriven": "false"})).json()
    assert len(listed["items"]) == 1
    bad_cursor = await me.http.get("/api/dead-letters", params={"cursor": "nope"})
    assert bad_cursor.status_code == 400
