"""A subscriber's buffer of wake-ups: bounded by executions, never by events."""

from __future__ import annotations

import asyncio
import uuid

from flowsync.events.backend import RESYNC
from flowsync.events.broadcast import Wakeups


def message(execution: uuid.UUID, sequence: int, workflow: uuid.UUID) -> str:
    return f"{execution}:{sequence}:{workflow}"


async def test_wakeups_keep_the_newest_sequence_per_execution() -> None:
    sink = Wakeups(limit=10)
    e1, e2, wf = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for seq in (3, 7, 5):
        sink.push(message(e1, seq, wf))
    sink.push(message(e2, 1, wf))
    batch = await sink.take(1)
    assert batch.latest == {e1: (7, wf), e2: (1, wf)}
    assert not batch.resync
    empty = await sink.take(0.01)  # nothing new: waits, then an empty batch
    assert empty.latest == {} and not empty.resync


async def test_resync_malformed_and_close() -> None:
    sink = Wakeups(limit=10)
    sink.push("not:a:wakeup")
    sink.push("garbage")
    sink.push(RESYNC)
    batch = await sink.take(1)
    assert batch.resync and batch.latest == {}
    sink.push(None)
    assert sink.closed


async def test_a_thousand_events_of_two_executions_hold_two_entries() -> None:
    sink = Wakeups(limit=2)
    e1, e2, wf = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for seq in range(1, 1001):
        sink.push(message(e1 if seq % 2 else e2, seq, wf))
    assert not sink.overflowed
    batch = await sink.take(1)
    assert batch.latest == {e1: (999, wf), e2: (1000, wf)}
    sink.push(message(uuid.uuid4(), 1, wf))
    sink.push(message(uuid.uuid4(), 1, wf))
    sink.push(message(uuid.uuid4(), 1, wf))
    assert sink.overflowed


async def test_take_wakes_as_soon_as_something_arrives() -> None:
    sink = Wakeups(limit=10)
    waiting = asyncio.create_task(sink.take(10))
    await asyncio.sleep(0.01)
    sink.push(RESYNC)
    batch = await asyncio.wait_for(waiting, 1)
    assert batch.resync
