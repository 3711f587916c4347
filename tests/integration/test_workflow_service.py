"""The workflow service: validation, versioning, owner scoping and audit entries."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from flowsync.db.models import AuditEntry, Workflow, WorkflowVersion
from flowsync.errors import DefinitionInvalid, InvalidInput, NotFound, PayloadTooLarge
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from flowsync.services.workflows import WorkflowService, WorkflowUpdate
from tests.conftest import new_subject

EXAMPLE = json.loads((Path(__file__).parents[1] / "fixtures" / "order-sync.json").read_text())


def simple_definition(label: str = "x") -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "shape", "type": "transform", "data": {"output": {"label": label}}},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": "start", "target": "shape"},
            {"source": "shape", "target": "end"},
        ],
    }


async def principal(services: Services) -> Principal:
    owner = await services.api_keys.ensure_owner(new_subject())
    return Principal(owner_id=owner, actor="test")


async def count(services: Services, model: Any) -> int:
    async with services.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def audit_actions(services: Services, entity_id: object) -> list[str]:
    async with services.sessions() as session:
        rows = await session.execute(
            select(AuditEntry.action)
            .where(AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.id)
        )
        return list(rows.scalars())


async def test_create_stores_version_one_and_audits(services: Services) -> None:
    me = await principal(services)
    wf = await services.workflows.create(me, "order-sync", "demo", EXAMPLE["definition"])
    assert wf.version == 1 and wf.name == "order-sync" and wf.description == "demo"
    stored = await services.workflows.get_definition(me, wf.id)
    assert stored.version == 1
    assert [n["id"] for n in stored.definition["nodes"]][:2] == ["start", "fetch"]
    assert await audit_actions(services, wf.id) == ["workflow.created"]


async def test_invalid_definition_lists_every_problem_and_stores_nothing(
    services: Services,
) -> None:
    me = await principal(services)
    broken = copy.deepcopy(EXAMPLE["definition"])
    broken["nodes"].append({"id": "orphan", "type": "transform", "data": {"output": 1}})
    broken["nodes"][2]["data"]["expression"] = "steps.fetch.output.status =="
    broken["edges"].append({"source": "merge", "target": "fetch"})  # a cycle
    with pytest.raises(DefinitionInvalid) as caught:
        await services.workflows.create(me, "broken", None, broken)
    paths = {p.path for p in caught.value.details}
    assert "$.definition.nodes[2].data.expression" in paths
    assert any(p.node_id == "orphan" for p in caught.value.details)
    assert any("cycle" in p.message.lower() for p in caught.value.details)
    assert await count(services, Workflow) == 0
    assert await count(services, AuditEntry) == 0


async def test_unknown_node_type_and_bad_name(services: Services) -> None:
    me = await principal(services)
    definition = simple_definition()
    definition["nodes"][1]["type"] = "teleport"
    with pytest.raises(DefinitionInvalid) as caught:
        await services.workflows.create(me, "  ", None, definition)
    paths = {p.path for p in caught.value.details}
    assert "$.name" in paths
    assert "$.definition.nodes[1].type" in paths


async def test_definition_over_the_size_limit_is_refused(services: Services) -> None:
    me = await principal(services)
    definition = simple_definition("y" * (1024 * 1024))
    with pytest.raises(PayloadTooLarge):
        await services.workflows.create(me, "big", None, definition)
    assert await count(services, Workflow) == 0


async def test_update_bumps_version_only_when_the_definition_changes(
    services: Services,
) -> None:
    me = await principal(services)
    wf = await services.workflows.create(me, "wf", None, simple_definition("a"))

    renamed = await services.workflows.update(me, wf.id, WorkflowUpdate(name="renamed"))
    assert (renamed.name, renamed.version) == ("renamed", 1)

    same = await services.workflows.update(
        me, wf.id, WorkflowUpdate(definition=simple_definition("a"))
    )
    assert same.version == 1

    changed = await services.workflows.update(
        me, wf.id, WorkflowUpdate(definition=simple_definition("b"), description="new")
    )
    assert changed.version == 2 and changed.description == "new"

    versions = await services.workflows.versions(me, wf.id)
    assert [v.version for v in versions] == [2, 1]
    assert versions[1].definition["nodes"][1]["data"]["output"] == {"label": "a"}
    assert versions[0].definition["nodes"][1]["data"]["output"] == {"label": "b"}
    assert await audit_actions(services, wf.id) == [
        "workflow.created",
        "workflow.updated",
        "workflow.updated",
        "workflow.updated",
    ]


async def test_invalid_update_changes_nothing(services: Services) -> None:
    me = await principal(services)
    wf = await services.workflows.create(me, "wf", None, simple_definition())
    bad = simple_definition()
    bad["edges"] = bad["edges"][:1]
    with pytest.raises(DefinitionInvalid):
        await services.workflows.update(me, wf.id, WorkflowUpdate(name="new", definition=bad))
    again = await services.workflows.get(me, wf.id)
    assert (again.name, again.version) == ("wf", 1)
    assert await count(services, WorkflowVersion) == 1


async def test_other_owners_workflows_are_not_found(services: Services) -> None:
    alice, bob = await principal(services), await principal(services)
    wf = await services.workflows.create(alice, "alice's", None, simple_definition())
    with pytest.raises(NotFound):
        await services.workflows.get(bob, wf.id)
    with pytest.raises(NotFound):
        await services.workflows.update(bob, wf.id, WorkflowUpdate(name="mine"))
    with pytest.raises(NotFound):
        await services.workflows.delete(bob, wf.id)
    with pytest.raises(NotFound):
        await services.workflows.versions(bob, wf.id)
    assert (await services.workflows.list(bob)).items == []
    # A malformed id is the same "not found", never a 500.
    with pytest.raises(NotFound):
        await services.workflows.get(alice, "not-a-uuid")
    assert (await services.workflows.get(alice, wf.id)).name == "alice's"


async def test_delete_hides_the_workflow_and_audits(services: Services) -> None:
    me = await principal(services)
    wf = await services.workflows.create(me, "wf", None, simple_definition())
    await services.workflows.delete(me, wf.id)
    with pytest.raises(NotFound):
        await services.workflows.get(me, wf.id)
    with pytest.raises(NotFound):
        await services.workflows.delete(me, wf.id)
    assert (await services.workflows.list(me)).items == []
    assert await audit_actions(services, wf.id) == ["workflow.created", "workflow.deleted"]


async def test_list_pages_with_keyset_cursors(services: Services) -> None:
    me = await principal(services)
    created = [
        (await services.workflows.create(me, f"wf{i}", None, simple_definition())).id
        for i in range(7)
    ]
    seen: list[object] = []
    cursor = None
    while True:
        page = await services.workflows.list(me, limit=3, cursor=cursor)
        seen += [w.id for w in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(created))
    with pytest.raises(InvalidInput):
        await services.workflows.list(me, cursor="garbage")
    with pytest.raises(InvalidInput):
        await services.workflows.list(me, limit=0)


def costly_definition(nodes: int = 150, terms: int = 60) -> dict[str, Any]:
    """A chain of transforms, each a long sum of input fields (each node's different):
    valid, and seconds of checking (every expression is compiled)."""
    chain = [f"t{n}" for n in range(nodes)]
    sums = [" + ".join(f"input.x{n + i}" for i in range(terms)) for n in range(nodes)]
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            *({"id": t, "type": "transform", "data": {"output": {"v": f"{{{{ {s} }}}}"}}}
              for t, s in zip(chain, sums, strict=True)),
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": a, "target": b}
            for a, b in zip(["start", *chain], [*chain, "end"], strict=True)
        ],
    }  # fmt: skip


async def pauses_while(check: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """The event loop's longest pause while `check` ran (a beat every 5 ms measures it),
    and how long `check` took."""
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    done = asyncio.Event()

    async def beat() -> None:
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(0.005)
            gaps.append(loop.time() - last)
            last = loop.time()

    beating = asyncio.create_task(beat())
    await asyncio.sleep(0.02)
    gaps.clear()
    began = loop.time()
    await check()
    took = loop.time() - began
    done.set()
    await beating
    return max(gaps), took


async def test_a_costly_definition_is_checked_without_stopping_the_event_loop(
    services: Services,
) -> None:
    """Checking (validateWorkflow) and saving a definition that takes long to check
    leaves the event loop free: the process's other requests go on meanwhile."""
    me = await principal(services)
    definition = costly_definition()
    for check in (
        lambda: WorkflowService.validate(definition),
        lambda: services.workflows.create(me, "costly", None, definition),
    ):
        pause, took = await pauses_while(check)
        assert took > 0.05, "the check was too quick to show anything"
        assert pause < took / 2, (pause, took)
