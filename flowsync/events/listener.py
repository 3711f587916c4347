"""LISTEN on a dedicated connection that reconnects and re-listens by itself.

A notification is only a wake-up: after every (re)connect the listener calls
`on_connect`, because notifications sent while it was away are gone and the caller must
re-read the tables. Transaction-mode poolers cannot carry LISTEN; point this at the
server directly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

import asyncpg

from flowsync.config import to_asyncpg_dsn
from flowsync.db.connect import connect
from flowsync.eventloop import wait_set

log = logging.getLogger("flowsync.listener")

Callback = Callable[[str], None]


class PgListener:
    """Runs until `close()`; `connected` tells whether LISTEN is in place right now."""

    def __init__(
        self,
        url: str,
        channels: Mapping[str, Callback],
        *,
        on_connect: Callable[[], Awaitable[None] | None] | None = None,
        check_seconds: float = 1.0,
        application_name: str = "flowsync-listener",
        server_settings: Mapping[str, str] | None = None,
    ):
        self._dsn = to_asyncpg_dsn(url)
        self._channels = dict(channels)
        self._on_connect = on_connect
        self._check = check_seconds
        self._settings = {**(server_settings or {}), "application_name": application_name}
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0

    def start(self) -> None:
        """Start listening in the background."""
        self._task = asyncio.create_task(self._run(), name="pg-listener")

    async def close(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), 2)

    def _dispatch(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        callback = self._channels.get(channel)
        if callback is not None:
            try:
                callback(str(payload))
            except Exception:  # a subscriber's bug must not kill the listener
                log.exception("listener callback for %s failed", channel)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            lost = asyncio.Event()
            try:
                conn = await connect(self._dsn, server_settings=self._settings, timeout=10)
                self._conn = conn
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                for channel in self._channels:
                    await conn.add_listener(channel, self._dispatch)
                self.connected.set()
                delay = 0.1
                if self._on_connect is not None:
                    result = self._on_connect()
                    if result is not None:
                        await result
                # The termination callback is not called for every kind of loss, so also
                # check the socket now and then.
                while not lost.is_set():
                    await wait_set(lost, self._check)
                    if conn.is_closed():
                        break
                    try:
                        # Not asyncio.wait_for: it can lose a cancellation (see wait_set).
                        async with asyncio.timeout(self._check * 5):
                            await conn.execute("SELECT 1")
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                        break
            except asyncio.CancelledError:
                raise
            except (
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,  # e.g. mid-failover: no host accepts writes yet
                TimeoutError,
            ) as exc:
                log.warning("listener connection failed: %s; retrying in %.1fs", exc, delay)
            self.connected.clear()
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
