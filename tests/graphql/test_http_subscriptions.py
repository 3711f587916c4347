"""Subscriptions without websockets, over real HTTP with httpx streaming: GraphQL over
Server-Sent Events (graphql-sse, distinct connections mode) and multipart subscriptions
(Apollo's). The same credential, the same re-checks and the same events as a
websocket's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from flowsync.services.principal import Principal
from tests.graphql.conftest import LEGACY_WS, TRANSPORT_WS, Api, op, running_worker
from tests.support.graphs import fan

SSE = "text/event-stream"
MULTIPART = "multipart/mixed;subscriptionSpec=1.0,application/json"
UPDATED = """subscription($id: ID!) { executionUpdated(id: $id) {
  executionId sequence kind nodeId status } }"""
QUEUE = "subscription { queueStatsUpdated { queued running } }"


async def sse_results(response: httpx.Response) -> AsyncIterator[dict[str, Any] | None]:
    """Each `next` event's data, then None for the `complete` event (the stream's end)."""
    event: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith(":"):  # a comment: the heartbeat
            continue
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "" and event is not None:
            if event == "complete":
                yield None
                return
            assert event == "next", event
            yield json.loads("\n".join(data))
            event, data = None, []


async def multipart_results(response: httpx.Response) -> AsyncIterator[dict[str, Any] | None]:
    """Each part's `payload` (heartbeats, `{}`, skipped), then None at the closing
    boundary."""
    buffer = ""
    async for chunk in response.aiter_text():
        buffer += chunk
        while "\r\n--graphql" in buffer:
            part, buffer = buffer.split("\r\n--graphql", 1)
            if "\r\n\r\n" not in part:
                continue
            body = json.loads(part.split("\r\n\r\n", 1)[1])
            if body:
                assert set(body) == {"payload"}, body
                yield body["payload"]
        if buffer.startswith("--"):
            yield None
            return


@contextlib.asynccontextmanager
async def stream(
    api: Api, key: str | None, accept: str, query: str, **variables: Any
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[dict[str, Any] | None]]]:
    headers = {"Accept": accept}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    body = {"query": query, "variables": variables}
    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("POST", api.http_url, json=body, headers=headers) as response,
    ):
        results = sse_results(response) if accept == SSE else multipart_results(response)
        yield response, results


async def log_of(api: Api, principal: Principal, eid: uuid.UUID) -> list[tuple[int, str]]:
    return [(e.sequence, e.kind) for e in await api.services.executions.events(principal, eid)]


@pytest.mark.parametrize("accept", [SSE, MULTIPART], ids=["sse", "multipart"])
async def test_a_stream_sees_every_event_of_a_run_in_order(api: Api, accept: str) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "fan", None, fan(4))).id
    eid = (await api.services.executions.start(a.principal, wid, {})).execution.id
    async with stream(api, a.key, accept, UPDATED, id=str(eid)) as (response, results):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(accept.split(",")[0].split(";")[0])
        got: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            snapshot = await anext(results)
            assert snapshot is not None and "errors" not in snapshot, snapshot
            assert snapshot["data"]["executionUpdated"]["kind"] == "snapshot"
            # As over a websocket: the first result reports the cost and the budget.
            assert snapshot["extensions"]["cost"]["requested"] == 1
            assert "remaining" in snapshot["extensions"]["rateLimit"]
            async with running_worker(api):
                async for result in results:
                    if result is None:
                        break  # completed after the run's last event
                    assert "errors" not in result and "extensions" not in result, result
                    got.append(result["data"]["executionUpdated"])
    start = snapshot["data"]["executionUpdated"]["sequence"]
    log = await log_of(api, a.principal, eid)
    assert [(e["sequence"], e["kind"]) for e in got] == [t for t in log if t[0] > start]
    assert got[-1]["kind"] == "execution.completed" and got[-1]["status"] == "COMPLETED"
    assert {e["executionId"] for e in got} == {str(eid)}


@pytest.mark.parametrize("query", [UPDATED, QUEUE], ids=["run", "queue"])
@pytest.mark.parametrize("accept", [SSE, MULTIPART], ids=["sse", "multipart"])
async def test_a_revoked_key_ends_its_stream_with_the_reason(
    api: Api, accept: str, query: str
) -> None:
    # The test server re-checks credentials every 0.5 s (FLOWSYNC_CREDENTIAL_CHECK_SECONDS).
    # Neither a run's feed nor the queue's statistics re-check it by themselves: the
    # stream's own watch ends both, as a websocket's watchdog does.
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "fan", None, fan(2))).id
    eid = (await api.services.executions.start(a.principal, wid, {})).execution.id
    variables = {"id": str(eid)} if query == UPDATED else {}
    async with stream(api, a.key, accept, query, **variables) as (_, results):
        async with asyncio.timeout(30):
            first = await anext(results)
            assert first is not None and first["data"] and "errors" not in first, first
            (key,) = await api.services.api_keys.list(a.principal)
            # No worker: the run waits, nothing else is sent, the check ends the stream.
            await api.services.api_keys.revoke(a.principal, key.id)
            while (last := await anext(results)) is not None and last["data"] is not None:
                pass  # the queue's statistics may still change once
            assert last is not None, "the stream ended without saying why"
            (error,) = last["errors"]
            assert error["extensions"]["code"] == "unauthenticated"
            assert "revoked" in error["message"]
            assert await anext(results) is None  # and the stream ends
            with pytest.raises(StopAsyncIteration):
                await anext(results)


@pytest.mark.parametrize("accept", [SSE, MULTIPART], ids=["sse", "multipart"])
async def test_a_stream_without_a_valid_credential_is_refused(api: Api, accept: str) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "fan", None, fan(2))).id
    eid = (await api.services.executions.start(a.principal, wid, {})).execution.id
    for key in (None, "fsk_not_a_key"):
        async with stream(api, key, accept, UPDATED, id=str(eid)) as (response, _):
            # GraphQL over HTTP's refusal, before any stream: 401 with a JSON reason.
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == 'Bearer realm="flowsync"'
            assert response.headers["content-type"] == "application/json"
            body = json.loads(await response.aread())
            assert body["errors"][0]["extensions"]["code"] == "unauthenticated"
    # Another owner's run answers as a missing one, in the stream.
    b = await api.owner()
    async with stream(api, b.key, accept, UPDATED, id=str(eid)) as (response, results):
        assert response.status_code == 200
        async with asyncio.timeout(30):
            refused = await anext(results)
            assert refused is not None and refused["errors"][0]["extensions"]["code"] == (
                "not_found"
            )
            assert await anext(results) is None


async def test_bad_stream_requests_answer_clearly_and_never_500(api: Api) -> None:
    a = await api.owner()
    auth = {"Authorization": f"Bearer {a.key}"}
    async with httpx.AsyncClient(timeout=30) as client:
        # A subscription by plain POST: the reason names both ways.
        plain = await client.post(
            api.http_url, json={"query": "subscription { executionEvents { kind } }"}, headers=auth
        )
        assert plain.status_code == 400
        message = plain.json()["errors"][0]["message"]
        assert "text/event-stream" in message and "subscriptionSpec=1.0" in message
        for accept in (SSE, MULTIPART):
            for body, ct in (
                (b"{", "application/json"),
                (b'[{"query": "{ health { status } }"}]', "application/json"),
                (b'{"query": "subscription { executionEvents { kind } }"}', "text/plain"),
                (b'{"query": "subscription { executionEvents { kind } }", "variables": 3}',
                 "application/json"),
            ):  # fmt: skip
                reply = await client.post(
                    api.http_url, content=body,
                    headers={**auth, "Accept": accept, "Content-Type": ct},
                )  # fmt: skip
                assert 400 <= reply.status_code < 500, (accept, body, reply.text)
                assert reply.json()["errors"][0]["extensions"]["code"] in (
                    "invalid_input", "unsupported_media_type",
                )  # fmt: skip
        # A stream's request without a query: said so, in the stream (as graphql-sse
        # wants), never as an unexpected error.
        for accept in (SSE, MULTIPART):
            async with (
                httpx.AsyncClient(timeout=30) as bare,
                bare.stream(
                    "POST", api.http_url, json={"query": None}, headers={**auth, "Accept": accept}
                ) as response,
            ):
                results = sse_results(response) if accept == SSE else multipart_results(response)
                async with asyncio.timeout(30):
                    missing = await anext(results)
                    assert missing is not None, missing
                    (error,) = missing["errors"]
                    assert error["extensions"]["code"] == "invalid_input", error
                    assert "no `query`" in error["message"]
        # What fails validation is reported in the stream, as graphql-sse requires.
        async with stream(api, a.key, SSE, "subscription { nope }") as (response, results):
            assert response.status_code == 200
            async with asyncio.timeout(30):
                error = await anext(results)
                assert error is not None and "nope" in error["errors"][0]["message"]
                assert await anext(results) is None
        # A multipart stream carries subscriptions only; GraphQL over SSE runs queries too.
        query = "{ health { status } }"
        async with stream(api, a.key, MULTIPART, query) as (response, results):
            async with asyncio.timeout(30):
                refused = await anext(results)
                assert refused is not None, refused
                assert "subscriptions only" in refused["errors"][0]["message"]
        async with stream(api, a.key, SSE, query) as (response, results):
            async with asyncio.timeout(30):
                answered = await anext(results)
                assert answered is not None and answered["data"]["health"]["status"]
                assert await anext(results) is None


@pytest.mark.parametrize("accept", [SSE, MULTIPART], ids=["sse", "multipart"])
async def test_a_client_that_goes_away_mid_stream_lets_go_of_its_subscription(
    api: Api, accept: str, caplog: pytest.LogCaptureFixture
) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "fan", None, fan(2))).id
    eid = (await api.services.executions.start(a.principal, wid, {})).execution.id

    async def watching() -> int:  # the API process watches the owner while subscribed
        count = await api.services.pool.fetchval(
            "SELECT count(*) FROM event_watchers WHERE owner_id = $1 AND expires_at > now()",
            a.principal.owner_id,
        )
        return int(count)

    async with stream(api, a.key, accept, UPDATED, id=str(eid)) as (_, results):
        async with asyncio.timeout(30):
            first = await anext(results)
            assert first is not None and "errors" not in first
        assert await watching() == 1
    # Gone while the server waited for the next event: the subscription ends with it.
    for _ in range(600):
        if not await watching():
            break
        await asyncio.sleep(0.05)
    assert await watching() == 0, "the subscription outlived its stream"
    async with stream(api, a.key, SSE, "{ health { status } }") as (_, results):
        async with asyncio.timeout(30):
            answered = await anext(results)  # the server still serves
            assert answered is not None and answered["data"]["health"]["status"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


class Counted:
    """Stands in for flowsync.eventloop.CONNECTIONS: counts what the view reports."""

    def __init__(self) -> None:
        self.opened = self.closed = 0

    def open_count(self) -> int:
        return self.opened - self.closed


async def test_every_long_lived_connection_is_counted_open_and_closed_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The collector's handling of connections (flowsync.eventloop.LongLived) relies on
    each websocket and each stream being reported opened once and closed once, however
    it ends: closed by its client, ended by its run, or refused its credential. A close
    not reported would keep closed connections' garbage frozen."""
    from flowsync import eventloop

    counted = Counted()
    reporting = SimpleNamespace(
        opened=lambda: setattr(counted, "opened", counted.opened + 1),
        closed=lambda: setattr(counted, "closed", counted.closed + 1),
    )
    monkeypatch.setattr(eventloop, "CONNECTIONS", reporting)
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "fan", None, fan(2))).id
    eid = (await api.services.executions.start(a.principal, wid, {})).execution.id
    for accept in (SSE, MULTIPART):  # closed by the client after its first result
        async with stream(api, a.key, accept, QUEUE) as (_, results):
            async with asyncio.timeout(30):
                assert await anext(results) is not None
                assert counted.open_count() == 1
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        async with api.ws(a.key, protocol) as session:
            async with asyncio.timeout(30):
                assert await anext(aiter(session.subscribe(op(QUEUE))))
                assert counted.open_count() == 1
    async with (  # ended by its run
        stream(api, a.key, SSE, UPDATED, id=str(eid)) as (_, results),
        asyncio.timeout(60),
        running_worker(api),
    ):
        while await anext(results) is not None:
            pass
    (key,) = await api.services.api_keys.list(a.principal)
    async with stream(api, a.key, SSE, QUEUE) as (_, results):  # ended by a revocation
        async with asyncio.timeout(30):
            assert await anext(results) is not None
            await api.services.api_keys.revoke(a.principal, key.id)
            while (last := await anext(results)) is not None and not last.get("errors"):
                pass
    for _ in range(100):  # the server's side of the last close may come a moment later
        if counted.open_count() == 0:
            break
        await asyncio.sleep(0.05)
    assert (counted.opened, counted.closed) == (6, 6)
