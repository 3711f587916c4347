"""Thousands of graphql-transport-ws subscribers in one process, cheaply, for
bench/subscriptions_bench.py.

The `websockets` asyncio client costs a task, a queue and several awaits per message: about
80% of a core per 1,000 subscribers at the bench's rates. Here each connection is an
`asyncio.Protocol` over websockets' sans-I/O `ClientProtocol` (which still does the
handshake, the framing and the pongs), with no task per connection; a message costs one
`orjson.loads` and a few dictionary operations. The bench runs several of these processes
(`run_swarm`, started with multiprocessing's spawn) and steers them over a pipe:

    parent -> swarm: ("watch", index, subscription_id, execution_id)  subscribe connection
                     `index` to `executionUpdated` of one execution
                     ("stop",)  close everything and send the result
    swarm -> parent: ("connected", count, seconds), then ("result", SwarmResult)
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import time
from array import array
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

OWNER_FEED = "subscription { executionEvents { executionId sequence kind at } }"
ONE_EXECUTION = """subscription($id: ID!) { executionUpdated(id: $id) {
  executionId sequence kind at } }"""
OWNER_SUBSCRIPTION = "o"  # the id of an owner-feed connection's one subscription


@dataclass(frozen=True)
class Spec:
    """One connection: its number across all swarms, its owner's key, and whether it
    holds an `executionEvents` subscription (else it waits for `watch` commands)."""

    index: int
    key: str
    owner_feed: bool


@dataclass
class SwarmResult:
    """What one swarm saw. `tallies[(index, subscription, execution)]` is
    [snapshot sequence or -1, last sequence, events counted, events out of order]."""

    owner_latencies: bytes = b""
    watch_latencies: bytes = b""
    # (received, latency) pairs, and latencies by event kind, for BENCH_DETAIL
    timeline: bytes = b""
    by_kind: dict[str, bytes] = field(default_factory=dict)
    tallies: dict[tuple[int, str, str], list[int]] = field(default_factory=dict)
    completed: set[tuple[int, str]] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lost_connections: int = 0
    cpu_seconds: float = 0.0


class _Link(asyncio.Protocol):
    def __init__(self, swarm: _Swarm, spec: Spec) -> None:
        self.swarm = swarm
        self.spec = spec
        self.ws = ClientProtocol(
            swarm.uri, subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None
        )
        self.transport: asyncio.Transport | None = None
        self.acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.ws.send_request(self.ws.connect())
        self.flush()

    def flush(self) -> None:
        assert self.transport is not None
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send_text(orjson.dumps(message))
        self.flush()

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        received = time.time()
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self._fail(f"handshake: {self.ws.handshake_exc}")
                    return
                init = {"Authorization": f"Bearer {self.spec.key}"}
                self.send({"type": "connection_init", "payload": init})
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.swarm.message(self, bytes(event.data), received)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.swarm.stopping:
            self.swarm.result.lost_connections += 1
            self._fail(f"connection {self.spec.index} lost: {exc}")

    def _fail(self, reason: str) -> None:
        self.swarm.result.errors.append(reason)
        if not self.acked.done():
            self.acked.set_exception(RuntimeError(reason))


class _Swarm:
    def __init__(self, url: str) -> None:
        self.uri = parse_uri(url)
        self.links: dict[int, _Link] = {}
        self.result = SwarmResult()
        self.owner_latencies = array("d")
        self.watch_latencies = array("d")
        self.timeline = array("d")
        self.by_kind: dict[str, array[float]] = {}
        self.stopping = False

    def message(self, link: _Link, data: bytes, received: float) -> None:
        message = orjson.loads(data)
        kind = message["type"]
        if kind == "next":
            sub = message["id"]
            data_ = message["payload"].get("data")
            if not data_:
                self.result.errors.append(f"{sub}: {message['payload'].get('errors')}")
                return
            event = next(iter(data_.values()))
            key = (link.spec.index, sub, event["executionId"])
            sequence = event["sequence"]
            tally = self.result.tallies.get(key)
            if event["kind"] == "snapshot":
                if tally is not None:
                    tally[3] += 1
                else:
                    self.result.tallies[key] = [sequence, sequence, 0, 0]
                return
            if tally is None:
                tally = self.result.tallies[key] = [-1, 0, 0, 0]
            if sequence != tally[1] + 1:
                tally[3] += 1
            tally[1] = sequence
            tally[2] += 1
            at = datetime.fromisoformat(event["at"]).timestamp()
            ms = (received - at) * 1000
            lat = self.owner_latencies if sub == OWNER_SUBSCRIPTION else self.watch_latencies
            lat.append(ms)
            self.timeline.append(received)
            self.timeline.append(ms)
            kind_ = event["kind"]
            if kind_ not in self.by_kind:
                self.by_kind[kind_] = array("d")
            self.by_kind[kind_].append(ms)
        elif kind == "complete":
            self.result.completed.add((link.spec.index, message["id"]))
        elif kind == "connection_ack":
            if not link.acked.done():
                link.acked.set_result(None)
        elif kind == "ping":
            link.send({"type": "pong"})
        elif kind != "pong":
            self.result.errors.append(f"connection {link.spec.index}: {message}")

    async def open(self, spec: Spec) -> None:
        loop = asyncio.get_running_loop()
        link = _Link(self, spec)
        await loop.create_connection(lambda: link, self.uri.host, self.uri.port)
        await asyncio.wait_for(link.acked, 120)
        self.links[spec.index] = link
        if spec.owner_feed:
            link.send(
                {"id": OWNER_SUBSCRIPTION, "type": "subscribe", "payload": {"query": OWNER_FEED}}
            )

    def watch(self, index: int, sub: str, execution_id: str) -> None:
        payload = {"query": ONE_EXECUTION, "variables": {"id": execution_id}}
        self.links[index].send({"id": sub, "type": "subscribe", "payload": payload})


async def _main(pipe: Connection, url: str, specs: list[Spec], pace: int) -> None:
    swarm = _Swarm(url)
    began = time.perf_counter()
    for start in range(0, len(specs), pace):
        # A handful of connections at a time: the API's listen backlog is finite.
        await asyncio.gather(*(swarm.open(s) for s in specs[start : start + pace]))
    pipe.send(("connected", len(swarm.links), time.perf_counter() - began))
    # This process is the measuring instrument: a collection of its many objects would
    # stop every subscriber at once and count as delivery latency.
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu_before = time.process_time()
    stopped = asyncio.get_running_loop().create_future()

    def command() -> None:
        while pipe.poll():
            order = pipe.recv()
            if order[0] == "watch":
                swarm.watch(order[1], order[2], order[3])
            elif not stopped.done():
                stopped.set_result(None)

    asyncio.get_running_loop().add_reader(pipe.fileno(), command)
    await stopped
    # uvloop made the pipe non-blocking; the result is larger than its buffer.
    asyncio.get_running_loop().remove_reader(pipe.fileno())
    os.set_blocking(pipe.fileno(), True)
    swarm.result.cpu_seconds = time.process_time() - cpu_before
    swarm.stopping = True
    for link in swarm.links.values():
        if link.transport is not None:
            link.transport.abort()
    swarm.result.owner_latencies = swarm.owner_latencies.tobytes()
    swarm.result.watch_latencies = swarm.watch_latencies.tobytes()
    swarm.result.timeline = swarm.timeline.tobytes()
    swarm.result.by_kind = {k: v.tobytes() for k, v in swarm.by_kind.items()}
    pipe.send(("result", swarm.result))


def run_swarm(pipe: Connection, url: str, specs: list[Spec], pace: int = 50) -> None:
    """Hold `specs`' connections to the API's websocket at `url` until told to stop (the
    entry point of one swarm process)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        uvloop.run(_main(pipe, url, specs, pace))
    except ImportError:
        asyncio.run(_main(pipe, url, specs, pace))
