"""The live-event machinery of one API process, started and stopped with the app."""

from __future__ import annotations

from dataclasses import dataclass

from flowsync.db.pooler import listen_url
from flowsync.events.backend import PgEventBackend
from flowsync.events.broadcast import EventBroadcast
from flowsync.events.feed import LiveFeed
from flowsync.events.log import EventLog
from flowsync.services.container import Services


@dataclass
class LiveEvents:
    """The backend (LISTEN connection, watcher rows, poll), the broadcast over it, the
    shared event log reader and the feeds built on them."""

    backend: PgEventBackend
    broadcast: EventBroadcast
    log: EventLog
    feed: LiveFeed

    @classmethod
    async def start(cls, services: Services) -> LiveEvents:
        """Connect the listener and start the poll and watcher refresh tasks."""
        settings = services.settings
        backend = PgEventBackend(
            listen_url(settings, services.url),
            services.pool,
            poll_seconds=settings.subscription_poll_seconds,
            refresh_seconds=settings.watcher_refresh_seconds,
            ttl_seconds=settings.watcher_ttl_seconds,
        )
        broadcast = EventBroadcast(backend, subscriber_limit=settings.max_subscriber_backlog)
        await broadcast.connect()
        log = EventLog(services.executions)
        feed = LiveFeed(broadcast, log, services.executions)
        return cls(backend, broadcast, log, feed)

    async def stop(self) -> None:
        """Stop listening and delete this process's watcher rows."""
        await self.broadcast.disconnect()
