"""Running the long-lived processes' event loop.

`flowsync dev` and `flowsync worker` run on uvloop (libuv, in C) where it is installed:
asyncpg is written for it, and the standard loop's pure-Python transports were a
fifth of the API's CPU when writing subscription events to a thousand websockets. The
setting `event_loop = "asyncio"` runs the standard loop instead (and is used where
uvloop is missing, e.g. on Windows).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

T = TypeVar("T")

log = logging.getLogger("flowsync")


def run(main: Coroutine[Any, Any, T], kind: str = "uvloop") -> T:
    """Run `main` to completion on a new loop of the given kind."""
    factory = None
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.info("uvloop is not installed; running the standard asyncio loop")
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def settle_heap() -> None:
    """Called once a long-lived process has started, before it serves, to keep the
    garbage collector's pauses short and rare.

    A full collection stops the process for time proportional to the objects it tracks:
    with a thousand websocket subscribers the API's took 280 ms, every 15 s under load,
    and each delivery in flight waited that long (the benchmark's p99).

    * `gc.freeze()` moves every object alive by now (modules, classes, the app: ~160,000
      in the API process) out of the collector's reach; they live as long as the process
      anyway. That cut the pause to ~190 ms.
    * A full collection is considered after 100 collections of the middle generation
      instead of 10 (still only once the objects promoted since the last one exceed a
      quarter of those it holds, CPython's own rule). Under that load they came every
      ~15 s, now every ~150 s; the cyclic garbage that waits longer for them is a few
      MB (the full collections under load found 0-6,000 objects).
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)
    CONNECTIONS.enabled = True
    LARGE_REQUESTS.enabled = True


class LongLived:
    """Keeps the objects of long-lived connections (websockets, HTTP streams) out of the
    collector's full collections, which walk every object it tracks.

    Each connection holds ~250 such objects (its socket, handler, tasks, coroutines and
    feed), so with 10,000 connections a full collection walked 2.5 million objects and
    stopped the API for ~1.6 s, every delivery in flight waiting with it. Connections
    live for minutes to days, as the app's own objects do: after every `batch` new ones,
    the young garbage is collected and everything alive is frozen (`gc.freeze()`, O(1)),
    so that full collections walk at most the objects of `batch` connections and what
    came since.

    A frozen object that becomes garbage in a reference cycle is not freed while frozen.
    So once more connections closed since the last full collection than half of those
    open (and at least `batch`), everything is unfrozen, and nothing is frozen again
    until CPython's own rule has made a full collection (which then frees what the
    closed connections left): that garbage is bounded by half of the connections, under
    churn too. Nothing here makes a collection of the old generation itself: a mass
    disconnect, or churn of half the connections, costs one full collection, when
    CPython decides, as it would without this.

    Off (every call a no-op) until `settle_heap` turns it on in a serving process."""

    def __init__(self, batch: int = 500) -> None:
        self.enabled = False
        self.batch = batch
        self._open = 0
        self._opened = 0  # since the last freeze
        self._closed = 0  # since the last full collection: a bound of the frozen garbage
        self._thawed: int | None = None  # full collections made when it last unfroze

    def opened(self) -> None:
        if not self.enabled:
            return
        self._open += 1
        self._opened += 1
        if self._opened < self.batch:
            return
        if self._thawed is not None:
            if _full_collections() == self._thawed:
                return  # the closed connections' garbage is not collected yet
            self._thawed = None
            self._closed = 0  # that collection freed what the closed ones left
        gc.collect(1)  # the young garbage is freed, not frozen
        gc.freeze()
        self._opened = 0

    def closed(self) -> None:
        if not self.enabled:
            return
        self._open -= 1
        self._closed += 1
        if self._thawed is None and self._closed >= max(self.batch, self._open // 2):
            gc.unfreeze()
            self._thawed = _full_collections()
            self._closed = 0


def _full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


# The serving process's one instance: the GraphQL view counts its connections here.
CONNECTIONS = LongLived()


class LargeRequests:
    """Raises the young generation's threshold while requests with large bodies are
    handled, so that the objects they build die by their reference counts before a
    collection walks them.

    A batch start of 1,000 runs (a ~25 KB body) builds ~30,000 objects (the parsed body,
    the coerced items, the rows, the reply) and holds them until it ends: at CPython's
    700 it made ~30 young and ~3 middle collections, each walking what the request
    held so far, ~13 % of the API's CPU (REST 19.7 → 16 µs a run, GraphQL 27 → 23.4).
    Raised for every request (50,000) it cost the subscribers' tail instead: with
    10,000 websockets each young collection walked that many live objects, and the
    delivery p99 went from 46 to 68 ms. So it is raised only while a large request is
    in flight (the first one in raises it, the last one out sets it back) and still
    collects, so garbage in reference cycles waits for at most `young` objects.

    Off (every call a no-op) until `settle_heap` turns it on in a serving process."""

    def __init__(self, young: int = 100_000) -> None:
        self.enabled = False
        self.young = young
        self._inside = 0
        self._normal = 0

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        if self._inside == 0:
            self._normal, middle, old = gc.get_threshold()
            gc.set_threshold(max(self.young, self._normal), middle, old)
        self._inside += 1
        try:
            yield
        finally:
            self._inside -= 1
            if self._inside == 0:
                _, middle, old = gc.get_threshold()
                gc.set_threshold(self._normal, middle, old)


# The serving process's one instance (see LargeBodies).
LARGE_REQUESTS = LargeRequests()
# A request body of at least this many bytes (by its Content-Length) is a large one.
LARGE_BODY_BYTES = 16 * 1024


class LargeBodies:
    """ASGI middleware: an HTTP request whose Content-Length is LARGE_BODY_BYTES or
    more is handled under LARGE_REQUESTS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and LARGE_REQUESTS.enabled:
            for name, value in scope["headers"]:
                if name == b"content-length":
                    if value.isdigit() and int(value) >= LARGE_BODY_BYTES:
                        with LARGE_REQUESTS.handling():
                            await self.app(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


async def wait_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set, at most `seconds`; whether it is set. Loops that wait
    like this are stopped by cancelling their task: on Python 3.11, asyncio.wait_for
    loses a cancellation that arrives as the event is set (it returns instead of
    raising), and such a loop then runs on and never stops. asyncio.timeout does not."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
