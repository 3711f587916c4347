"""The cron scheduler in real processes: three schedulers (two `flowsync worker`
processes and one `flowsync dev`) on one database and a per-second schedule for over 20
ticks, one of them killed half-way: every tick fires exactly once, with no gap."""

from __future__ import annotations

import asyncio
import re
import socket
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from flowsync.services.triggers import TriggerUpdate
from tests.support.graphs import chain
from tests.support.processes import Process, flowsync_env

pytestmark = pytest.mark.slow

TICKS = 21


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until(check: Callable[[], object], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():  # type: ignore[misc]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_three_schedulers_fire_each_second_exactly_once_through_a_kill(
    services: Services,
    me: Principal,
    workers: Callable[..., Process],
    db_url: str,
    tmp_path: Path,
) -> None:
    doomed = workers(concurrency=4)
    survivor = workers(concurrency=4)
    dev = Process(
        # --verbose: dev's log lines (the scheduler's stop among them) on its output.
        ["dev", "--verbose"],
        flowsync_env(db_url, port=_free_port(), dev_worker="false", data_dir=tmp_path),
        tmp_path / "dev.log",
    )
    try:

        async def three_running() -> bool:
            return (await services.triggers.scheduler_status(me)).running == 3

        await _until(three_running, 30, "three schedulers")

        workflow = await services.workflows.create(me, "tick", None, chain(1))
        trigger = (
            await services.triggers.create(me, workflow.id, "CRON", {"expression": "* * * * * *"})
        ).trigger
        assert trigger.next_run_at is not None
        await asyncio.sleep(TICKS / 2)
        doomed.kill()  # SIGKILL, maybe mid-tick: its transaction rolls back
        await asyncio.sleep(TICKS / 2 + 0.5)
        await services.triggers.update(me, trigger.id, TriggerUpdate(enabled=False))
        await asyncio.sleep(1.0)  # let a tick already under way commit
        status = await services.triggers.scheduler_status(me)
        assert status.running == 2, [doomed.output()[-2000:], dev.output()[-2000:]]
        # Both kinds of process stop their scheduler cleanly on SIGTERM.
        for proc in (dev, survivor):
            assert await asyncio.to_thread(proc.terminate) == 0, proc.output()[-3000:]
            assert re.search(r"scheduler \S+ stopped", proc.output()), proc.output()[-3000:]
        assert (await services.triggers.scheduler_status(me)).schedulers == []
    finally:
        dev.close()

    rows = await services.pool.fetch(
        "SELECT trigger_data->>'scheduledAt' AS at FROM executions WHERE trigger_id = $1",
        trigger.id,
    )
    counts = Counter(r["at"] for r in rows)
    assert counts and max(counts.values()) == 1, counts.most_common(3)
    fired = sorted(datetime.fromisoformat(at) for at in counts)
    assert len(fired) >= TICKS - 1, len(fired)
    expected = [fired[0] + timedelta(seconds=n) for n in range(len(fired))]
    assert fired == expected, "a second was skipped"
    assert fired[0] == trigger.next_run_at.astimezone(UTC)
    firings = await services.pool.fetch(
        "SELECT fire_at, execution_id, created_at FROM trigger_firings WHERE trigger_id = $1",
        trigger.id,
    )
    assert len(firings) == len(fired) and all(f["execution_id"] for f in firings)
    late = sorted((f["created_at"] - f["fire_at"]).total_seconds() for f in firings)
    # On a loaded 2-core machine: the median firing lands well within a second.
    assert late[len(late) // 2] < 1.0, late
