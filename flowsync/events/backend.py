"""The broadcaster backend that turns Postgres notifications into wake-ups.

Transitions send `NOTIFY flowsync_events '<execution_id>:<last_sequence>'` inside their
transaction, and only for owners that have a fresh `event_watchers` row. This backend

* listens on a dedicated connection (`PgListener`), which reconnects and re-listens (with
  no URL to listen on, behind a transaction pooler, it only polls: see db/pooler.py);
* keeps a watcher row fresh for every owner it has subscribers for, and deletes it when
  the last one leaves, so that workers notify exactly the owners someone watches;
* maps each notification to its owner and workflow (one cached lookup per execution) and
  publishes `<execution_id>:<sequence>:<workflow_id>` on the channels
  `owner:<owner_id>` and `execution:<owner_id>:<execution_id>`;
* polls the event log every `poll_seconds` for the watched owners' events newer than a
  horizon, and publishes the same wake-ups for them: a notification lost to a dropped
  connection, folded by Postgres or sent before a watcher row was visible only delays
  delivery until the next poll;
* after every (re)connect publishes `resync` on every channel and polls at once.

Messages are wake-ups, never data: subscribers read the event log after the last
sequence they delivered, so a duplicate or stale wake-up costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import Counter, OrderedDict, deque
from typing import Any

import asyncpg
from broadcaster import BroadcastBackend, Event

from flowsync.db.pooler import warn_polling
from flowsync.eventloop import wait_set
from flowsync.events.listener import PgListener

log = logging.getLogger("flowsync.events")
# A database lost or unreachable, mid-failover included (asyncpg's InternalClientError:
# no host of a multi-host URL accepts writes yet): the loops here log it and go on.
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)

CHANNEL = "flowsync_events"
RESYNC = "resync"

_LAST_ID = "SELECT pg_sequence_last_value(pg_get_serial_sequence('execution_events', 'id'))"
_SCAN = """
SELECT execution_id, owner_id, workflow_id, max(sequence) AS sequence
  FROM execution_events
 WHERE owner_id = ANY($1::uuid[]) AND id > $2
 GROUP BY execution_id, owner_id, workflow_id
"""
_ROUTES = "SELECT id, owner_id, workflow_id FROM executions WHERE id = ANY($1::uuid[])"
_WATCH = """
INSERT INTO event_watchers (owner_id, watcher, expires_at)
SELECT o, $2, now() + make_interval(secs => $3) FROM unnest($1::uuid[]) AS o
    ON CONFLICT (owner_id, watcher) DO UPDATE SET expires_at = EXCLUDED.expires_at
"""
_UNWATCH = "DELETE FROM event_watchers WHERE watcher = $2 AND owner_id = ANY($1::uuid[])"
_SWEEP = "DELETE FROM event_watchers WHERE expires_at < now() - interval '1 minute'"


def owner_channel(owner_id: uuid.UUID) -> str:
    """The channel of every event of one owner."""
    return f"owner:{owner_id}"


def execution_channel(owner_id: uuid.UUID, execution_id: uuid.UUID) -> str:
    """The channel of one execution's events."""
    return f"execution:{owner_id}:{execution_id}"


def _owner_of(channel: str) -> uuid.UUID:
    return uuid.UUID(channel.split(":")[1])


class PgEventBackend(BroadcastBackend):
    """See the module docstring. `connected` tells whether LISTEN is in place now."""

    def __init__(
        self,
        url: str | None,
        pool: asyncpg.Pool,
        *,
        poll_seconds: float = 2.0,
        refresh_seconds: float = 10.0,
        ttl_seconds: float = 30.0,
        margin_seconds: float = 10.0,
        application_name: str = "flowsync-events",
        queue_size: int = 10_000,
        server_settings: dict[str, str] | None = None,
    ) -> None:
        self._url = url
        self._pool = pool
        self._poll_seconds = poll_seconds
        self._refresh_seconds = refresh_seconds
        self._ttl = ttl_seconds
        self._margin = margin_seconds
        self._app = application_name
        self._server_settings = server_settings
        self.watcher_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=queue_size)
        self._channels: set[str] = set()
        self._owners: Counter[uuid.UUID] = Counter()
        self._watch_lock = asyncio.Lock()
        # execution -> (owner, workflow): immutable facts, so the cache never goes stale.
        self._routes: OrderedDict[uuid.UUID, tuple[uuid.UUID, uuid.UUID]] = OrderedDict()
        self._unrouted: dict[uuid.UUID, int] = {}
        self._router: asyncio.Task[None] | None = None
        # The poll reads events with an id above the sequence's value of `margin` seconds
        # ago: ids are taken before commit, so a younger horizon could skip an event whose
        # transaction commits after a later one's.
        self._horizon = 0
        self._marks: deque[tuple[float, int]] = deque()
        self._announced: dict[uuid.UUID, int] = {}
        self._touched: set[uuid.UUID] = set()
        self._poll_now = asyncio.Event()
        self._overflowed = False
        self._listener: PgListener | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:
        """Whether the listening connection is up."""
        return self._listener is not None and self._listener.connected.is_set()

    @property
    def listener_state(self) -> bool | None:
        """Whether LISTEN is in place now; None: this backend only polls (no `url`)."""
        return None if self._url is None else self.connected

    @property
    def reconnects(self) -> int:
        """How many times the listening connection was lost."""
        return self._listener.reconnects if self._listener is not None else 0

    async def connect(self) -> None:
        self._horizon = int(await self._pool.fetchval(_LAST_ID) or 0)
        if self._url is None:
            warn_polling("this API process's live events")
        else:
            self._listener = PgListener(
                self._url,
                {CHANNEL: self._notified},
                on_connect=self._reconnected,
                application_name=self._app,
                server_settings=self._server_settings,
            )
            self._listener.start()
        self._tasks = [
            asyncio.create_task(self._poll_loop(), name="events-poll"),
            asyncio.create_task(self._refresh_loop(), name="events-watchers"),
        ]

    async def disconnect(self) -> None:
        for task in [*self._tasks, *([self._router] if self._router else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            await self._listener.close()
        if self._owners:
            with contextlib.suppress(Exception):
                await self._pool.execute(_UNWATCH, list(self._owners), self.watcher_id)

    async def subscribe(self, channel: str) -> None:
        owner = _owner_of(channel)
        self._channels.add(channel)
        self._owners[owner] += 1
        if self._owners[owner] == 1:
            await self._sync_watch(owner)

    async def unsubscribe(self, channel: str) -> None:
        owner = _owner_of(channel)
        self._channels.discard(channel)
        self._owners[owner] -= 1
        if self._owners[owner] <= 0:
            del self._owners[owner]
            await self._sync_watch(owner)

    async def publish(self, channel: str, message: Any) -> None:
        raise NotImplementedError(
            "Events are published by the database: NOTIFY inside the writing transaction."
        )

    async def next_published(self) -> Event:
        return await self._queue.get()

    # -- watcher rows -------------------------------------------------------------------

    async def _sync_watch(self, owner: uuid.UUID) -> None:
        """Make the owner's watcher row match whether anyone subscribes to it now."""
        async with self._watch_lock:
            try:
                if owner in self._owners:
                    await self._pool.execute(_WATCH, [owner], self.watcher_id, self._ttl)
                else:
                    await self._pool.execute(_UNWATCH, [owner], self.watcher_id)
            except _DB_ERRORS as exc:
                # The refresh loop writes the row again; meanwhile the poll delivers.
                log.warning("could not update the watcher row of %s: %s", owner, exc)

    async def _refresh_loop(self) -> None:
        sweeps = 0
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                if self._owners:
                    await self._pool.execute(_WATCH, list(self._owners), self.watcher_id, self._ttl)
                sweeps += 1
                if sweeps % 6 == 0:  # rows of API processes that died without cleaning up
                    await self._pool.execute(_SWEEP)
            except _DB_ERRORS as exc:
                log.warning("could not refresh watcher rows: %s", exc)

    # -- notifications -------------------------------------------------------------------

    def _notified(self, payload: str) -> None:
        if not self._channels:  # another API process's owners; nobody here to wake
            return
        head, _, seq = payload.partition(":")
        try:
            execution_id, sequence = uuid.UUID(head), int(seq)
        except ValueError:
            log.warning("ignoring a malformed %s payload %r", CHANNEL, payload)
            return
        route = self._routes.get(execution_id)
        if route is not None:
            self._emit(execution_id, route[0], route[1], sequence)
            return
        self._unrouted[execution_id] = max(sequence, self._unrouted.get(execution_id, 0))
        if self._router is None or self._router.done():
            self._router = asyncio.create_task(self._route(), name="events-route")

    async def _route(self) -> None:
        """Look up owner and workflow of notified executions, a batch per round trip."""
        while self._unrouted:
            batch, self._unrouted = self._unrouted, {}
            try:
                rows = await self._pool.fetch(_ROUTES, list(batch))
            except _DB_ERRORS as exc:
                log.warning("could not route %d notifications (the poll will): %s", len(batch), exc)
                return
            for row in rows:
                self._remember(row["id"], row["owner_id"], row["workflow_id"])
                self._emit(row["id"], row["owner_id"], row["workflow_id"], batch[row["id"]])

    def _remember(self, execution_id: uuid.UUID, owner: uuid.UUID, workflow: uuid.UUID) -> None:
        self._routes[execution_id] = (owner, workflow)
        while len(self._routes) > 20_000:
            self._routes.popitem(last=False)

    def _emit(
        self, execution_id: uuid.UUID, owner: uuid.UUID, workflow: uuid.UUID, sequence: int
    ) -> None:
        if sequence <= self._announced.get(execution_id, 0):
            return
        self._announced[execution_id] = sequence
        self._touched.add(execution_id)
        message = f"{execution_id}:{sequence}:{workflow}"
        for channel in (owner_channel(owner), execution_channel(owner, execution_id)):
            if channel in self._channels:
                self._put(Event(channel, message))

    def _put(self, event: Event) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # Only if broadcaster's listener stalls; every subscriber resynchronises.
            self._overflowed = True
            self._poll_now.set()

    def _resync_all(self) -> None:
        for channel in list(self._channels):
            self._put(Event(channel, RESYNC))

    async def _reconnected(self) -> None:
        log.info("listening on %s (reconnects so far: %d)", CHANNEL, self.reconnects)
        self._resync_all()
        self._poll_now.set()
        if self._owners:
            with contextlib.suppress(*_DB_ERRORS):
                await self._pool.execute(_WATCH, list(self._owners), self.watcher_id, self._ttl)

    # -- the safety net ------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            await wait_set(self._poll_now, self._poll_seconds)
            self._poll_now.clear()
            if self._overflowed:
                self._overflowed = False
                self._resync_all()
            try:
                await self.poll()
            except _DB_ERRORS as exc:
                log.warning("event poll failed: %s", exc)

    async def poll(self) -> None:
        """Publish wake-ups for watched owners' events above the horizon."""
        self._touched = set()
        async with self._pool.acquire() as conn:
            top = int(await conn.fetchval(_LAST_ID) or 0)
            now = time.monotonic()
            self._marks.append((now, top))
            while len(self._marks) > 1 and self._marks[1][0] <= now - self._margin:
                self._marks.popleft()
            if self._marks[0][0] <= now - self._margin:
                self._horizon = max(self._horizon, self._marks[0][1])
            if not self._owners:
                self._announced.clear()
                return
            rows = await conn.fetch(_SCAN, list(self._owners), self._horizon)
        seen: dict[uuid.UUID, int] = {}
        for row in rows:
            execution_id = row["execution_id"]
            self._remember(execution_id, row["owner_id"], row["workflow_id"])
            seen[execution_id] = row["sequence"]
            self._emit(execution_id, row["owner_id"], row["workflow_id"], row["sequence"])
        # Forget executions that fell below the horizon; notifications re-add the live ones.
        self._announced = {
            eid: seq for eid, seq in self._announced.items() if eid in seen or eid in self._touched
        }
