"""The trigger service on a real PostgreSQL: create, list, read, update and delete
triggers of each type, owner isolation, audit entries, config validation that names each
field, cron next fire times with a fixed clock, and webhook secrets."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from flowsync.errors import Conflict, InvalidInput, NotFound, TriggerInvalid
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from flowsync.services.triggers import TriggerService, TriggerUpdate, webhook_url
from tests.conftest import new_subject
from tests.support.graphs import chain


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Ctx:
    services: Services
    triggers: TriggerService
    clock: Clock
    me: Principal
    other: Principal
    workflow: uuid.UUID

    async def audit(self, entity_id: object) -> list[dict[str, Any]]:
        rows = await self.services.pool.fetch(
            "SELECT actor, action, data FROM audit_log WHERE entity_type = 'trigger' "
            "AND entity_id = $1 ORDER BY id",
            str(entity_id),
        )
        return [dict(r) for r in rows]


@pytest.fixture
async def ctx(services: Services) -> AsyncIterator[Ctx]:
    me = Principal(await services.api_keys.ensure_owner(new_subject()), "test:me")
    other = Principal(await services.api_keys.ensure_owner(new_subject()), "test:other")
    workflow = await services.workflows.create(me, "wf", None, chain(1))
    clock = Clock(datetime(2024, 7, 15, 6, 0, tzinfo=UTC))
    triggers = TriggerService(
        services.sessions,
        services.pool,
        max_body_bytes=services.settings.max_body_bytes,
        clock=clock,
    )
    yield Ctx(services, triggers, clock, me, other, workflow.id)


CRON = {"expression": "0 9 * * *", "timezone": "Europe/Berlin"}


async def test_create_each_type_with_its_defaults_and_an_audit_entry(ctx: Ctx) -> None:
    manual = await ctx.triggers.create(ctx.me, ctx.workflow, "MANUAL")
    assert manual.trigger.config == {} and manual.secret is None
    assert webhook_url(manual.trigger) is None

    hook = await ctx.triggers.create(ctx.me, ctx.workflow, "webhook", {})
    assert hook.trigger.type == "WEBHOOK"
    assert hook.trigger.config == {
        "requireSignature": True,
        "mode": "async",
        "syncTimeoutSeconds": 10.0,
        "maxBodyBytes": ctx.services.settings.max_body_bytes,
    }
    assert hook.secret is not None and hook.secret.startswith("whsec_")
    assert len(hook.secret) > 40
    assert webhook_url(hook.trigger) == f"/api/webhooks/{hook.trigger.id}"
    assert hook.trigger.next_run_at is None

    cron = await ctx.triggers.create(ctx.me, ctx.workflow, "CRON", CRON)
    assert cron.trigger.config == {
        "expression": "0 9 * * *",
        "timezone": "Europe/Berlin",
        "misfire": {"policy": "fire_once"},
    }
    # 09:00 in Berlin in July is 07:00 UTC; the clock says 06:00 UTC.
    assert cron.trigger.next_run_at == datetime(2024, 7, 15, 7, 0, tzinfo=UTC)
    assert cron.trigger.last_fired_at is None and cron.trigger.enabled

    for created in (manual, hook, cron):
        [entry] = await ctx.audit(created.trigger.id)
        assert entry["action"] == "trigger.created" and entry["actor"] == "test:me"
        assert entry["data"]["type"] == created.trigger.type
        assert entry["data"]["workflowId"] == str(ctx.workflow)
    assert hook.secret not in str(await ctx.audit(hook.trigger.id))


async def test_catch_up_keeps_its_bound_and_a_disabled_cron_has_no_next_run(ctx: Ctx) -> None:
    config = {**CRON, "misfire": {"policy": "catch_up", "maxCatchUp": 3}}
    created = await ctx.triggers.create(ctx.me, ctx.workflow, "CRON", config, enabled=False)
    assert created.trigger.config["misfire"] == {"policy": "catch_up", "maxCatchUp": 3}
    assert created.trigger.next_run_at is None


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"expression": "0 25 * * *"}, "$.config.expression"),
        ({"expression": "* * *"}, "$.config.expression"),
        ({"expression": "0 0 31 2 *"}, "$.config.expression"),
        ({"expression": "0 9 * * *", "timezone": "Europe/Atlantis"}, "$.config.timezone"),
        ({"expression": "0 9 * * *", "timezone": 1}, "$.config.timezone"),
        ({"timezone": "UTC"}, "$.config.expression"),
        ({"expression": "0 9 * * *", "misfire": {"policy": "later"}}, "$.config.misfire.policy"),
        (
            {"expression": "0 9 * * *", "misfire": {"policy": "catch_up", "maxCatchUp": 0}},
            "$.config.misfire.maxCatchUp",
        ),
        ({"expression": "0 9 * * *", "every": 5}, "$.config.every"),
        (None, "$.config"),
    ],
)
async def test_bad_cron_configs_answer_422_naming_the_field(
    ctx: Ctx, config: object, path: str
) -> None:
    with pytest.raises(TriggerInvalid) as caught:
        await ctx.triggers.create(ctx.me, ctx.workflow, "CRON", config)
    assert caught.value.status == 422 and caught.value.code == "invalid_trigger"
    assert path in [p.path for p in caught.value.details], caught.value.details
    assert (await ctx.triggers.list(ctx.me)).items == []


async def test_a_bad_expression_and_time_zone_are_reported_together(ctx: Ctx) -> None:
    with pytest.raises(TriggerInvalid) as caught:
        await ctx.triggers.create(
            ctx.me, ctx.workflow, "CRON", {"expression": "soon", "timezone": "Moon/Base"}
        )
    assert {p.path for p in caught.value.details} == {
        "$.config.expression",
        "$.config.timezone",
    }


@pytest.mark.parametrize(
    ("kind", "config", "path", "message"),
    [
        ("WEBHOOK", {"syncTimeoutSeconds": 31}, "$.config.syncTimeoutSeconds", "30"),
        ("WEBHOOK", {"syncTimeoutSeconds": 0}, "$.config.syncTimeoutSeconds", "greater than 0"),
        ("WEBHOOK", {"mode": "batch"}, "$.config.mode", "'async' or 'sync', not \"batch\""),
        ("WEBHOOK", {"mode": 3}, "$.config.mode", "'async' or 'sync', not 3"),
        ("WEBHOOK", {"requireSignature": "yes"}, "$.config.requireSignature", "not a string"),
        ("WEBHOOK", {"maxBodyBytes": 10**12}, "$.config.maxBodyBytes", "at most"),
        (
            "WEBHOOK",
            {"requireSignatur": False},
            "$.config.requireSignatur",
            "did you mean 'requireSignature'",
        ),
        ("MANUAL", {"x": 1}, "$.config.x", "unknown field"),
        ("HOURLY", {}, "$.type", "must be one of"),
    ],
)
async def test_bad_configs_of_other_types_name_the_field(
    ctx: Ctx, kind: str, config: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(TriggerInvalid) as caught:
        await ctx.triggers.create(ctx.me, ctx.workflow, kind, config)
    [problem] = caught.value.details
    assert problem.path == path and message in problem.message, problem


async def test_the_workflow_must_be_the_callers_live_workflow(ctx: Ctx) -> None:
    theirs = await ctx.services.workflows.create(ctx.other, "theirs", None, chain(1))
    with pytest.raises(NotFound):
        await ctx.triggers.create(ctx.me, theirs.id, "MANUAL")
    with pytest.raises(NotFound):
        await ctx.triggers.create(ctx.me, "not-an-id", "MANUAL")
    doomed = await ctx.services.workflows.create(ctx.me, "doomed", None, chain(1))
    await ctx.services.workflows.delete(ctx.me, doomed.id)
    with pytest.raises(NotFound):
        await ctx.triggers.create(ctx.me, doomed.id, "CRON", CRON)
    created = await ctx.triggers.create(ctx.me, ctx.workflow, "MANUAL")
    with pytest.raises(NotFound):
        await ctx.triggers.update(ctx.me, created.trigger.id, TriggerUpdate(workflow_id=theirs.id))


async def test_another_owners_trigger_looks_missing(ctx: Ctx) -> None:
    hook = (await ctx.triggers.create(ctx.me, ctx.workflow, "WEBHOOK")).trigger
    for call in (
        ctx.triggers.get(ctx.other, hook.id),
        ctx.triggers.update(ctx.other, hook.id, TriggerUpdate(enabled=False)),
        ctx.triggers.delete(ctx.other, hook.id),
        ctx.triggers.rotate_secret(ctx.other, hook.id),
        ctx.triggers.reveal_secret(ctx.other, hook.id),
    ):
        with pytest.raises(NotFound) as caught:
            await call
        assert caught.value.status == 404
    with pytest.raises(NotFound):
        await ctx.triggers.get(ctx.me, uuid.uuid4())
    assert (await ctx.triggers.list(ctx.other)).items == []
    assert (await ctx.triggers.of_workflows(ctx.other, [ctx.workflow])) == {ctx.workflow: []}
    assert (await ctx.triggers.get(ctx.me, hook.id)).enabled
    assert [e["action"] for e in await ctx.audit(hook.id)] == ["trigger.created"]


async def test_list_pages_newest_first_and_filters(ctx: Ctx) -> None:
    second = await ctx.services.workflows.create(ctx.me, "second", None, chain(1))
    made = [
        (await ctx.triggers.create(ctx.me, wid, kind, config)).trigger.id
        for wid, kind, config in [
            (ctx.workflow, "MANUAL", None),
            (ctx.workflow, "WEBHOOK", None),
            (second.id, "CRON", CRON),
            (second.id, "MANUAL", None),
            (ctx.workflow, "CRON", CRON),
        ]
    ]
    seen: list[uuid.UUID] = []
    cursor = None
    for _ in range(5):
        page = await ctx.triggers.list(ctx.me, limit=2, cursor=cursor)
        seen += [t.id for t in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(made))
    crons = await ctx.triggers.list(ctx.me, type="cron")
    assert {t.id for t in crons.items} == {made[2], made[4]}
    of_second = await ctx.triggers.list(ctx.me, workflow_id=second.id)
    assert [t.id for t in of_second.items] == [made[3], made[2]]
    assert (await ctx.triggers.list(ctx.me, workflow_id="nope")).items == []
    grouped = await ctx.triggers.of_workflows(ctx.me, [ctx.workflow, second.id])
    assert [t.id for t in grouped[second.id]] == [made[3], made[2]]
    # A filter is a parameter, not a trigger: malformed (400), naming it.
    with pytest.raises(InvalidInput) as bad_filter:
        await ctx.triggers.list(ctx.me, type="HOURLY")
    assert not isinstance(bad_filter.value, TriggerInvalid)
    assert [p.path for p in bad_filter.value.details] == ["type"]


async def test_update_reschedules_only_when_the_schedule_changes(ctx: Ctx) -> None:
    cron = (await ctx.triggers.create(ctx.me, ctx.workflow, "CRON", CRON)).trigger
    assert cron.next_run_at == datetime(2024, 7, 15, 7, tzinfo=UTC)

    # A new policy only: the next run stays.
    ctx.clock.now = datetime(2024, 7, 15, 6, 30, tzinfo=UTC)
    policy = {**CRON, "misfire": {"policy": "skip"}}
    updated = await ctx.triggers.update(ctx.me, cron.id, TriggerUpdate(config=policy))
    assert updated.config["misfire"] == {"policy": "skip"}
    assert updated.next_run_at == datetime(2024, 7, 15, 7, tzinfo=UTC)

    # A new expression or time zone: worked out again from now.
    moved = {**policy, "timezone": "America/New_York"}
    updated = await ctx.triggers.update(ctx.me, cron.id, TriggerUpdate(config=moved))
    assert updated.next_run_at == datetime(2024, 7, 15, 13, tzinfo=UTC)  # 09:00 EDT

    disabled = await ctx.triggers.update(ctx.me, cron.id, TriggerUpdate(enabled=False))
    assert not disabled.enabled and disabled.next_run_at is None
    ctx.clock.now = datetime(2024, 7, 20, 14, tzinfo=UTC)
    enabled = await ctx.triggers.update(ctx.me, cron.id, TriggerUpdate(enabled=True))
    # Re-enabled: from now on, without catching up the days it was off.
    assert enabled.enabled and enabled.next_run_at == datetime(2024, 7, 21, 13, tzinfo=UTC)

    with pytest.raises(TriggerInvalid) as caught:
        await ctx.triggers.update(ctx.me, cron.id, TriggerUpdate(type="WEBHOOK"))
    assert [p.path for p in caught.value.details] == ["$.type"]
    with pytest.raises(TriggerInvalid) as caught:
        await ctx.triggers.update(ctx.me, cron.id, TriggerUpdate(config={"expression": "x"}))
    assert [p.path for p in caught.value.details] == ["$.config.expression"]
    assert (await ctx.triggers.get(ctx.me, cron.id)).config == moved | {
        "misfire": {"policy": "skip"}
    }

    second = await ctx.services.workflows.create(ctx.me, "second", None, chain(1))
    switched = await ctx.triggers.update(ctx.me, cron.id, TriggerUpdate(workflow_id=second.id))
    assert switched.workflow_id == second.id

    entries = await ctx.audit(cron.id)
    assert [e["action"] for e in entries] == ["trigger.created"] + ["trigger.updated"] * 5
    assert [e["data"]["fields"] for e in entries[1:]] == [
        ["config"],
        ["config"],
        ["enabled"],
        ["enabled"],
        ["workflowId"],
    ]


async def test_delete_removes_the_trigger_and_audits(ctx: Ctx) -> None:
    hook = (await ctx.triggers.create(ctx.me, ctx.workflow, "WEBHOOK")).trigger
    await ctx.triggers.delete(ctx.me, hook.id)
    with pytest.raises(NotFound):
        await ctx.triggers.get(ctx.me, hook.id)
    with pytest.raises(NotFound):
        await ctx.triggers.delete(ctx.me, hook.id)
    assert [e["action"] for e in await ctx.audit(hook.id)] == [
        "trigger.created",
        "trigger.deleted",
    ]


async def test_deleting_the_workflow_disables_its_triggers(ctx: Ctx) -> None:
    cron = (await ctx.triggers.create(ctx.me, ctx.workflow, "CRON", CRON)).trigger
    await ctx.services.workflows.delete(ctx.me, ctx.workflow)
    assert not (await ctx.triggers.get(ctx.me, cron.id)).enabled
    with pytest.raises(NotFound):
        await ctx.triggers.update(ctx.me, cron.id, TriggerUpdate(enabled=True))
    # Moved to a live workflow, it may run again.
    live = await ctx.services.workflows.create(ctx.me, "live", None, chain(1))
    moved = await ctx.triggers.update(
        ctx.me, cron.id, TriggerUpdate(workflow_id=live.id, enabled=True)
    )
    assert moved.enabled and moved.next_run_at is not None


async def test_secrets_rotate_and_are_revealed_to_their_owner_with_an_audit(ctx: Ctx) -> None:
    created = await ctx.triggers.create(ctx.me, ctx.workflow, "WEBHOOK")
    assert await ctx.triggers.reveal_secret(ctx.me, created.trigger.id) == created.secret
    rotated = await ctx.triggers.rotate_secret(ctx.me, created.trigger.id)
    assert rotated.secret is not None and rotated.secret != created.secret
    assert await ctx.triggers.reveal_secret(ctx.me, created.trigger.id) == rotated.secret
    entries = await ctx.audit(created.trigger.id)
    assert [e["action"] for e in entries] == [
        "trigger.created",
        "trigger.secret_revealed",
        "trigger.secret_rotated",
        "trigger.secret_revealed",
    ]
    text = str(entries)
    assert created.secret is not None and created.secret not in text
    assert rotated.secret not in text
    manual = (await ctx.triggers.create(ctx.me, ctx.workflow, "MANUAL")).trigger
    with pytest.raises(Conflict):
        await ctx.triggers.rotate_secret(ctx.me, manual.id)
    with pytest.raises(Conflict):
        await ctx.triggers.reveal_secret(ctx.me, manual.id)


async def test_the_container_exposes_the_services(services: Services) -> None:
    assert isinstance(services.triggers, TriggerService)
    me = Principal(await services.api_keys.ensure_owner(new_subject()), "test")
    status = await services.triggers.scheduler_status(me)
    assert status.schedulers == [] and status.due_triggers == 0 and status.last_firings == []
