"""A backfill and the cron scheduler on a real PostgreSQL agree on what was fired: the
same (trigger, fire time) firing rows and idempotency keys, so neither starts a tick the
other started; the misfire policy still decides what the scheduler makes up after a
stop. And the range's fire times follow the scheduler's time-zone rules (a
daylight-saving change), bounded by the limit whatever the range."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowsync.errors import InvalidInput
from flowsync.scheduler.cron import CronSchedule
from flowsync.scheduler.scheduler import iso
from flowsync.services.backfill import BackfillService, fire_times
from tests.integration.test_triggers_scheduler import Clock, cron, fired, scheduler
from tests.support.env import Env

T0 = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)


def backfills(env: Env, clock: Clock) -> BackfillService:
    return BackfillService(env.services.pool, env.services.executions, clock=clock)


async def test_the_scheduler_and_a_backfill_never_fire_a_tick_twice(env: Env) -> None:
    clock = Clock(T0)
    trigger = await cron(env, clock, "* * * * *", misfire={"policy": "catch_up", "maxCatchUp": 2})
    async with scheduler(env, clock) as (sched, conn):
        # Down for five minutes: 12:05 is on time, and catch_up makes up the newest two
        # missed times, 12:03 and 12:04.
        clock.now = datetime(2024, 5, 1, 12, 5, 10, tzinfo=UTC)
        assert (await sched.tick(conn)).fired == 3
        assert await fired(env, trigger) == [f"2024-05-01T12:0{m}:00Z" for m in (3, 4, 5)]

        # The backfill fills in the rest and skips what the scheduler fired.
        done = await backfills(env, clock).backfill(
            env.me, trigger, "2024-05-01T12:01:00Z", "2024-05-01T12:05:00Z"
        )
        assert (done.started, done.skipped) == (2, 3)
        assert await fired(env, trigger) == [f"2024-05-01T12:0{m}:00Z" for m in range(1, 6)]

        # A backfill ahead of the scheduler: the scheduler's late tick starts nothing.
        clock.now = datetime(2024, 5, 1, 12, 6, 20, tzinfo=UTC)
        ahead = await backfills(env, clock).backfill(
            env.me, trigger, "2024-05-01T12:06:00Z", "2024-05-01T12:06:00Z"
        )
        assert (ahead.started, ahead.skipped) == (1, 0)
        tick = await sched.tick(conn)
        assert (tick.claimed, tick.fired) == (1, 0)
    keys = await env.services.pool.fetch(
        "SELECT idempotency_key, trigger_data->>'scheduledAt' AS at FROM executions "
        "WHERE trigger_id = $1",
        trigger,
    )
    assert len(keys) == 6
    assert all(r["idempotency_key"] == f"cron:{trigger}:{r['at']}" for r in keys)
    firings = await env.services.pool.fetchval(
        "SELECT count(*) FROM trigger_firings WHERE trigger_id = $1 AND execution_id IS NOT NULL",
        trigger,
    )
    assert firings == 6


async def test_a_run_whose_firing_was_pruned_is_not_started_again(env: Env) -> None:
    clock = Clock(T0)
    trigger = await cron(env, clock, "* * * * *")
    first = await backfills(env, clock).backfill(
        env.me, trigger, "2024-05-01T11:58:00Z", "2024-05-01T12:00:00Z"
    )
    assert (first.started, first.skipped) == (3, 0)
    await env.services.pool.execute("DELETE FROM trigger_firings")  # the history pruned
    again = await backfills(env, clock).backfill(
        env.me, trigger, "2024-05-01T11:58:00Z", "2024-05-01T12:00:00Z"
    )
    assert (again.started, again.skipped) == (0, 3)  # the idempotency keys hold


def test_fire_times_follow_the_time_zone_and_stop_at_the_limit() -> None:
    # 02:30 every day in Paris: on 30 March 2025 02:30 does not exist, it fires at 03:00
    # (01:00Z) as the scheduler fires it.
    schedule = CronSchedule.parse("30 2 * * *", "Europe/Paris")
    lower = datetime(2025, 3, 29, 0, 0, tzinfo=UTC)
    upper = datetime(2025, 3, 31, 23, 0, tzinfo=UTC)
    times = [iso(t) for t in fire_times(schedule, lower, upper, limit=10)]
    assert times == ["2025-03-29T01:30:00Z", "2025-03-30T01:00:00Z", "2025-03-31T00:30:00Z"]
    # Both ends are included.
    exact = fire_times(schedule, datetime(2025, 3, 29, 1, 30, tzinfo=UTC),
                       datetime(2025, 3, 29, 1, 30, tzinfo=UTC), limit=1)  # fmt: skip
    assert [iso(t) for t in exact] == ["2025-03-29T01:30:00Z"]
    # Ten years of minutes: refused after limit + 1 fire times, not after ten years' worth.
    every_minute = CronSchedule.parse("* * * * *")
    with pytest.raises(InvalidInput) as refused:
        fire_times(every_minute, lower, datetime(2035, 1, 1, tzinfo=UTC), limit=100)
    assert refused.value.details[0].path == "to"
