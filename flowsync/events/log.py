"""Reading the event log for live subscribers, once per process rather than once per
subscriber.

Many subscribers woken by one notification all ask for the same execution's events after
nearly the same sequence. `EventLog` keeps the newest events of recently read executions
and lets one reader per execution go to the database while the others wait for it and
then read from memory: a thousand subscribers of one execution cost one query per change.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from flowsync.db.models import ExecutionEvent
from flowsync.services.executions import ExecutionService
from flowsync.services.principal import Principal

BATCH = 500


@dataclass
class _Tail:
    """The newest events of one execution, contiguous in sequence."""

    events: list[ExecutionEvent] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def covers(self, after: int) -> bool:
        return bool(self.events) and self.events[0].sequence <= after + 1

    @property
    def last(self) -> int:
        return self.events[-1].sequence if self.events else 0

    def after(self, after: int) -> list[ExecutionEvent]:
        start = after + 1 - self.events[0].sequence
        return self.events[max(start, 0) : max(start, 0) + BATCH]


class EventLog:
    """A bounded, shared cache over `ExecutionService.events_after`: the newest
    `keep_events` events of the `keep_executions` executions read last. A subscriber
    further behind than that reads from the database, which is slower, never wrong."""

    def __init__(
        self, executions: ExecutionService, *, keep_events: int = 64, keep_executions: int = 1024
    ) -> None:
        self._executions = executions
        self._keep_events = keep_events
        self._keep_executions = keep_executions
        self._tails: OrderedDict[tuple[uuid.UUID, uuid.UUID], _Tail] = OrderedDict()
        self.queries = 0

    async def after(
        self,
        principal: Principal,
        execution_id: uuid.UUID,
        after: int,
        *,
        known: int | None = None,
    ) -> list[ExecutionEvent]:
        """Up to BATCH of the execution's events with a sequence above `after`, in order.
        `known` is a sequence a wake-up announced: when the cache holds it, no query is
        made. Another owner's execution reads as one without events."""
        key = (principal.owner_id, execution_id)
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = _Tail()
            while len(self._tails) > self._keep_executions:
                self._tails.popitem(last=False)
        else:
            self._tails.move_to_end(key)
        async with tail.lock:
            if known is not None and tail.covers(after) and tail.last >= known:
                return tail.after(after)
            extend = tail.covers(after) and tail.last >= after
            start = tail.last if extend else after
            self.queries += 1
            fresh = await self._executions.events_after(principal, execution_id, start, limit=BATCH)
            if extend:
                tail.events.extend(fresh)
            elif fresh:
                tail.events = fresh
            else:
                return []
            result = tail.after(after)
            if len(tail.events) > self._keep_events:
                del tail.events[: len(tail.events) - self._keep_events]
            return result
