"""Live feeds of execution events, for the GraphQL subscriptions.

A feed first yields the current state (`Snapshot`: the execution and its steps as of its
`last_sequence`), then every later event (`Change`) of each execution in sequence order,
with no gap and no duplicate. It remembers, per execution, the last sequence it delivered,
and on every wake-up (a notification, the backend's poll, or a resync after the listening
connection came back) reads the event log after that sequence. Sequences of one execution
commit in order, so such a read never skips an event and never repeats one, however
wake-ups are lost, repeated or reordered.

Order is per execution: events of different executions interleave in the order they were
read. A feed ends when its subscriber fell too far behind (`SubscriberTooSlow`), or, for
one execution, after the event that ends it. It does not re-check its credential: the
transport has it watched (flowsync.services.auth.CredentialWatch, for a websocket or an
HTTP stream) and stops the feed once the credential no longer authenticates. A feed sleeps
until a wake-up: ten thousand idle subscribers cost no CPU.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from flowsync.db.models import Execution, ExecutionEvent, StepExecution
from flowsync.errors import Conflict
from flowsync.events.backend import execution_channel, owner_channel
from flowsync.events.broadcast import EventBroadcast
from flowsync.events.log import BATCH, EventLog
from flowsync.services.auth import Credential
from flowsync.services.executions import ExecutionService
from flowsync.services.inputs import parse_id

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
ENDING_KINDS = frozenset({"execution.completed", "execution.failed", "execution.cancelled"})
# An owner-wide feed treats executions that ended this long before it started as known.
RECENT_SECONDS = 60.0
# Ended executions are forgotten this long after their last event was delivered.
FORGET_SECONDS = 600.0
# How often an owner-wide feed looks for ended executions to forget.
SWEEP_SECONDS = 5.0


class SubscriberTooSlow(Conflict):
    """A subscriber fell so far behind that catching it up would need unbounded memory;
    it should subscribe again."""

    code = "subscriber_too_slow"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An execution's state when the feed started; steps agree with `last_sequence`."""

    execution: Execution
    steps: list[StepExecution] | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One event of the log."""

    event: ExecutionEvent


FeedItem = Snapshot | Change


class LiveFeed:
    """Builds feeds over one process's broadcast and event log."""

    def __init__(
        self,
        broadcast: EventBroadcast,
        log: EventLog,
        executions: ExecutionService,
    ) -> None:
        self._broadcast = broadcast
        self._log = log
        self._executions = executions

    async def execution(
        self, credential: Credential, execution_id: object, *, follow: bool = False
    ) -> AsyncIterator[FeedItem]:
        """The feed of one execution; NotFound (also for another owner's) before anything
        is yielded. Ends after the execution's final event, unless `follow`: then it
        goes on (a redriven execution resumes, and its events come too)."""
        principal = credential.principal
        eid = parse_id(execution_id, "execution")
        await self._executions.get(principal, eid)
        channel = execution_channel(principal.owner_id, eid)
        async with self._broadcast.wakeups(channel) as sink:
            execution, steps = await self._executions.snapshot(principal, eid)
            yield Snapshot(execution, steps)
            seen = execution.last_sequence
            ended = execution.status in TERMINAL
            while follow or not ended:
                batch = await sink.take(None)
                if sink.overflowed:
                    raise SubscriberTooSlow("The subscriber fell too far behind; subscribe again.")
                target = batch.latest.get(eid, (0, eid))[0]
                if not batch.resync and target <= seen:
                    continue
                async for event in self._read(
                    credential, eid, seen, None if batch.resync else target
                ):
                    seen = event.sequence
                    yield Change(event)
                    if event.kind in ENDING_KINDS:
                        ended = True

    async def owner(
        self, credential: Credential, workflow_id: uuid.UUID | None
    ) -> AsyncIterator[FeedItem]:
        """The feed of all of the caller's executions (optionally of one workflow): a
        snapshot of each running one, then every event of those and of every execution
        started later."""
        principal = credential.principal
        async with self._broadcast.wakeups(owner_channel(principal.owner_id)) as sink:
            started_at, current = await self._executions.watch_state(
                principal, workflow_id, window_seconds=RECENT_SECONDS
            )
            cutoff = started_at - timedelta(seconds=RECENT_SECONDS)
            seen: dict[uuid.UUID, int] = {}
            live: set[uuid.UUID] = set()
            ended: dict[uuid.UUID, float] = {}
            for execution in current:
                seen[execution.id] = execution.last_sequence
                if execution.status in TERMINAL:
                    ended[execution.id] = time.monotonic()
                else:
                    live.add(execution.id)
                    yield Snapshot(execution)
            sweep_at = time.monotonic() + SWEEP_SECONDS
            while True:
                batch = await sink.take(None)
                now = time.monotonic()
                if now >= sweep_at:  # only on a wake-up: without one, nothing grows
                    sweep_at = now + SWEEP_SECONDS
                    for eid in [e for e, t in ended.items() if now - t > FORGET_SECONDS]:
                        del ended[eid]
                        seen.pop(eid, None)
                if sink.overflowed:
                    raise SubscriberTooSlow("The subscriber fell too far behind; subscribe again.")
                targets: dict[uuid.UUID, int | None] = {
                    eid: seq
                    for eid, (seq, wf) in batch.latest.items()
                    if (workflow_id is None or wf == workflow_id) and seq > seen.get(eid, 0)
                }
                if batch.resync:
                    targets.update(dict.fromkeys(live))
                for eid, target in targets.items():
                    after = seen.get(eid)
                    if after is None:
                        # New to this feed: started after it, or ended long before it.
                        first = await self._log.after(principal, eid, 0, known=target)
                        if not first or first[0].at < cutoff:
                            seen[eid] = target or 0
                            ended[eid] = now
                            continue
                        after = 0
                        live.add(eid)
                    async for event in self._read(credential, eid, after, target):
                        seen[eid] = event.sequence
                        yield Change(event)
                        if event.kind in ENDING_KINDS:
                            live.discard(eid)
                            ended[eid] = time.monotonic()

    async def _read(
        self, credential: Credential, execution_id: uuid.UUID, after: int, target: int | None
    ) -> AsyncIterator[ExecutionEvent]:
        """Every event after `after`, up to `target` when given, else to the log's end."""
        while True:
            events = await self._log.after(credential.principal, execution_id, after, known=target)
            for event in events:
                if event.sequence != after + 1:  # cannot happen: the log has no gaps
                    raise AssertionError(f"event {event.sequence} after {after}")
                after = event.sequence
                yield event
            if len(events) < BATCH or (target is not None and after >= target):
                return
