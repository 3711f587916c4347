"""Live subscriptions over real websockets (both protocols): the current state first,
then every event in sequence order with no gap and no duplicate, through notifications,
the poll, a killed listener connection and slow subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from gql.transport.exceptions import TransportQueryError

from flowsync.config import to_asyncpg_dsn
from flowsync.events.feed import Snapshot, SubscriberTooSlow
from flowsync.services.auth import Credential
from flowsync.services.principal import Principal
from flowsync.worker.registry import default_registry
from tests.graphql.conftest import LEGACY_WS, TRANSPORT_WS, Api, op, running_worker, serve
from tests.support.dead_letters import failed_runs
from tests.support.graphs import chain, fan
from tests.support.handlers import SlowTransform

UPDATED = """subscription($id: ID!) { executionUpdated(id: $id) {
  executionId workflowId sequence kind status at nodeId attempt
  step { nodeId status } execution { status steps { nodeId status } } } }"""
EVENTS = """subscription($w: ID) { executionEvents(workflowId: $w) {
  executionId workflowId sequence kind status nodeId } }"""


async def log_of(
    api: Api, principal: Principal, eid: uuid.UUID
) -> list[tuple[int, str, str | None]]:
    events = await api.services.executions.events(principal, eid)
    return [(e.sequence, e.kind, e.node_id) for e in events]


def triples(messages: list[dict[str, Any]], key: str) -> list[tuple[int, str, str | None]]:
    return [(m[key]["sequence"], m[key]["kind"], m[key]["nodeId"]) for m in messages]


async def gather(subscription: AsyncIterator[dict[str, Any]], out: list[dict[str, Any]]) -> None:
    async for message in subscription:
        out.append(message)


async def wait_until(predicate: Any, timeout: float = 15, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_subscriber_sees_every_step_of_a_fork_join_in_order(
    api: Api, protocol: str
) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "fan", None, fan(4))).id
    eid = (await api.services.executions.start(a.principal, wid, {})).execution.id
    got: list[dict[str, Any]] = []
    async with api.ws(a.key, protocol) as ws:
        task = asyncio.create_task(gather(ws.subscribe(op(UPDATED, id=str(eid))), got))
        await wait_until(lambda: len(got) >= 1, what="the snapshot")
        async with running_worker(api):
            await asyncio.wait_for(task, 15)  # completes after execution.completed
    snapshot = got[0]["executionUpdated"]
    assert snapshot["kind"] == "snapshot" and snapshot["status"] == "RUNNING"
    # The start node ran with the start itself; what follows it waits for a worker.
    assert snapshot["execution"]["steps"][:2] == [
        {"nodeId": "start", "status": "COMPLETED"}, {"nodeId": "split", "status": "QUEUED"},
    ]  # fmt: skip
    start = snapshot["sequence"]
    log = await log_of(api, a.principal, eid)
    assert triples(got[1:], "executionUpdated") == [t for t in log if t[0] > start]
    kinds = Counter((kind, node) for _, kind, node in log)
    assert all(kinds[("step.completed", f"b{i}")] == 1 for i in range(4))
    assert kinds[("step.started", "merge")] == 1
    last = got[-1]["executionUpdated"]
    assert last["kind"] == "execution.completed" and last["execution"]["status"] == "COMPLETED"
    assert all(m["executionUpdated"]["executionId"] == str(eid) for m in got)
    assert {m["executionUpdated"]["workflowId"] for m in got} == {str(wid)}


async def test_a_late_subscriber_gets_the_final_state_and_completes(
    api: Api, worker: object
) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "c", None, chain(2))).id
    eid = (await api.services.executions.start(a.principal, wid, {"n": 1})).execution.id
    for _ in range(300):
        if (await api.services.executions.get(a.principal, eid)).status == "COMPLETED":
            break
        await asyncio.sleep(0.05)
    async with api.ws(a.key) as ws:
        got = [m async for m in ws.subscribe(op(UPDATED, id=str(eid)))]
    assert len(got) == 1
    assert got[0]["executionUpdated"]["kind"] == "snapshot"
    assert got[0]["executionUpdated"]["status"] == "COMPLETED"
    assert got[0]["executionUpdated"]["sequence"] == len(await log_of(api, a.principal, eid))
    assert {s["status"] for s in got[0]["executionUpdated"]["execution"]["steps"]} == {"COMPLETED"}


FOLLOWED = UPDATED.replace("executionUpdated(id: $id)", "executionUpdated(id: $id, follow: true)")


async def test_a_followed_execution_goes_on_past_its_end_when_redriven(api: Api) -> None:
    a = await api.owner()
    (eid,) = await failed_runs(api.services, a.principal, 1)
    ended = len(await log_of(api, a.principal, eid))
    got: list[dict[str, Any]] = []
    async with api.ws(a.key) as ws:
        followed = asyncio.create_task(gather(ws.subscribe(op(FOLLOWED, id=str(eid))), got))
        # Unfollowed, a finished execution's subscription is its snapshot alone.
        alone = [m async for m in ws.subscribe(op(UPDATED, id=str(eid)))]
        assert [m["executionUpdated"]["kind"] for m in alone] == ["snapshot"]
        await wait_until(lambda: len(got) >= 1, what="the snapshot")
        assert (got[0]["executionUpdated"]["status"], got[0]["executionUpdated"]["sequence"]) == (
            "FAILED", ended,
        )  # fmt: skip
        (letter,) = (await api.services.dead_letters.list(a.principal, execution_id=eid)).items
        await api.services.dead_letters.redrive(a.principal, letter.id)
        async with running_worker(api):  # the redriven step fails again (still refused)
            await wait_until(
                lambda: sum(m["executionUpdated"]["kind"] == "execution.failed" for m in got) == 1,
                what="the redriven run to fail again",
            )
        assert not followed.done()  # still open after that end too
        followed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await followed
    log = await log_of(api, a.principal, eid)
    assert triples(got[1:], "executionUpdated") == [t for t in log if t[0] > ended]
    assert got[-1]["executionUpdated"]["execution"]["status"] == "FAILED"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_owner_wide_events_with_and_without_a_workflow_filter(
    api: Api, protocol: str
) -> None:
    a = await api.owner()
    w1 = (await api.services.workflows.create(a.principal, "one", None, chain(2))).id
    w2 = (await api.services.workflows.create(a.principal, "two", None, fan(2))).id
    # Running before anyone subscribes: each subscriber starts with their snapshots.
    before = {
        w: (await api.services.executions.start(a.principal, w, {"n": 0})).execution.id
        for w in (w1, w2)
    }
    every: list[dict[str, Any]] = []
    only_two: list[dict[str, Any]] = []
    async with api.ws(a.key, protocol) as ws:
        tasks = [
            asyncio.create_task(gather(ws.subscribe(op(EVENTS)), every)),
            asyncio.create_task(gather(ws.subscribe(op(EVENTS, w=str(w2))), only_two)),
        ]
        await wait_until(lambda: len(every) >= 2 and len(only_two) >= 1, what="the snapshots")
        started = [
            (await api.services.executions.start(a.principal, w, {"n": 1})).execution.id
            for w in (w1, w2, w2)
        ]
        async with running_worker(api):

            def ended(messages: list[dict[str, Any]], eids: list[uuid.UUID]) -> bool:
                done = {m["executionEvents"]["executionId"] for m in messages
                        if m["executionEvents"]["kind"] == "execution.completed"}  # fmt: skip
                return {str(e) for e in eids} <= done

            everything = [*before.values(), *started]
            await wait_until(lambda: ended(every, everything), what="every execution")
            await wait_until(lambda: ended(only_two, [before[w2], *started[1:]]), what="two's")
        for task in tasks:
            task.cancel()
    snapshots = [m["executionEvents"] for m in every if m["executionEvents"]["kind"] == "snapshot"]
    assert {(s["executionId"], s["workflowId"], s["status"]) for s in snapshots} == {
        (str(before[w1]), str(w1), "RUNNING"), (str(before[w2]), str(w2), "RUNNING"),
    }  # fmt: skip
    assert [m["executionEvents"]["kind"] for m in only_two].count("snapshot") == 1
    assert {m["executionEvents"]["workflowId"] for m in only_two} == {str(w2)}
    for stream, eids in ((every, [*before.values(), *started]),
                         (only_two, [before[w2], *started[1:]])):  # fmt: skip
        for eid in eids:
            log = await log_of(api, a.principal, eid)
            mine = [m for m in stream if m["executionEvents"]["executionId"] == str(eid)]
            after = 0
            if eid in before.values():
                assert mine[0]["executionEvents"]["kind"] == "snapshot"
                after = mine.pop(0)["executionEvents"]["sequence"]
            assert triples(mine, "executionEvents") == [t for t in log if t[0] > after]


async def test_killing_the_listener_connection_loses_nothing(api: Api, db_url: str) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "slow", None, chain(12))).id
    eid = (
        await api.services.executions.start(a.principal, wid, {"n": 0, "sleep": 0.1})
    ).execution.id
    registry = default_registry()
    registry.register("transform", SlowTransform())
    got: list[dict[str, Any]] = []
    admin = await asyncpg.connect(to_asyncpg_dsn(db_url))
    kill = """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
               WHERE application_name = 'flowsync-events' AND datname = current_database()"""
    try:
        async with api.ws(a.key) as ws:
            task = asyncio.create_task(gather(ws.subscribe(op(UPDATED, id=str(eid))), got))
            await wait_until(lambda: len(got) >= 1, what="the snapshot")
            reconnects = api.live.backend.reconnects
            async with running_worker(api, registry):
                for _ in range(3):
                    seen = len(got)
                    await wait_until(lambda seen=seen: len(got) > seen, what="an event")
                    assert await admin.fetchval(kill) == 1
                    await asyncio.sleep(0.3)
                await asyncio.wait_for(task, 20)
    finally:
        await admin.close()
    assert api.live.backend.reconnects >= reconnects + 3
    start = got[0]["executionUpdated"]["sequence"]
    log = await log_of(api, a.principal, eid)
    assert triples(got[1:], "executionUpdated") == [t for t in log if t[0] > start]
    assert got[-1]["executionUpdated"]["kind"] == "execution.completed"


async def test_notifications_deliver_without_waiting_for_the_poll(db_url: str) -> None:
    async with serve(db_url, subscription_poll_seconds=60) as api:
        a = await api.owner()
        wid = (await api.services.workflows.create(a.principal, "c", None, chain(3))).id
        eid = (await api.services.executions.start(a.principal, wid, {"n": 0})).execution.id
        got: list[dict[str, Any]] = []
        async with api.ws(a.key) as ws:
            task = asyncio.create_task(gather(ws.subscribe(op(UPDATED, id=str(eid))), got))
            await wait_until(lambda: len(got) >= 1, what="the snapshot")
            async with running_worker(api):
                await asyncio.wait_for(task, 5)
        assert got[-1]["executionUpdated"]["kind"] == "execution.completed"
        assert (
            len(got) - 1
            == len(await log_of(api, a.principal, eid)) - got[0]["executionUpdated"]["sequence"]
        )


async def test_watcher_rows_follow_subscribers(api: Api) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "c", None, chain(1, delay=30))).id
    eid = (await api.services.executions.start(a.principal, wid, {"n": 0})).execution.id

    async def rows() -> int:
        count = await api.services.pool.fetchval(
            "SELECT count(*) FROM event_watchers WHERE owner_id = $1 AND expires_at > now()",
            a.principal.owner_id,
        )
        return int(count)

    assert await rows() == 0
    got: list[dict[str, Any]] = []
    async with api.ws(a.key) as ws:
        tasks = [
            asyncio.create_task(gather(ws.subscribe(op(UPDATED, id=str(eid))), got)),
            asyncio.create_task(gather(ws.subscribe(op(EVENTS)), got)),
        ]
        await wait_until(lambda: len(got) >= 2, what="two snapshots")
        assert await rows() == 1
        for task in tasks:
            task.cancel()
    for _ in range(100):
        if await rows() == 0:
            break
        await asyncio.sleep(0.05)
    assert await rows() == 0


async def test_many_subscribers_of_one_execution_share_each_read(api: Api) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "c", None, chain(5))).id
    eid = (await api.services.executions.start(a.principal, wid, {"n": 0})).execution.id
    credential = Credential(a.principal)
    results: list[list[Any]] = [[] for _ in range(25)]

    async def follow(out: list[Any]) -> None:
        async for item in api.live.feed.execution(credential, eid):
            out.append(item)

    tasks = [asyncio.create_task(follow(out)) for out in results]
    await wait_until(lambda: all(results), what="25 snapshots")
    before = api.live.log.queries
    async with running_worker(api):
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
    log = await log_of(api, a.principal, eid)
    for out in results:
        events = [(i.event.sequence, i.event.kind, i.event.node_id) for i in out[1:]]
        assert events == [t for t in log if t[0] > out[0].execution.last_sequence]
    # One read per wake-up for all 25 subscribers, not one each.
    assert api.live.log.queries - before <= len(log)


async def test_a_slow_subscriber_is_caught_up_from_the_log(api: Api) -> None:
    a = await api.owner()
    wid = (await api.services.workflows.create(a.principal, "c", None, fan(6))).id
    eid = (await api.services.executions.start(a.principal, wid, {})).execution.id
    feed = api.live.feed.execution(Credential(a.principal), eid)
    snapshot = await anext(feed)
    async with running_worker(api):
        for _ in range(300):
            if (await api.services.executions.get(a.principal, eid)).status == "COMPLETED":
                break
            await asyncio.sleep(0.05)
        # Everything happened while this subscriber read nothing; it reads it all now.
        items = [item async for item in feed]
    assert isinstance(snapshot, Snapshot)
    log = await log_of(api, a.principal, eid)
    events = [(i.event.sequence, i.event.kind, i.event.node_id) for i in items]
    assert events == [t for t in log if t[0] > snapshot.execution.last_sequence]


async def test_a_subscriber_too_far_behind_is_disconnected(db_url: str) -> None:
    async with serve(db_url, max_subscriber_backlog=2) as api:
        a = await api.owner()
        wid = (await api.services.workflows.create(a.principal, "c", None, chain(1))).id
        feed = api.live.feed.owner(Credential(a.principal), None)
        reader = asyncio.create_task(anext(feed))
        await asyncio.sleep(0.3)  # subscribed, nothing running: it waits for events
        await api.services.executions.start(a.principal, wid, {"n": 0})
        await asyncio.wait_for(reader, 10)  # the subscriber now holds an event, unsent
        for _ in range(3):
            await api.services.executions.start(a.principal, wid, {"n": 0})
        await asyncio.sleep(0.5)  # three more executions changed: room for two only
        with pytest.raises(SubscriberTooSlow):
            for _ in range(10):
                await asyncio.wait_for(anext(feed), 10)
        await feed.aclose()


async def test_subscribing_to_a_missing_execution_is_an_error(api: Api) -> None:
    a = await api.owner()
    async with api.ws(a.key) as ws:
        with pytest.raises(TransportQueryError, match="No execution"):
            async for _ in ws.subscribe(op(UPDATED, id=str(uuid.uuid4()))):
                pass
        with pytest.raises(TransportQueryError, match="No workflow"):
            async for _ in ws.subscribe(op(EVENTS, w="nope")):
                pass
