"""While requests with large bodies (a batch start) are handled, the API collects its
young objects less often (flowsync.eventloop.LargeRequests, LargeBodies): raised by the
first such request in, set back by the last one out (an error too), untouched by small
requests, and cyclic garbage is still collected meanwhile."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from flowsync.eventloop import LARGE_BODY_BYTES, LARGE_REQUESTS, LargeBodies, LargeRequests

NORMAL = 700


@pytest.fixture(autouse=True)
def thresholds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(NORMAL, saved[1], saved[2])
    monkeypatch.setattr(LARGE_REQUESTS, "enabled", True)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def young() -> int:
    return gc.get_threshold()[0]


class App:
    """Records the young threshold it runs under; waits for `go` when asked to; raises
    when its path says so."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.go = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        self.seen[path] = young()
        if path.startswith("/wait"):
            await self.go.wait()
            self.seen[path + " after"] = young()
        if path == "/fail":
            raise RuntimeError("handler failed")


def request(path: str, length: int | None) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "path": path, "headers": headers}


async def nothing() -> dict[str, Any]:
    return {"type": "http.request", "body": b""}


async def ignore(_message: Any) -> None:
    return None


async def test_only_large_bodies_raise_it_and_the_last_one_out_sets_it_back() -> None:
    app = App()
    asgi = LargeBodies(app)
    await asgi(request("/small", LARGE_BODY_BYTES - 1), nothing, ignore)
    await asgi(request("/unknown", None), nothing, ignore)  # chunked: no length
    assert app.seen == {"/small": NORMAL, "/unknown": NORMAL}

    first = asyncio.create_task(asgi(request("/wait1", LARGE_BODY_BYTES), nothing, ignore))
    second = asyncio.create_task(asgi(request("/wait2", 10 * LARGE_BODY_BYTES), nothing, ignore))
    await asyncio.sleep(0.01)
    assert app.seen == {
        "/small": NORMAL, "/unknown": NORMAL, "/wait1": 100_000, "/wait2": 100_000,
    }  # fmt: skip
    assert young() == 100_000
    await asgi(request("/small2", 10), nothing, ignore)  # meanwhile: still raised
    app.go.set()
    await asyncio.gather(first, second)
    assert app.seen["/wait1 after"] == app.seen["/wait2 after"] == 100_000
    assert young() == NORMAL


async def test_a_failing_large_request_sets_it_back() -> None:
    asgi = LargeBodies(App())
    with pytest.raises(RuntimeError, match="handler failed"):
        await asgi(request("/fail", LARGE_BODY_BYTES), nothing, ignore)
    assert young() == NORMAL


async def test_off_outside_a_serving_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LARGE_REQUESTS, "enabled", False)
    app = App()
    await LargeBodies(app)(request("/big", 10 * LARGE_BODY_BYTES), nothing, ignore)
    assert app.seen == {"/big": NORMAL}


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_cyclic_garbage_is_still_collected_while_raised() -> None:
    heap = LargeRequests(young=5_000)
    heap.enabled = True
    gc.collect()
    with heap.handling():
        assert young() == 5_000
        first = weakref.ref(Cycle())  # garbage at once, freed only by a collection
        kept = [Cycle() for _ in range(20_000)]  # more than `young` new objects
        assert first() is None
        del kept
    assert young() == NORMAL
