"""A websocket runs every operation under a credential that is still valid: a revoked key
or an expired JWT gets its next operation refused and its socket closed (4401, with the
reason), on both protocols; a mutation re-checks at once. Every operation sent over a
socket counts against its owner's rate limit, as an HTTP request does."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.graphql.conftest import LEGACY_WS, TRANSPORT_WS, Api, new_id, op, serve
from tests.graphql.jwks import AUDIENCE, ISSUER, Provider, jwks_server

HEALTH = "{ health { status } }"
CREATE_KEY = 'mutation { createApiKey(name: "minted") { __typename } }'
QUEUE = "subscription { queueStatsUpdated { __typename } }"
EVENTS = "subscription { executionEvents { kind } }"


class Socket:
    """A raw client of either protocol: operations go out as `subscribe` (graphql-transport-ws)
    or `start` (graphql-ws); replies are read per operation id."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol

    async def send(self, query: str) -> str:
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        oid = new_id()
        await self.ws.send(json.dumps({"id": oid, "type": kind, "payload": {"query": query}}))
        return oid

    async def reply(self, oid: str, timeout: float = 5) -> dict[str, Any]:
        """The next message for operation `oid` (keep-alives and others skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                message = json.loads(await self.ws.recv())
                if message.get("id") == oid:
                    return dict(message)

    async def closed(self, timeout: float = 5) -> tuple[int, str]:
        """The close code and reason, once the server closed the socket."""
        async with asyncio.timeout(timeout):
            with pytest.raises(ConnectionClosed) as caught:
                while True:
                    await self.ws.recv()
        received = caught.value.rcvd
        assert received is not None, "the client closed, not the server"
        return received.code, received.reason

    async def alive(self) -> bool:
        """The socket still answers: a ping (graphql-transport-ws) or a subscription
        (graphql-ws, which has no ping)."""
        try:
            if self.protocol == TRANSPORT_WS:
                await self.ws.send(json.dumps({"type": "ping"}))
                async with asyncio.timeout(5):
                    while json.loads(await self.ws.recv())["type"] != "pong":
                        pass
            else:
                oid = await self.send(QUEUE)  # answered (with data, or an error)
                await self.reply(oid)
                await self.ws.send(json.dumps({"id": oid, "type": "stop"}))
        except ConnectionClosed:
            return False
        return True


@pytest.fixture
async def opened() -> AsyncIterator[Any]:
    """Opens acknowledged sockets: `await opened(token, protocol, api)`."""
    sockets: list[ClientConnection] = []

    async def open_socket(token: str, protocol: str, target: Api) -> Socket:
        ws = await connect(target.ws_url, subprotocols=[protocol])  # type: ignore[list-item]
        sockets.append(ws)
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        async with asyncio.timeout(5):
            while (message := json.loads(await ws.recv()))["type"] == "ka":
                pass
        assert message["type"] == "connection_ack", message
        return Socket(ws, protocol)

    yield open_socket
    for ws in sockets:
        await ws.close()


def errors_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The GraphQL errors of an `error` or `next`/`data` message of either protocol."""
    payload = message["payload"]
    if message["type"] == "error":
        return payload if isinstance(payload, list) else [payload]
    return list(payload.get("errors") or [])


async def refused(socket: Socket, query: str, gist: str) -> None:
    """The operation gets an unauthenticated error naming `gist`, then the socket closes
    with 4401 and the same reason."""
    oid = await socket.send(query)
    message = await socket.reply(oid)
    assert message["type"] == "error", message
    (error,) = errors_of(message)
    assert error["extensions"]["code"] == "unauthenticated"
    assert gist in error["message"]
    code, reason = await socket.closed()
    assert code == 4401
    assert gist in reason


async def answered(socket: Socket, query: str) -> dict[str, Any]:
    oid = await socket.send(query)
    message = await socket.reply(oid)
    assert message["type"] in ("next", "data"), message
    assert not errors_of(message), message
    return message


async def key_names(api: Api, principal: Any) -> list[str]:
    return [k.name for k in await api.services.api_keys.list(principal)]


@pytest.fixture
async def slow_checks(db_url: str) -> AsyncIterator[Api]:
    """A server whose periodic checks are far apart: what is refused within a test is
    refused by the check of the operation itself."""
    async with serve(db_url, credential_check_seconds=60) as running:
        yield running


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_mutation_after_its_key_was_revoked_is_refused_at_once(
    slow_checks: Api, opened: Any, protocol: str
) -> None:
    api = slow_checks
    a = await api.owner()
    socket = await opened(a.key, protocol, api)
    if protocol == TRANSPORT_WS:
        await answered(socket, CREATE_KEY)  # a live key may mint another
    keys = {k.name: k for k in await api.services.api_keys.list(a.principal)}
    await api.services.api_keys.revoke(a.principal, keys["test"].id)
    # Nothing periodic runs within this test: the mutation re-checks the key first,
    # past the cache of key checks.
    await refused(socket, CREATE_KEY, "revoked")
    expected = ["minted", "test"] if protocol == TRANSPORT_WS else ["test"]
    assert sorted(await key_names(api, a.principal)) == expected


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_revoked_key_ends_its_socket_within_the_check_period(
    api: Api, opened: Any, protocol: str
) -> None:
    a = await api.owner()
    spare = await api.services.api_keys.create(a.principal, "spare")
    socket = await opened(a.key, protocol, api)
    if protocol == TRANSPORT_WS:
        await answered(socket, HEALTH)
    # A subscription that does not re-check the key by itself.
    watching = await socket.send(QUEUE)
    assert not errors_of(await socket.reply(watching))
    keys = {k.name: k for k in await api.services.api_keys.list(a.principal)}
    async with api.http(spare.secret) as session:  # revoked through another connection
        await session.execute(
            op(
                "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }",
                id=str(keys["test"].id),
            )
        )
    revoked_at = time.monotonic()
    period = api.services.settings.credential_check_seconds
    while (message := await socket.reply(watching))["type"] != "error":
        pass
    (error,) = errors_of(message)
    assert error["extensions"]["code"] == "unauthenticated" and "revoked" in error["message"]
    code, reason = await socket.closed()
    assert (code, "revoked" in reason) == (4401, True)
    assert time.monotonic() - revoked_at < 2 * period + 1
    with pytest.raises(ConnectionClosed):  # no query runs on it any more
        await socket.send(HEALTH)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_second_connection_init_closes_the_socket(
    api: Api, opened: Any, protocol: str
) -> None:
    """A socket keeps the credential it was opened with. The legacy protocol does not
    forbid a second `connection_init`; taken, it would replace the credential that the
    watchdog re-checks while the subscriptions started under the first one ran on, still
    delivering after that key was revoked. Refused on both protocols: 4429."""
    a = await api.owner()
    other = await api.services.api_keys.create(a.principal, "other")
    socket = await opened(a.key, protocol, api)
    await socket.send(EVENTS)  # a subscription under the first key
    await socket.ws.send(
        json.dumps(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {other.secret}"}}
        )
    )
    code, reason = await socket.closed()
    assert (code, reason) == (4429, "Too many initialisation requests")
    # The key it was opened with still works elsewhere: only the socket was refused.
    fresh = await opened(a.key, protocol, api)
    assert await fresh.alive()


async def test_many_idle_sockets_are_checked_together_once_per_period(
    api: Api, opened: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sockets are re-checked by one watch per process: each period, one query for the
    keys of all of them (not a check per socket), and a revocation still ends exactly
    the sockets of that key."""
    owners = [await api.owner() for _ in range(3)]
    sockets = [await opened(o.key, TRANSPORT_WS, api) for o in owners for _ in range(8)]
    authenticator = api.services.authenticator
    refreshed: list[set[Any]] = []
    refresh = authenticator.refresh

    async def counted(keys: set[Any]) -> Any:
        refreshed.append(set(keys))
        return await refresh(keys)

    monkeypatch.setattr(authenticator, "refresh", counted)
    period = api.services.settings.credential_check_seconds
    await asyncio.sleep(3 * period + 0.2)
    key_ids = {(await api.services.api_keys.list(o.principal))[0].id for o in owners}
    assert 2 <= len(refreshed) <= 4, refreshed  # about one per period, for 24 sockets
    assert all(keys == key_ids for keys in refreshed), refreshed
    first = owners[0]
    await api.services.api_keys.revoke(
        first.principal, (await api.services.api_keys.list(first.principal))[0].id
    )
    for socket in sockets[:8]:
        code, reason = await socket.closed(timeout=2 * period + 1)
        assert code == 4401 and "revoked" in reason
    assert all([await socket.alive() for socket in sockets[8:]])


async def test_an_idle_socket_is_closed_when_its_key_is_revoked(api: Api, opened: Any) -> None:
    a = await api.owner()
    socket = await opened(a.key, TRANSPORT_WS, api)
    keys = await api.services.api_keys.list(a.principal)
    await api.services.api_keys.revoke(a.principal, keys[0].id)
    code, reason = await socket.closed()
    assert code == 4401 and "revoked" in reason


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with jwks_server() as running:
        yield running


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_socket_is_closed_when_its_jwt_expires(
    db_url: str, provider: Provider, opened: Any, protocol: str
) -> None:
    # Periodic checks far apart: the socket's watchdog wakes at the expiry itself.
    async with serve(
        db_url, jwks_url=provider.url, jwt_issuer=ISSUER, jwt_audience=AUDIENCE,
        jwt_leeway_seconds=0, credential_check_seconds=60,
    ) as jwt_api:  # fmt: skip
        expires_in = 2
        made = time.time()
        token = provider.token("erin", expires_in=expires_in)
        socket = await opened(token, protocol, jwt_api)
        query = HEALTH if protocol == TRANSPORT_WS else QUEUE
        await answered(socket, query)
        code, reason = await socket.closed()
        assert code == 4401 and "expired" in reason
        # `exp` is in whole seconds: the token ends within a second before made + 2.
        assert made + expires_in - 1 <= time.time() < made + expires_in + 1
        with pytest.raises(ConnectionClosed):  # no query runs on it any more
            await socket.send(query)


async def test_a_valid_key_keeps_working_past_many_checks(api: Api, opened: Any) -> None:
    a = await api.owner()
    socket = await opened(a.key, TRANSPORT_WS, api)
    watching = await socket.send(QUEUE)
    assert not errors_of(await socket.reply(watching))
    deadline = time.monotonic() + 4 * api.services.settings.credential_check_seconds
    while time.monotonic() < deadline:
        await answered(socket, HEALTH)
        await answered(socket, CREATE_KEY)
        await asyncio.sleep(0.1)
    assert await socket.alive()


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_operations_on_a_socket_count_against_the_owner_rate_limit(
    db_url: str, opened: Any, protocol: str
) -> None:
    async with serve(db_url, rate_limit_per_principal="5/minute") as limited:
        a = await limited.owner()
        socket = await opened(a.key, protocol, limited)  # the connection counts once
        query = HEALTH if protocol == TRANSPORT_WS else QUEUE
        outcomes: list[dict[str, Any]] = []
        for _ in range(8):
            oid = await socket.send(query)
            outcomes.append(await socket.reply(oid))
            if protocol == LEGACY_WS:
                await socket.ws.send(json.dumps({"id": oid, "type": "stop"}))
        assert [m["type"] == "error" for m in outcomes] == [False] * 4 + [True] * 4, outcomes
        for message in outcomes[4:]:
            (error,) = errors_of(message)
            assert error["extensions"]["code"] == "rate_limited"
            assert error["extensions"]["retryAfter"] >= 1
            assert "Too many requests" in error["message"]
        assert await socket.alive()  # refused operations leave the socket open
        # HTTP and websockets share the count.
        async with httpx.AsyncClient() as client:
            reply = await client.post(
                limited.http_url,
                json={"query": HEALTH},
                headers={"Authorization": f"Bearer {a.key}"},
            )
        assert reply.status_code == 429
