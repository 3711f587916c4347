"""The dashboard's filters through both faces: executions by the trigger that started
them, audit entries by actor; and that each reads through its index on a busy owner."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from flowsync.services.container import Services
from flowsync.services.observability import ObservabilityService
from flowsync.services.principal import Principal
from tests.behaviour.faces import FACES
from tests.rest.server import Server, new_id, serve
from tests.support.graphs import chain

DELAYED = chain(1, delay=60)


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    async with serve(db_url) as running:
        yield running


async def _webhook(server: Server, principal: Principal, workflow_id: str) -> str:
    made = await server.services.triggers.create(
        principal, workflow_id, "WEBHOOK", {"requireSignature": False}
    )
    return str(made.trigger.id)


async def _deliver(server: Server, trigger_id: str, body: Any) -> str:
    reply = await server.client().post(f"/api/webhooks/{trigger_id}", json=body)
    assert reply.status_code == 202, reply.text
    execution_id: str = reply.json()["executionId"]
    return execution_id


@pytest.mark.parametrize("name", sorted(FACES))
async def test_executions_by_trigger_and_audit_entries_by_actor(server: Server, name: str) -> None:
    owner = await server.owner()
    face = FACES[name](owner.http)
    wf = await face.create_workflow("hooked", DELAYED)
    hook = await _webhook(server, owner.principal, wf["id"])
    other_hook = await _webhook(server, owner.principal, wf["id"])
    first = await _deliver(server, hook, {"n": 1})
    manual, _ = await face.start_execution(wf["id"])
    second = await _deliver(server, hook, {"n": 2})
    elsewhere = await _deliver(server, other_hook, {"n": 3})

    assert (await face.list_executions(trigger_id=hook)).ids == [second, first]
    assert (await face.list_executions(trigger_id=other_hook)).ids == [elsewhere]
    page = await face.list_executions(trigger_id=hook, limit=1)
    assert page.ids == [second] and page.next_cursor is not None
    mixed = await face.list_executions(trigger_id=hook, workflow_id=wf["id"], status="RUNNING")
    assert set(mixed.ids) <= {first, second}
    for nothing in (new_id(), "not-a-uuid"):
        assert (await face.list_executions(trigger_id=nothing)).ids == []
    assert manual["id"] in (await face.list_executions()).ids

    by_hook = await face.audit_log(actor=f"webhook:{hook}")
    assert [(e["action"], e["entityId"]) for e in by_hook] == [
        ("execution.started", second),
        ("execution.started", first),
    ]
    everything = await face.audit_log(limit=200)
    [key_actor] = {e["actor"] for e in everything if e["action"] == "workflow.created"}
    assert key_actor.startswith("apikey:")  # the face's credential
    by_key = await face.audit_log(actor=key_actor, limit=200)
    assert [(e["action"], e["entityId"]) for e in by_key] == [
        ("execution.started", manual["id"]),
        ("workflow.created", wf["id"]),
    ]
    by_service = await face.audit_log(actor="test")  # what the test made through the service
    assert [e["action"] for e in by_service] == ["trigger.created"] * 2 + ["api_key.created"]
    assert await face.audit_log(actor=f"webhook:{new_id()}") == []

    # Another owner sees none of them, by either filter.
    theirs = FACES[name]((await server.owner()).http)
    assert (await theirs.list_executions(trigger_id=hook)).ids == []
    assert await theirs.audit_log(actor=f"webhook:{hook}") == []


def _scans(plan: Any) -> set[tuple[str, str | None]]:
    """(node type, index) of every scan in an EXPLAIN (FORMAT JSON) tree."""
    found: set[tuple[str, str | None]] = set()
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if "Scan" in node["Node Type"]:
            found.add((node["Node Type"], node.get("Index Name")))
        stack.extend(node.get("Plans", []))
    return found


async def _plan_of(services: Services, call: Any) -> set[tuple[str, str | None]]:
    """The scans of the one SELECT the service runs for `call`, as the planner makes
    them with the table's statistics."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    engine = services.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        await call()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    [(statement, parameters)] = seen
    async with services.engine.connect() as conn:
        raw = await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
        plan = raw.scalar_one()
    return _scans(json.loads(plan) if isinstance(plan, str) else plan)


async def test_both_filters_read_through_their_index_on_a_busy_owner(server: Server) -> None:
    services = server.services
    owner = await server.owner()
    principal = owner.principal
    wf = await services.workflows.create(principal, "busy", None, DELAYED)
    hook = await services.triggers.create(principal, wf.id, "WEBHOOK", {"requireSignature": False})
    busy = await services.triggers.create(principal, wf.id, "WEBHOOK", {"requireSignature": False})
    # 20,000 runs of another trigger and of no trigger, 3 of this one; 20,000 audit
    # entries of one actor, 3 of another.
    await services.pool.execute(
        """
        INSERT INTO executions (owner_id, workflow_id, workflow_version_id, version, status,
                                trigger_id, trigger_type)
        SELECT w.owner_id, w.id, v.id, 1, 'COMPLETED',
               CASE WHEN g <= 3 THEN $2::uuid WHEN g % 2 = 0 THEN $3::uuid END, 'WEBHOOK'
          FROM workflows w JOIN workflow_versions v ON v.workflow_id = w.id,
               generate_series(1, 20003) g
         WHERE w.id = $1;
        """,
        wf.id, hook.trigger.id, busy.trigger.id,
    )  # fmt: skip
    await services.pool.execute(
        """
        INSERT INTO audit_log (owner_id, actor, action, entity_type, entity_id)
        SELECT $1, CASE WHEN g <= 3 THEN 'apikey:rare' ELSE 'apikey:busy' END,
               'workflow.updated', 'workflow', g::text
          FROM generate_series(1, 20003) g
        """,
        principal.owner_id,
    )
    await services.pool.execute("ANALYZE executions; ANALYZE audit_log")

    async def by_trigger() -> None:
        page = await services.executions.list(principal, trigger_id=hook.trigger.id)
        assert len(page.items) == 3

    async def by_actor() -> None:
        audit = ObservabilityService.of(services)
        page = await audit.audit_log(principal, actor="apikey:rare")
        assert len(page.items) == 3

    executions_scans = await _plan_of(services, by_trigger)
    assert {index for _, index in executions_scans} == {"ix_executions_trigger_page"}, (
        executions_scans
    )
    audit_scans = await _plan_of(services, by_actor)
    assert {index for _, index in audit_scans} == {"ix_audit_log_actor"}, audit_scans
