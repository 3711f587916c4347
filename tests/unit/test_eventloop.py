"""Waiting on an event inside a loop that is stopped by cancelling its task."""

from __future__ import annotations

import asyncio

import pytest

from flowsync.eventloop import wait_set


async def test_wait_set_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 5) is True


async def test_a_waiting_loop_stops_when_cancelled_as_its_event_is_set() -> None:
    """asyncio.wait_for on Python 3.11 returns instead of raising when the cancellation
    arrives in the same turn as the event: the loop then never stopped (an API process
    hung in its shutdown, waiting for its event poll to end)."""
    event = asyncio.Event()
    turns = 0

    async def loop() -> None:
        nonlocal turns
        while True:
            await wait_set(event, 5)
            event.clear()
            turns += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    event.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert turns == 0
