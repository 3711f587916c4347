"""The role matrix: every operation of `flowsync.roles.OPERATION_ROLES`, through each face
the face-coverage table gives it, called by a member of the team with each role. Below
the operation's role: 403 (`forbidden` in GraphQL) and nothing changed; at it: past the
role check (whatever the call's own outcome). Someone outside the team gets 404, as
before teams. One database, one server and one key per role serve every case."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from flowsync.roles import NO_CALLER, OPERATION_ROLES, Role
from flowsync.services.principal import Principal
from tests.behaviour.test_face_coverage import OPERATIONS
from tests.rest.server import Server, serve
from tests.support.graphs import chain


@dataclass(frozen=True)
class Call:
    """One operation's GraphQL document (its variables) and REST request."""

    graphql: str
    variables: dict[str, Any]
    rest: tuple[str, str, Any]  # method, path, JSON body (None: no body)


def calls(ids: dict[str, str], subject: str) -> dict[str, Call]:
    """The call of every operation that needs more than viewer, on the objects `ids`
    names (their own, or ones that do not exist: the role is checked first)."""
    w, e, t, k, d = ids["workflow"], ids["execution"], ids["trigger"], ids["key"], ids["dead"]
    definition = chain(1)
    return {
        "WorkflowService.create": Call(
            "mutation($d: JSON!) { createWorkflow(input: {name: \"m\", definition: $d}) "
            "{ __typename } }", {"d": definition},
            ("POST", "/api/workflows", {"name": "m", "definition": definition}),
        ),
        "WorkflowService.update": Call(
            "mutation($id: ID!) { updateWorkflow(id: $id, input: {name: \"r\"}) { __typename } }",
            {"id": w}, ("PUT", f"/api/workflows/{w}", {"name": "r"}),
        ),
        "WorkflowService.delete": Call(
            "mutation($id: ID!) { deleteWorkflow(id: $id) { __typename } }",
            {"id": w}, ("DELETE", f"/api/workflows/{w}", None),
        ),
        "ExecutionService.start": Call(
            "mutation($id: ID!) { startExecution(workflowId: $id, input: {n: 1}) "
            "{ __typename } }", {"id": w},
            ("POST", "/api/executions", {"workflowId": w, "input": {"n": 1}}),
        ),
        "ExecutionService.start_many": Call(
            "mutation($id: ID!) { startExecutions(workflowId: $id, inputs: [{input: {n: 1}}]) "
            "{ __typename } }", {"id": w},
            ("POST", f"/api/workflows/{w}/executions:batch", {"inputs": [{"input": {"n": 1}}]}),
        ),
        "ExecutionService.cancel": Call(
            "mutation($id: ID!) { cancelExecution(id: $id) { __typename } }",
            {"id": e}, ("POST", f"/api/executions/{e}/cancel", None),
        ),
        "ExecutionService.retry": Call(
            "mutation($id: ID!) { retryExecution(id: $id) { __typename } }",
            {"id": e}, ("POST", f"/api/executions/{e}/retry", None),
        ),
        "ExecutionService.signal_execution": Call(
            "mutation($id: ID!) { signalExecution(id: $id, name: \"go\") { __typename } }",
            {"id": e}, ("POST", f"/api/executions/{e}/signals/go", None),
        ),
        "TriggerService.create": Call(
            "mutation($id: ID!) { createTrigger(workflowId: $id, type: MANUAL) { __typename } }",
            {"id": w}, ("POST", "/api/triggers", {"workflowId": w, "type": "MANUAL"}),
        ),
        "TriggerService.update": Call(
            "mutation($id: ID!) { updateTrigger(id: $id, enabled: false) { __typename } }",
            {"id": t}, ("PUT", f"/api/triggers/{t}", {"enabled": False}),
        ),
        "TriggerService.delete": Call(
            "mutation($id: ID!) { deleteTrigger(id: $id) { __typename } }",
            {"id": t}, ("DELETE", f"/api/triggers/{t}", None),
        ),
        "TriggerService.rotate_secret": Call(
            "mutation($id: ID!) { rotateTriggerSecret(id: $id) { __typename } }",
            {"id": t}, ("POST", f"/api/triggers/{t}/rotate-secret", None),
        ),
        "BackfillService.backfill": Call(
            "mutation($id: ID!) { backfillTrigger(id: $id, from: \"2024-01-01T00:00:00Z\", "
            "to: \"2024-01-01T00:05:00Z\") { __typename } }", {"id": t},
            ("POST", f"/api/triggers/{t}/backfill",
             {"from": "2024-01-01T00:00:00Z", "to": "2024-01-01T00:05:00Z"}),
        ),
        "DeadLetterService.redrive": Call(
            "mutation($id: ID!) { redriveDeadLetter(id: $id) { __typename } }",
            {"id": d}, ("POST", f"/api/dead-letters/{d}/redrive", None),
        ),
        "ApiKeyService.revoke": Call(
            "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }",
            {"id": k}, ("POST", f"/api/api-keys/{k}/revoke", None),
        ),
        "MemberService.add": Call(
            "mutation($s: String!) { addMember(subject: $s, role: VIEWER) { __typename } }",
            {"s": subject}, ("POST", "/api/members", {"subject": subject, "role": "viewer"}),
        ),
        "MemberService.set_role": Call(
            "mutation($s: String!) { setMemberRole(subject: $s, role: EDITOR) { __typename } }",
            {"s": subject}, ("PUT", f"/api/members/{subject}", {"role": "editor"}),
        ),
        "SecretService.set": Call(
            "mutation { setSecret(name: \"TOKEN\", value: \"v\") { __typename } }", {},
            ("PUT", "/api/secrets/TOKEN", {"value": "v"}),
        ),
        "SecretService.delete": Call(
            "mutation { deleteSecret(name: \"TOKEN\") { __typename } }", {},
            ("DELETE", "/api/secrets/TOKEN", None),
        ),
        "MemberService.remove": Call(
            "mutation($s: String!) { removeMember(subject: $s) { __typename } }",
            {"s": subject}, ("DELETE", f"/api/members/{subject}", None),
        ),
    }  # fmt: skip


def test_every_operation_has_a_role_or_no_caller() -> None:
    """A new service operation must be given a role (or a reason it has no caller)."""
    assert set(OPERATIONS) == set(OPERATION_ROLES) | set(NO_CALLER)


def test_every_operation_above_viewer_has_a_call_in_the_matrix() -> None:
    ids = {k: "x" for k in ("workflow", "execution", "trigger", "key", "dead")}
    with_face = {
        op for op, role in OPERATION_ROLES.items()
        if role > Role.VIEWER and (OPERATIONS[op].graphql or OPERATIONS[op].rest)
    }  # fmt: skip
    assert set(calls(ids, "jwt:i|s")) == with_face


async def _send(client: httpx.AsyncClient, face: str, call: Call) -> tuple[int, str | None]:
    """The HTTP status and, for GraphQL, the first error's code."""
    if face == "graphql":
        reply = await client.post("/graphql", json={"query": call.graphql,
                                                     "variables": call.variables})  # fmt: skip
        errors = reply.json().get("errors") or []
        return reply.status_code, errors[0].get("extensions", {}).get("code") if errors else None
    method, path, body = call.rest
    reply = await client.request(method, path, json=body)
    return reply.status_code, reply.json()["error"]["code"] if reply.status_code >= 400 else None


async def _state(server: Server, owner: uuid.UUID) -> tuple[Any, ...]:
    """What a refused call must leave as it was: the team's audit entries (every change
    writes one), runs, workflows, triggers, members and keys."""
    row = await server.services.pool.fetchrow(
        """SELECT (SELECT count(*) FROM audit_log WHERE owner_id = $1),
                  (SELECT count(*) FROM executions WHERE owner_id = $1),
                  (SELECT string_agg(name || coalesce(deleted_at::text, ''), ',')
                     FROM workflows WHERE owner_id = $1),
                  (SELECT string_agg(enabled::text, ',') FROM triggers WHERE owner_id = $1),
                  (SELECT string_agg(subject || role, ',') FROM members WHERE owner_id = $1),
                  (SELECT count(*) FROM api_keys WHERE owner_id = $1 AND revoked_at IS NULL)""",
        owner,
    )
    return tuple(row)


async def test_the_role_matrix_over_both_faces(db_url: str) -> None:
    async with serve(db_url) as server:
        services = server.services
        owner = await services.api_keys.ensure_owner("test:matrix-team")
        admin = Principal(owner, "test", Role.ADMIN)
        keys = {
            role: server.client((await services.api_keys.create(admin, role.value, role)).secret)
            for role in Role
        }
        workflow = await services.workflows.create(admin, "w", None, chain(1))
        started = await services.executions.start(admin, workflow.id, {"n": 1})
        trigger = await services.triggers.create(admin, workflow.id, "CRON",
                                                 {"expression": "* * * * *"})  # fmt: skip
        spare = await services.api_keys.create(admin, "spare", Role.VIEWER)
        member = "jwt:https://issuer.test/|matrix-admin"
        await services.members.add(admin, member, "admin")
        ids = {
            "workflow": str(workflow.id), "execution": str(started.execution.id),
            "trigger": str(trigger.trigger.id), "key": str(spare.key.id),
            "dead": str(uuid.uuid4()),
        }  # fmt: skip
        real = calls(ids, member)

        # Below each operation's role: refused, and nothing changed.
        before = await _state(server, owner)
        refused: list[str] = []
        for operation, call in real.items():
            needed = OPERATION_ROLES[operation]
            for role in (r for r in Role if r < needed):
                for face in ("graphql", "rest"):
                    status, code = await _send(keys[role], face, call)
                    expected = (200, "forbidden") if face == "graphql" else (403, "forbidden")
                    if (status, code) != expected:
                        refused.append(f"{operation} {face} as {role.value}: {status} {code}")
        assert not refused, "\n".join(refused)
        assert await _state(server, owner) == before

        # At its role: past the check. Destructive calls go to objects that do not exist
        # (the role is checked first, so an answer other than 403 shows it passed).
        absent = calls({k: str(uuid.uuid4()) for k in ids}, "jwt:https://issuer.test/|nobody")
        passed: list[str] = []
        for operation, call in absent.items():
            role = OPERATION_ROLES[operation]
            for face in ("graphql", "rest"):
                status, code = await _send(keys[role], face, call)
                if status == 403 or code == "forbidden":
                    passed.append(f"{operation} {face} as {role.value}: {status} {code}")
        assert not passed, "\n".join(passed)

        # Reads are every member's: each REST read route the table names, as viewer.
        reads = sorted(
            OPERATIONS[op].rest or ""
            for op, role in OPERATION_ROLES.items()
            if role is Role.VIEWER and (OPERATIONS[op].rest or "").startswith("GET ")
        )
        for route in reads:
            path = route.removeprefix("GET ").replace("{version}", "1")
            path = path.replace("{id}", ids["trigger"] if "trigger" in path else ids["workflow"])
            if "/executions/" in path:
                path = path.replace(ids["workflow"], ids["execution"])
            path = path.replace("/dead-letters/" + ids["workflow"], "/dead-letters/" + ids["dead"])
            reply = await keys[Role.VIEWER].get(path)
            # The one dead letter named does not exist: 404 after the role check passed.
            assert reply.status_code == (404 if ids["dead"] in path else 200), (route, reply.text)

        # Someone outside the team, whatever their role there: 404, as before teams.
        before = await _state(server, owner)
        stranger_owner = await services.api_keys.ensure_owner("test:matrix-other")
        stranger = server.client(
            (await services.api_keys.create(Principal(stranger_owner, "test"), "x")).secret
        )
        for operation in ("WorkflowService.update", "ExecutionService.cancel",
                          "TriggerService.delete", "ApiKeyService.revoke",
                          "MemberService.remove"):  # fmt: skip
            status, code = await _send(stranger, "rest", real[operation])
            assert (status, code) == (404, "not_found"), operation
        assert await _state(server, owner) == before


async def test_members_through_both_faces(db_url: str) -> None:
    """What an admin sees managing members: the same members and refusals in both faces,
    a subject in a REST path as written or percent-encoded."""
    async with serve(db_url) as server:
        me = await server.owner()
        ann, ben = "jwt:https://issuer.test/|ann", "jwt:https://issuer.test/|ben"
        added = await me.http.post("/api/members", json={"subject": ann, "role": "admin"})
        assert added.status_code == 201 and added.json()["role"] == "admin"
        added = await me.http.post(
            "/graphql",
            json={"query": 'mutation { addMember(subject: "' + ben + '", role: VIEWER) { '
                  "__typename ... on MemberPayload { member { subject role } } } }"},
        )  # fmt: skip
        assert added.json()["data"]["addMember"]["member"] == {"subject": ben, "role": "VIEWER"}
        encoded = ben.replace(":", "%3A").replace("/", "%2F").replace("|", "%7C")
        changed = await me.http.put(f"/api/members/{encoded}", json={"role": "operator"})
        assert changed.status_code == 200 and changed.json()["role"] == "operator"
        listed = (await me.http.get("/api/members")).json()["items"]
        assert [(m["subject"], m["role"]) for m in listed] == [(ann, "admin"), (ben, "operator")]
        queried = await me.http.post("/graphql", json={"query": "{ members { subject role } }"})
        assert queried.json()["data"]["members"] == [
            {"subject": ann, "role": "ADMIN"}, {"subject": ben, "role": "OPERATOR"},
        ]  # fmt: skip

        # Refusals: clear, and nothing changes.
        last = await me.http.delete(f"/api/members/{ann}")
        assert last.status_code == 409 and "last admin" in last.json()["error"]["message"]
        demoted = await me.http.post(
            "/graphql",
            json={"query": 'mutation { setMemberRole(subject: "' + ann + '", role: EDITOR) { '
                  "__typename ... on ConflictError { message } } }"},
        )  # fmt: skip
        result = demoted.json()["data"]["setMemberRole"]
        assert result["__typename"] == "ConflictError" and ann in result["message"]
        unknown = await me.http.put(f"/api/members/{ben}", json={"role": "owner"})
        assert unknown.status_code == 400
        assert "viewer, operator, editor, admin" in unknown.json()["error"]["message"]
        key = await me.http.post("/api/api-keys", json={"name": "ci", "role": "boss"})
        assert key.status_code == 400
        assert [
            (m["subject"], m["role"]) for m in (await me.http.get("/api/members")).json()["items"]
        ] == [(ann, "admin"), (ben, "operator")]

        removed = await me.http.delete(f"/api/members/{encoded}")
        assert removed.status_code == 200 and removed.json()["subject"] == ben
