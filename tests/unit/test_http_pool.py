"""The action client's connection pool (flowsync/worker/http_client.py `_Pool`) decides as
httpcore's own does: for any pool of connections in any states and any queued requests,
the same connections are closed, kept and created, and each request gets the same one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpcore
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsync.worker.http_client import _Pool

ORIGINS = [httpcore.URL(f"http://h{i}.test/").origin for i in range(3)]


@dataclass(eq=False)
class FakeConnection:
    name: str
    origin: Any
    closed: bool = False
    expired: bool = False
    idle: bool = False
    available: bool = False

    def is_closed(self) -> bool:
        return self.closed

    def has_expired(self) -> bool:
        return self.expired

    def is_idle(self) -> bool:
        return self.idle

    def is_available(self) -> bool:
        return self.available

    def can_handle_request(self, origin: Any) -> bool:
        return bool(origin == self.origin)


@dataclass(eq=False)
class FakeRequest:
    origin: Any
    queued: bool
    assigned: str | None = None
    request: Any = field(init=False)

    def __post_init__(self) -> None:
        self.request = type("R", (), {"url": type("U", (), {"origin": self.origin})()})()

    def is_queued(self) -> bool:
        return self.queued

    def assign_to_connection(self, connection: FakeConnection) -> None:
        self.assigned = connection.name


connection_states = st.lists(
    st.tuples(st.integers(0, 2), st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    max_size=8,
)
request_states = st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=8)


def decide(pool_class: type[httpcore.AsyncConnectionPool], conns: list[Any], reqs: list[Any],
           max_connections: int, keepalive: int) -> tuple[Any, ...]:  # fmt: skip
    pool = pool_class(max_connections=max_connections, max_keepalive_connections=keepalive)
    made = iter(range(100))
    pool.create_connection = lambda origin: FakeConnection(f"new{next(made)}", origin)
    pool._connections = [FakeConnection(f"c{i}", ORIGINS[o], *flags)
                         for i, (o, *flags) in enumerate(conns)]  # fmt: skip
    requests = [FakeRequest(ORIGINS[o], queued) for o, queued in reqs]
    pool._requests = requests
    closing = pool._assign_requests_to_connections()
    return (
        [c.name for c in closing],
        [c.name for c in pool._connections],
        [r.assigned for r in requests],
    )


@settings(max_examples=400, deadline=None)
@given(connection_states, request_states, st.integers(1, 6), st.integers(0, 6))
def test_the_pool_decides_as_httpcores_own(
    conns: list[Any], reqs: list[Any], max_connections: int, keepalive: int
) -> None:
    ours = decide(_Pool, conns, reqs, max_connections, keepalive)
    theirs = decide(httpcore.AsyncConnectionPool, conns, reqs, max_connections, keepalive)
    assert ours == theirs
