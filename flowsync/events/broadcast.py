"""broadcaster's `Broadcast` with bounded subscriber buffers.

broadcaster gives each subscriber an unbounded queue, and its fan-out awaits each put. Our
messages are wake-ups (`<execution_id>:<sequence>:<workflow_id>` or `resync`), so a
subscriber needs only the newest sequence per execution: `Wakeups` coalesces them, which
bounds its memory by the number of executions that changed while it was busy, never by
the number of events. Past `limit` executions it is marked `overflowed`, and its reader
ends the subscription (the client resubscribes and starts again from a snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from broadcaster import Broadcast, BroadcastBackend

from flowsync.eventloop import wait_set
from flowsync.events.backend import RESYNC

log = logging.getLogger("flowsync.events")


@dataclass
class Batch:
    """What happened since the last `take`: the newest sequence (and workflow) per
    execution, and whether the subscriber must re-read everything it follows."""

    latest: dict[uuid.UUID, tuple[int, uuid.UUID]] = field(default_factory=dict)
    resync: bool = False


class Wakeups:
    """One subscriber's coalescing buffer."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._batch = Batch()
        self._ready = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def push(self, message: str | None) -> None:
        """Add a wake-up (None: the subscription was closed). Never blocks."""
        if message is None:
            self.closed = True
        elif message == RESYNC:
            self._batch.resync = True
        else:
            try:
                head, seq, workflow = message.split(":")
                execution_id, sequence, workflow_id = uuid.UUID(head), int(seq), uuid.UUID(workflow)
            except ValueError:
                log.warning("ignoring a malformed wake-up %r", message)
                return
            latest = self._batch.latest
            if sequence > latest.get(execution_id, (0, workflow_id))[0]:
                if execution_id not in latest and len(latest) >= self._limit:
                    self.overflowed = True
                latest[execution_id] = (sequence, workflow_id)
        self._ready.set()

    async def take(self, timeout: float | None) -> Batch:
        """The wake-ups gathered so far, waiting up to `timeout` seconds (None: as long
        as it takes) for one."""
        if timeout is None:
            await self._ready.wait()
        elif not self._ready.is_set():
            await wait_set(self._ready, timeout)
        self._ready.clear()
        batch, self._batch = self._batch, Batch()
        return batch


class EventBroadcast(Broadcast):
    """`Broadcast` whose subscribers get a `Wakeups` buffer instead of a queue."""

    def __init__(self, backend: BroadcastBackend, *, subscriber_limit: int = 10_000) -> None:
        super().__init__(backend=backend)
        self._sinks: dict[str, set[Wakeups]] = {}
        self._limit = subscriber_limit

    async def _listener(self) -> None:
        while True:
            event = await self._backend.next_published()
            for sink in list(self._sinks.get(event.channel, ())):
                sink.push(event.message)

    @contextlib.asynccontextmanager
    async def wakeups(self, channel: str) -> AsyncIterator[Wakeups]:
        """Subscribe to `channel`; the backend listens for it before this yields."""
        sink = Wakeups(self._limit)
        sinks = self._sinks.setdefault(channel, set())
        sinks.add(sink)
        try:
            if len(sinks) == 1:
                await self._backend.subscribe(channel)
            yield sink
        finally:
            sinks.discard(sink)
            if not sinks and self._sinks.get(channel) is sinks:
                del self._sinks[channel]
                await self._backend.unsubscribe(channel)
            sink.push(None)
