"""Runs and their steps get time-ordered ids (UUID version 7, migration 0019 and
flowsync/ids.py) however they start, one at a time or in a batch: the millisecond they
were made in first, then 74 random bits, the last 32 of which name a run on the
dashboard and must tell runs started together apart."""

from __future__ import annotations

import time
import uuid

from flowsync.ids import uuid7s
from flowsync.services.executions import StartItem
from tests.support.env import Env
from tests.support.graphs import chain


def made_at_ms(value: uuid.UUID) -> int:
    return value.int >> 80


def assert_v7_between(ids: list[uuid.UUID], since_ms: int, until_ms: int) -> None:
    for value in ids:
        assert value.version == 7, value
        assert value.variant == uuid.RFC_4122, value
        assert since_ms <= made_at_ms(value) <= until_ms, (value, since_ms, until_ms)


async def step_ids(env: Env, runs: list[uuid.UUID]) -> list[uuid.UUID]:
    rows = await env.services.pool.fetch(
        "SELECT id FROM step_executions WHERE execution_id = ANY($1::uuid[])", runs
    )
    return [r["id"] for r in rows]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def test_runs_and_steps_started_one_at_a_time_get_time_ordered_ids(env: Env) -> None:
    wid = await env.create(chain(2, delay=60))
    since = now_ms()
    runs = [await env.start(wid, {"n": i}) for i in range(3)]
    until = now_ms()
    assert_v7_between(runs, since, until)
    steps = await step_ids(env, runs)
    assert len(steps) == 3 * 5  # start, wait, t1, t2, end
    assert_v7_between(steps, since, until)


async def test_a_batchs_runs_and_steps_get_time_ordered_ids_named_apart(env: Env) -> None:
    wid = await env.create(chain(2, delay=60))
    since = now_ms()
    started = await env.services.executions.start_many(
        env.me, wid, [StartItem({"n": i}) for i in range(200)]
    )
    until = now_ms()
    runs = [item.execution.id for item in started]
    assert_v7_between(runs, since, until)
    assert len({str(r)[-8:] for r in runs}) == 200  # the dashboard's names (ids.ts)
    steps = await step_ids(env, runs)
    assert len(steps) == 200 * 5
    assert_v7_between(steps, since, until)
    stored = await env.services.pool.fetch(
        "SELECT id FROM executions WHERE id = ANY($1::uuid[])", runs
    )
    assert {r["id"] for r in stored} == set(runs)


async def test_the_servers_ids_are_version_7_of_its_clock(env: Env) -> None:
    since = now_ms()
    rows = await env.services.pool.fetch(
        "SELECT flowsync_uuid7() AS id FROM generate_series(1, 500)"
    )
    until = now_ms()
    made = [r["id"] for r in rows]
    assert len(set(made)) == 500
    assert_v7_between(made, since, until)


def test_pythons_ids_are_version_7_of_its_clock() -> None:
    since = now_ms()
    made = uuid7s(1000)
    until = now_ms()
    assert len(set(made)) == 1000
    assert_v7_between(made, since, until)
    # 74 random bits: the 12 after the version and the 62 after the variant all vary.
    assert len({(m.int >> 64) & 0xFFF for m in made}) > 800  # of 4,096: ~887 expected
    assert len({m.int & ((1 << 62) - 1) for m in made}) == 1000
