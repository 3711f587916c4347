"""The cron scheduler in this process on a real PostgreSQL: each fire time starts one
execution, however many schedulers tick; misfire policies after a stop (a fixed clock
that jumps); broken triggers do not stop the others; status; reconnecting."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from flowsync.scheduler import scheduler as scheduler_module
from flowsync.scheduler.scheduler import QUERIES, RETRY_BROKEN, Scheduler, iso
from flowsync.services.triggers import TriggerService
from tests.support.env import Env
from tests.support.graphs import chain

T0 = datetime(2024, 5, 1, 12, 2, tzinfo=UTC)


class Clock:
    """A clock that moves only when told."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_triggers(env: Env, clock: Clock) -> TriggerService:
    return TriggerService(
        env.services.sessions, env.services.pool, max_body_bytes=1024, clock=clock
    )


@asynccontextmanager
async def scheduler(
    env: Env, clock: Callable[[], datetime], **kw: Any
) -> AsyncIterator[tuple[Scheduler, asyncpg.Connection]]:
    sched = Scheduler(env.services.url, env.services.executions, clock=clock, **kw)
    conn = await sched.connect()
    try:
        yield sched, conn
    finally:
        await conn.close()


async def cron(env: Env, clock: Clock, expression: str, **config: Any) -> uuid.UUID:
    wid = await env.create(chain(1))
    created = await make_triggers(env, clock).create(
        env.me, wid, "CRON", {"expression": expression, **config}
    )
    return created.trigger.id


async def fired(env: Env, trigger: uuid.UUID) -> list[str]:
    """The scheduled times of the executions a trigger started, in order."""
    rows = await env.services.pool.fetch(
        "SELECT trigger_data->>'scheduledAt' AS at FROM executions WHERE trigger_id = $1 "
        "ORDER BY 1",
        trigger,
    )
    return [r["at"] for r in rows]


def at(year: int, month: int, day: int, hour: int, minute: int) -> str:
    return iso(datetime(year, month, day, hour, minute, tzinfo=UTC))


async def test_a_due_trigger_fires_once_and_moves_on(env: Env) -> None:
    clock = Clock(T0)
    trigger = await cron(env, clock, "*/5 * * * *")
    async with scheduler(env, clock) as (sched, conn):
        clock.now = datetime(2024, 5, 1, 12, 4, 59, tzinfo=UTC)
        early = await sched.tick(conn)
        assert (early.claimed, early.fired) == (0, 0)
        assert early.next_due == datetime(2024, 5, 1, 12, 5, tzinfo=UTC)

        clock.now = datetime(2024, 5, 1, 12, 5, 0, 300000, tzinfo=UTC)
        tick = await sched.tick(conn)
        assert (tick.claimed, tick.fired) == (1, 1)
        assert tick.next_due == datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
        assert (await sched.tick(conn)).fired == 0

    row = await env.services.pool.fetchrow(
        "SELECT id, trigger_type, trigger_data, idempotency_key, input FROM executions "
        "WHERE trigger_id = $1",
        trigger,
    )
    assert row is not None
    assert row["trigger_type"] == "CRON"
    assert row["trigger_data"] == {"type": "CRON", "scheduledAt": "2024-05-01T12:05:00Z"}
    assert row["idempotency_key"] == f"cron:{trigger}:2024-05-01T12:05:00Z"
    assert row["input"] == {}
    firing = await env.services.pool.fetchrow(
        "SELECT fire_at, execution_id FROM trigger_firings WHERE trigger_id = $1", trigger
    )
    assert firing is not None
    assert firing["fire_at"] == datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
    assert firing["execution_id"] == row["id"]
    stored = await env.services.triggers.get(env.me, trigger)
    assert stored.next_run_at == datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
    assert stored.last_fired_at == datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
    actor = await env.services.pool.fetchval(
        "SELECT actor FROM audit_log WHERE action = 'execution.started'"
    )
    assert actor == f"trigger:{trigger}"


async def test_a_fire_time_already_recorded_starts_nothing(env: Env) -> None:
    """The (trigger, fire time) key: a scheduler that comes second inserts nothing and
    so starts nothing."""
    clock = Clock(T0)
    trigger = await cron(env, clock, "*/5 * * * *")
    await env.services.pool.execute(
        "INSERT INTO trigger_firings (trigger_id, fire_at) VALUES ($1, $2)",
        trigger,
        datetime(2024, 5, 1, 12, 5, tzinfo=UTC),
    )
    clock.now = datetime(2024, 5, 1, 12, 5, 1, tzinfo=UTC)
    async with scheduler(env, clock) as (sched, conn):
        tick = await sched.tick(conn)
    assert (tick.claimed, tick.fired) == (1, 0)
    assert await fired(env, trigger) == []
    stored = await env.services.triggers.get(env.me, trigger)
    assert stored.next_run_at == datetime(2024, 5, 1, 12, 10, tzinfo=UTC)


async def test_schedulers_racing_on_every_tick_fire_each_time_once(env: Env) -> None:
    clock = Clock(T0)
    triggers = [await cron(env, clock, "* * * * * *") for _ in range(3)]
    schedulers = [
        Scheduler(env.services.url, env.services.executions, clock=clock) for _ in range(4)
    ]
    conns = [await s.connect() for s in schedulers]
    try:
        for second in range(1, 21):
            clock.now = T0 + timedelta(seconds=second, milliseconds=5)
            ticks = await asyncio.gather(
                *(s.tick(c) for s, c in zip(schedulers, conns, strict=True))
            )
            assert sum(t.fired for t in ticks) == len(triggers)
    finally:
        for conn in conns:
            await conn.close()
    expected = [iso(T0 + timedelta(seconds=s)) for s in range(1, 21)]
    for trigger in triggers:
        assert await fired(env, trigger) == expected


async def test_more_due_triggers_than_a_batch_all_fire(env: Env) -> None:
    clock = Clock(T0)
    triggers = [await cron(env, clock, "*/5 * * * *") for _ in range(5)]
    clock.now = datetime(2024, 5, 1, 12, 5, 1, tzinfo=UTC)
    async with scheduler(env, clock, batch=2) as (sched, conn):
        claimed = [(await sched.tick(conn)).claimed for _ in range(4)]
        assert claimed == [2, 2, 1, 0]
        assert sched._delay(await sched.tick(conn)) > 0
    for trigger in triggers:
        assert await fired(env, trigger) == ["2024-05-01T12:05:00Z"]


async def test_misfire_policies_after_a_stop(env: Env) -> None:
    clock = Clock(datetime(2024, 5, 1, 11, 59, 30, tzinfo=UTC))
    policies = {
        "skip": await cron(env, clock, "* * * * *", misfire={"policy": "skip"}),
        "catch_up": await cron(
            env, clock, "* * * * *", misfire={"policy": "catch_up", "maxCatchUp": 3}
        ),
        "fire_once": await cron(env, clock, "* * * * *", misfire={"policy": "fire_once"}),
        "default": await cron(env, clock, "* * * * *"),
    }
    async with scheduler(env, clock, misfire_grace_seconds=60) as (sched, conn):
        clock.now = datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC)
        assert (await sched.tick(conn)).fired == 4  # 12:00 on time for everyone
        # The scheduler stops; it is back an hour later. 12:01 … 12:59 were missed,
        # 13:00 is within the grace.
        clock.now = datetime(2024, 5, 1, 13, 0, 20, tzinfo=UTC)
        await sched.tick(conn)
    noon, one = at(2024, 5, 1, 12, 0), at(2024, 5, 1, 13, 0)
    assert await fired(env, policies["skip"]) == [noon, one]
    assert await fired(env, policies["catch_up"]) == [
        noon,
        at(2024, 5, 1, 12, 57),
        at(2024, 5, 1, 12, 58),
        at(2024, 5, 1, 12, 59),
        one,
    ]
    assert await fired(env, policies["fire_once"]) == [noon, at(2024, 5, 1, 12, 59), one]
    assert await fired(env, policies["default"]) == [noon, at(2024, 5, 1, 12, 59), one]
    for trigger in policies.values():
        stored = await env.services.triggers.get(env.me, trigger)
        assert stored.next_run_at == datetime(2024, 5, 1, 13, 1, tzinfo=UTC)
        assert stored.last_fired_at == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


async def test_broken_triggers_do_not_stop_the_others(env: Env) -> None:
    clock = Clock(T0)
    gone = await cron(env, clock, "*/5 * * * *")
    broken = await cron(env, clock, "*/5 * * * *")
    healthy = await cron(env, clock, "*/5 * * * *")
    # The workflow is deleted under an enabled trigger (a delete racing a tick), and a
    # config is damaged behind the service's back.
    await env.services.pool.execute(
        "UPDATE workflows SET deleted_at = now() WHERE id = "
        "(SELECT workflow_id FROM triggers WHERE id = $1)",
        gone,
    )
    await env.services.pool.execute(
        """UPDATE triggers SET config = '{"expression": "bad"}' WHERE id = $1""", broken
    )
    clock.now = datetime(2024, 5, 1, 12, 5, 1, tzinfo=UTC)
    async with scheduler(env, clock) as (sched, conn):
        tick = await sched.tick(conn)
    assert (tick.claimed, tick.fired) == (3, 1)
    assert await fired(env, healthy) == ["2024-05-01T12:05:00Z"]
    assert await fired(env, gone) == []
    rows = await env.services.pool.fetch(
        "SELECT id, next_run_at FROM triggers WHERE id = ANY($1::uuid[])", [gone, broken]
    )
    next_runs = {r["id"]: r["next_run_at"] for r in rows}
    assert next_runs[gone] == datetime(2024, 5, 1, 12, 10, tzinfo=UTC)  # moved on
    assert next_runs[broken] is None  # paused until it is updated
    assert await env.services.pool.fetchval("SELECT count(*) FROM trigger_firings") == 1


async def test_a_bug_in_one_trigger_does_not_stop_the_others(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by QA: any error but FlowSync's in one trigger's firing rolled the whole
    tick back, and every retry met it again: no cron trigger of any owner fired. Now
    that trigger is logged and tried again a minute later; the others fire."""
    clock = Clock(T0)
    healthy = await cron(env, clock, "*/5 * * * *")
    buggy = await cron(env, clock, "*/7 * * * *")
    real = scheduler_module.due_firings

    def failing(schedule: Any, *args: Any, **kwargs: Any) -> Any:
        if schedule.expression == "*/7 * * * *":
            raise RuntimeError("a bug in working out the fire times")
        return real(schedule, *args, **kwargs)

    monkeypatch.setattr(scheduler_module, "due_firings", failing)
    clock.now = datetime(2024, 5, 1, 12, 7, 1, tzinfo=UTC)
    async with scheduler(env, clock) as (sched, conn):
        tick = await sched.tick(conn)
        assert (tick.claimed, tick.fired) == (2, 1)
        assert await fired(env, healthy) == [at(2024, 5, 1, 12, 5)]
        assert await fired(env, buggy) == []
        assert any(str(buggy) in r.getMessage() and r.exc_info for r in caplog.records), caplog.text
        next_run = await env.services.pool.fetchval(
            "SELECT next_run_at FROM triggers WHERE id = $1", buggy
        )
        assert next_run == clock.now + RETRY_BROKEN
        # Tried again a minute later (the bug still there): logged again, no tight loop
        # of ticks meanwhile (the next one is due at the retry).
        quiet = await sched.tick(conn)
        assert quiet.claimed == 0 and sched._delay(quiet) >= 0.5  # not the 20 ms of a due one
        clock.now += RETRY_BROKEN + timedelta(seconds=1)
        assert (await sched.tick(conn)).claimed == 1
        assert await fired(env, buggy) == []
        # Once the bug is gone it fires at its next time (the times it failed at are
        # dropped, as a schedule that no longer parses drops them).
        monkeypatch.setattr(scheduler_module, "due_firings", real)
        clock.now = datetime(2024, 5, 1, 12, 14, 1, tzinfo=UTC)
        await sched.tick(conn)
        assert await fired(env, buggy) == [at(2024, 5, 1, 12, 14)]


async def test_a_repeated_hour_does_not_stop_the_tick(env: Env) -> None:
    # Found by QA: every minute of 01:xx in New York, ticked inside the repeated 01:xx
    # (clocks fall back at 06:00 UTC). Working out its next time raised AssertionError,
    # which failed the whole tick: no trigger it held fired until the hour was over.
    clock = Clock(datetime(2026, 11, 1, 5, 58, 30, tzinfo=UTC))
    nightly = await cron(env, clock, "0-59 1 * * *", timezone="America/New_York")
    other = await cron(env, clock, "* * * * *")
    clock.now = datetime(2026, 11, 1, 6, 0, 10, tzinfo=UTC)
    async with scheduler(env, clock) as (sched, conn):
        tick = await sched.tick(conn)
    assert tick.claimed == 2
    assert await fired(env, nightly) == [at(2026, 11, 1, 5, 59)]
    assert await fired(env, other) == [at(2026, 11, 1, 5, 59), at(2026, 11, 1, 6, 0)]
    next_run = await env.services.pool.fetchval(
        "SELECT next_run_at FROM triggers WHERE id = $1", nightly
    )
    assert next_run == datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # past the second 01:xx


async def test_prune_forgets_old_firings_only(env: Env) -> None:
    clock = Clock(T0)
    trigger = await cron(env, clock, "*/5 * * * *")
    for days in (10, 8, 1):
        await env.services.pool.execute(
            "INSERT INTO trigger_firings (trigger_id, fire_at) VALUES ($1, $2)",
            trigger,
            T0 - timedelta(days=days),
        )
    async with scheduler(env, clock, history_hours=24 * 7) as (sched, conn):
        assert await sched.prune(conn) == 2
    assert await env.services.pool.fetchval("SELECT count(*) FROM trigger_firings") == 1


async def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_status_shows_the_running_scheduler_and_the_newest_firings(env: Env) -> None:
    real = Clock(datetime.now(UTC))
    trigger = await cron(env, real, "* * * * * *")
    sched = Scheduler(env.services.url, env.services.executions, scheduler_id="test-sched")
    task = asyncio.create_task(sched.run())
    try:

        async def fired_twice() -> Any:
            status = await env.services.triggers.scheduler_status(env.me)
            return status if len(status.last_firings) >= 2 else None

        status = await wait_for(fired_twice, 10, "two firings")
        [info] = status.schedulers
        assert info.id == "test-sched" and not info.stalled and status.running == 1
        assert info.last_tick_at is not None
        assert status.checked_at - info.last_tick_at < timedelta(seconds=2)
        assert status.enabled_triggers == 1 and status.due_triggers == 0
        assert status.next_run_at is not None and status.next_run_at > info.last_tick_at
        newest, older = status.last_firings[:2]
        assert newest.trigger_id == trigger and newest.scheduled_at > older.scheduled_at
        assert newest.execution_id is not None
        assert timedelta(0) <= newest.fired_at - newest.scheduled_at < timedelta(seconds=2)

        # Another owner sees the scheduler, but none of these triggers or firings.
        other = await env.services.api_keys.ensure_owner(f"test:{uuid.uuid4()}")
        from flowsync.services.principal import Principal

        theirs = await env.services.triggers.scheduler_status(Principal(other, "x"))
        assert len(theirs.schedulers) == 1 and theirs.last_firings == []
        assert theirs.enabled_triggers == 0
    finally:
        sched.stop()
        await task
    after = await env.services.triggers.scheduler_status(env.me)
    assert after.schedulers == [] and after.running == 0


async def test_the_loop_reconnects_after_its_connection_is_killed(env: Env) -> None:
    real = Clock(datetime.now(UTC))
    trigger = await cron(env, real, "* * * * * *")
    sched = Scheduler(env.services.url, env.services.executions, scheduler_id="doomed")
    task = asyncio.create_task(sched.run())
    try:

        async def count() -> int:
            return len(await fired(env, trigger))

        await wait_for(count, 10, "a first firing")
        killed = await env.services.pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1",
            sched.application_name,
        )
        assert killed == 1
        before = await count()

        async def more() -> bool:
            return await count() >= before + 2

        await wait_for(more, 10, "firings after the reconnect")
    finally:
        sched.stop()
        await task
    times = await fired(env, trigger)
    assert len(times) == len(set(times))


async def test_the_claim_is_an_index_ordered_limit_over_ix_triggers_due(env: Env) -> None:
    """Stack notes: a claim planned from the statistics of a table analyzed while empty
    can become a scan and sort of every trigger."""
    await env.services.pool.execute("ANALYZE triggers")
    clock = Clock(T0)
    async with scheduler(env, clock) as (_sched, conn):
        plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + QUERIES["claim_due"], T0, 100)
        due = await conn.fetchval("EXPLAIN (FORMAT JSON) " + QUERIES["next_due"])
    for tree in (plan, due):
        scans = list(_scans(tree if isinstance(tree, list) else json.loads(tree)))
        assert [(node, index) for node, relation, index in scans if relation == "triggers"] in (
            [("Index Scan", "ix_triggers_due")],
            [("Index Only Scan", "ix_triggers_due")],
        ), scans


def _scans(node: object) -> Iterator[tuple[str, str | None, str | None]]:
    """(node type, relation, index) of every scan in an EXPLAIN (FORMAT JSON) tree."""
    if isinstance(node, list):
        for item in node:
            yield from _scans(item)
    elif isinstance(node, dict):
        if "Relation Name" in node:
            yield node["Node Type"], node["Relation Name"], node.get("Index Name")
        for value in node.values():
            yield from _scans(value)
